from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, NumberRange

from booking.carriers.rules import offered_timezones
from booking.forms import REQUIRED_MESSAGE, PlainText, WholeNumberField

STAFF_ROLE_CHOICES = [("operator", _l("Operator")), ("admin", _l("Carrier admin"))]


def timezone_choices():
    return [(z, z) for z in sorted(offered_timezones())]


class CarrierForm(FlaskForm):
    code = StringField(_l("Code (e.g. CQ01)"), validators=[PlainText(12)])
    name_zh = StringField(_l("Name (Chinese)"), validators=[PlainText(120)])
    name_en = StringField(_l("Name (English)"), validators=[PlainText(120)])
    address = StringField(_l("Address"), validators=[PlainText(200, required=False)])
    timezone = SelectField(_l("Time zone"), default="Asia/Shanghai")
    admin_email = EmailField(
        _l("Carrier admin's e-mail"), validators=[DataRequired(REQUIRED_MESSAGE)]
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.timezone.choices = timezone_choices()


class CarrierSettingsForm(FlaskForm):
    free_cancellation_hours = WholeNumberField(
        _l("Free cancellation until (hours before the start)"),
        validators=[
            InputRequired(REQUIRED_MESSAGE),
            NumberRange(min=0, max=24 * 60, message=_l("Between %(min)d and %(max)d.")),
        ],
    )
    late_cancellation_fee_percent = WholeNumberField(
        _l("Late-cancellation fee, in percent of the booked charge"),
        validators=[
            InputRequired(REQUIRED_MESSAGE),
            NumberRange(min=0, max=100, message=_l("Between %(min)d and %(max)d.")),
        ],
    )
    no_show_fee_percent = WholeNumberField(
        _l("No-show fee, in percent of the booked charge"),
        validators=[
            InputRequired(REQUIRED_MESSAGE),
            NumberRange(min=0, max=100, message=_l("Between %(min)d and %(max)d.")),
        ],
    )
    name_zh = StringField(_l("Name (Chinese)"), validators=[PlainText(120)])
    name_en = StringField(_l("Name (English)"), validators=[PlainText(120)])
    address = StringField(_l("Address"), validators=[PlainText(200, required=False)])
    timezone = SelectField(_l("Time zone"))
    description_zh = TextAreaField(_l("Description (Chinese)"))
    description_en = TextAreaField(_l("Description (English)"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        choices = timezone_choices()
        if (self.timezone.data, self.timezone.data) not in choices:
            # A zone saved before only these were offered: the page shows none chosen, so
            # that saving asks for one instead of quietly taking the list's first.
            choices.insert(0, ("", _l("Choose a time zone")))
        self.timezone.choices = choices


class InvoicingForm(FlaskForm):
    legal_name = StringField(_l("Legal name (销售方名称)"))
    credit_code = StringField(_l("Unified social credit code (统一社会信用代码)"))
    invoice_address = StringField(_l("Registered address"))
    phone = StringField(_l("Phone"))
    bank_name = StringField(_l("Bank (开户行)"))
    bank_account = StringField(_l("Account number"))
    tax_rate = StringField(_l("VAT rate (%)"), validators=[InputRequired(REQUIRED_MESSAGE)])
    prices_include_tax = BooleanField(_l("Prices include VAT (含税)"))
    tax_code = StringField(_l("Tax classification code (税收分类编码)"))
    payment_terms_days = WholeNumberField(
        _l("Payment terms (days after issue)"),
        validators=[
            InputRequired(REQUIRED_MESSAGE),
            NumberRange(min=0, max=365, message=_l("Between %(min)d and %(max)d.")),
        ],
    )


class QuotaForm(FlaskForm):
    quota_hours_general = WholeNumberField(
        _l("Quota hours a year, general instruments"),
        validators=[
            InputRequired(REQUIRED_MESSAGE),
            NumberRange(min=1, max=8784, message=_l("Between %(min)d and %(max)d.")),
        ],
    )
    quota_hours_specialised = WholeNumberField(
        _l("Quota hours a year, specialised instruments"),
        validators=[
            InputRequired(REQUIRED_MESSAGE),
            NumberRange(min=1, max=8784, message=_l("Between %(min)d and %(max)d.")),
        ],
    )


class StaffForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(REQUIRED_MESSAGE)])
    role = SelectField(_l("Role"), choices=STAFF_ROLE_CHOICES)


class ResidentForm(FlaskForm):
    organisation = StringField(_l("Organisation name"), validators=[PlainText(120)])


class QualificationForm(FlaskForm):
    name_zh = StringField(_l("Name (Chinese)"), validators=[PlainText(120)])
    name_en = StringField(_l("Name (English)"), validators=[PlainText(120)])
