"""WTForms' and Flask-WTF's built-in messages, marked here so that they are extracted into our
catalogue: Flask-WTF translates them through Flask-Babel (WTF_I18N_ENABLED)."""

from flask_babel import lazy_gettext as _l

BUILTIN_MESSAGES = (
    _l("Not a valid integer value."),
    _l("Not a valid choice."),
    _l("Invalid Choice: could not coerce."),
    _l("Not a valid decimal value."),
    _l("This field is required."),
    _l("Invalid email address."),
)
