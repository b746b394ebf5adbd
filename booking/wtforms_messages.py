"""WTForms' and Flask-WTF's built-in messages in our catalogue.

WTForms translates its built-in messages with its own catalogue (Flask-WTF, WTF_I18N_ENABLED),
not ours: the ones marked below are listed so that they are extracted beside ours. Where WTForms'
own Chinese is missing, a field is given the message from our catalogue instead (WTForms'
Chinese for a multiple choice not offered is marked fuzzy, so it is never compiled and
"'ZZ99' is not a valid choice for this field." would show in English)."""

from flask_babel import get_translations
from flask_babel import lazy_gettext as _l

BUILTIN_MESSAGES = (
    _l("Not a valid integer value."),
    _l("Not a valid choice."),
    _l("Invalid Choice: could not coerce."),
    _l("Not a valid decimal value."),
    _l("This field is required."),
    _l("Invalid email address."),
)


def invalid_choices_message(count: int) -> str:
    """A SelectMultipleField's `invalid_choice_message`: WTForms fills in the values that are
    not offered ("%(value)s") after this, so it is not formatted here."""
    return get_translations().ungettext(
        "'%(value)s' is not a valid choice for this field.",
        "'%(value)s' are not valid choices for this field.",
        count,
    )
