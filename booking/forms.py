"""WTForms pieces shared by all features."""

from __future__ import annotations

import wtforms.widgets
import wtforms.widgets.core as widget_core
from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape
from wtforms import DateField, IntegerField, SelectMultipleField, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from booking.inputs import MAX_ID, in_range, year_problem
from booking.text_rules import plain_text_problems
from booking.wtforms_messages import invalid_choices_message


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


class MultipleChoiceField(SelectMultipleField):
    """WTForms' multiple choice, refusing an unoffered choice in our catalogue's words (Flask-WTF
    translates with WTForms' own catalogue, whose Chinese for this message is never compiled)."""

    def __init__(self, *args, invalid_choice_message=invalid_choices_message, **kwargs):
        super().__init__(*args, invalid_choice_message=invalid_choice_message, **kwargs)


class MultiCheckboxField(MultipleChoiceField):
    """A list of checkboxes, one per choice."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class DayField(DateField):
    """A date within the years the platform accepts (booking.inputs): year 9999 is refused
    here, with the field's message, before any date arithmetic can overflow."""

    def process_formdata(self, valuelist):
        super().process_formdata(valuelist)
        if self.data is not None and not in_range(self.data):
            self.data = None
            raise ValueError(str(year_problem(self.name).message))


class WholeNumberField(IntegerField):
    """A whole number a database integer can hold: 2**70 is refused here, not by the database."""

    def process_formdata(self, valuelist):
        super().process_formdata(valuelist)
        if self.data is not None and abs(self.data) > MAX_ID:
            self.data = None
            raise ValueError(str(_l("Must be at most %(max)d.", max=MAX_ID)))


# --- drawing fields quicker ---------------------------------------------------------------------

WTFORMS_HTML_PARAMS = widget_core.html_params  # WTForms' own: the test compares ours with it


def html_params(**attributes) -> Markup:
    """WTForms' html_params, with the same output (tests/test_forms_html.py compares the two
    on any attributes), without a Markup.format per attribute: that Python-level formatting
    was a third of drawing a form, and the booking page draws sixteen fields."""
    written = []
    for key, value in sorted(attributes.items()):
        if value is True:
            written.append(widget_core.clean_key(key))
        elif value is not False:
            # As WTForms: escaped, and a quote inside a value that is already markup too.
            text = str(escape(value)).replace('"', "&quot;")
            written.append(f'{widget_core.clean_key(key)}="{text}"')
    return Markup(" ".join(written))


def draw_fields_quicker() -> None:
    """Have WTForms' widgets use html_params above (each widget reads the function from its
    module, or from its class for inputs and buttons). Idempotent."""
    widget_core.html_params = html_params
    wtforms.widgets.html_params = html_params
    widget_core.Input.html_params = staticmethod(html_params)
    widget_core.Button.html_params = staticmethod(html_params)
