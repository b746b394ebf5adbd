from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, SelectField, StringField
from wtforms.validators import DataRequired

from booking.forms import REQUIRED_MESSAGE, PlainText

ROLE_CHOICES = [("member", _l("Member")), ("manager", _l("Manager"))]


class OrganisationForm(FlaskForm):
    name = StringField(_l("Organisation name"), validators=[PlainText(120)])
    credit_code = StringField(
        _l("Unified social credit code (optional)"), validators=[PlainText(18, required=False)]
    )


class InviteForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(REQUIRED_MESSAGE)])
    role = SelectField(_l("Role"), choices=ROLE_CHOICES)


class RoleForm(FlaskForm):
    # Any value reaches the service, which refuses an unknown role with its message (a
    # choice check here failed silently: the page only redirected).
    role = SelectField(_l("Role"), choices=ROLE_CHOICES, validate_choice=False)


class BillingProfileForm(FlaskForm):
    invoice_title = StringField(
        _l("Invoice title (发票抬头)"), validators=[PlainText(200, required=False)]
    )
    tax_id = StringField(_l("Tax id (税号)"))


class ProjectForm(FlaskForm):
    code = StringField(_l("Project number (项目/课题编号)"), validators=[PlainText(80)])
    name = StringField(_l("Project name"), validators=[PlainText(120, required=False)])

    def __init__(self, *args, **kwargs):  # beside the other forms of the organisation page
        kwargs.setdefault("prefix", "project")
        super().__init__(*args, **kwargs)
