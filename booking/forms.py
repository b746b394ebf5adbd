"""WTForms pieces shared by all features."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import SelectMultipleField, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from booking.text_rules import plain_text_problems


class PlainText:
    """Field validator running the shared plain-text rule (length, no markup)."""

    def __init__(self, max_length: int, required: bool = True):
        self.max_length = max_length
        self.required = required
        self.field_flags = {"required": True} if required else {}

    def __call__(self, form, field):
        problems = plain_text_problems(field.data, field.name, self.max_length, self.required)
        if problems:
            raise ValidationError(str(problems[0].message))


REQUIRED_MESSAGE = _l("This field is required.")


class MultiCheckboxField(SelectMultipleField):
    """A list of checkboxes, one per choice."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()
