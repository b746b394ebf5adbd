from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Optional

from booking.forms import REQUIRED_MESSAGE, DayField, MultiCheckboxField, PlainText
from booking.languages import LOCALES
from booking.notify.service import MAIL_TOPICS


class RegisterForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(REQUIRED_MESSAGE)])
    display_name = StringField(_l("Your name"), validators=[PlainText(80)])
    password = PasswordField(_l("Password"), validators=[DataRequired(REQUIRED_MESSAGE)])
    confirm = PasswordField(
        _l("Repeat password"),
        validators=[
            DataRequired(REQUIRED_MESSAGE),
            EqualTo("password", message=_l("The two passwords do not match.")),
        ],
    )


class LoginForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(REQUIRED_MESSAGE), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(REQUIRED_MESSAGE)])
    remember = BooleanField(_l("Keep me signed in"))


class ForgotPasswordForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(REQUIRED_MESSAGE), Length(max=254)])


class ResetPasswordForm(FlaskForm):
    password = PasswordField(_l("New password"), validators=[DataRequired(REQUIRED_MESSAGE)])
    confirm = PasswordField(
        _l("Repeat password"),
        validators=[
            DataRequired(REQUIRED_MESSAGE),
            EqualTo("password", message=_l("The two passwords do not match.")),
        ],
    )


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(
        _l("Current password"), validators=[DataRequired(REQUIRED_MESSAGE)]
    )
    password = PasswordField(_l("New password"), validators=[DataRequired(REQUIRED_MESSAGE)])
    confirm = PasswordField(
        _l("Repeat password"),
        validators=[
            DataRequired(REQUIRED_MESSAGE),
            EqualTo("password", message=_l("The two passwords do not match.")),
        ],
    )


class LanguageForm(FlaskForm):
    locale = SelectField(
        _l("Language"),
        choices=list(LOCALES.items()),
        validate_choice=True,
    )


class ApiTokenForm(FlaskForm):
    name = StringField(_l("Token name"), validators=[PlainText(80)])
    scopes = MultiCheckboxField(
        _l("It may"),
        choices=[
            ("read", _l("read (see bookings, resources, invoices)")),
            ("write", _l("write (book, change and cancel)")),
            ("operate", _l("operate (as the carrier's staff: approve, reject, export)")),
        ],
        default=["read", "write"],
    )
    expires_on = DayField(_l("Expires on (empty: never)"), validators=[Optional()])


class EmptyForm(FlaskForm):
    """Just the CSRF token, for buttons that POST."""


class MailPreferenceForm(FlaskForm):
    mail_notifications = BooleanField(_l("Also send my notifications by e-mail"))
    topics = MultiCheckboxField(_l("By mail, only these"), validate_choice=False)

    def __init__(self, *args, **kwargs):

        super().__init__(*args, **kwargs)
        self.topics.choices = [(code, label) for code, (label, _kinds) in MAIL_TOPICS.items()]
