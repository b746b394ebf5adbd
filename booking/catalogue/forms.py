from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, SelectField, StringField, TextAreaField
from wtforms.validators import InputRequired, Optional

from booking.catalogue.assets import EARLIEST_PURCHASE, purchase_date_problem
from booking.catalogue.models import KINDS, VISIBILITIES
from booking.catalogue.rules import ResourceFields, format_day_hours, format_specs
from booking.forms import REQUIRED_MESSAGE, WholeNumberField
from booking.inputs import MAX_YEAR

KIND_LABELS = {
    "instrument": _l("Instrument"),
    "pilot_line": _l("Pilot line"),
    "compute": _l("Compute"),
    "licence": _l("Software licence"),
}
VISIBILITY_LABELS = {
    "public": _l("Public"),
    "residents": _l("Carrier residents only"),
}
WEEKDAY_LABELS = (
    _l("Monday"),
    _l("Tuesday"),
    _l("Wednesday"),
    _l("Thursday"),
    _l("Friday"),
    _l("Saturday"),
    _l("Sunday"),
)


def optional_int(value):
    if value in (None, "", "None"):
        return None
    return int(value)


def _minutes(label):
    return WholeNumberField(label, validators=[InputRequired(REQUIRED_MESSAGE)])


class ResourceForm(FlaskForm):
    kind = SelectField(_l("Kind"), choices=[(k, KIND_LABELS[k]) for k in KINDS])
    name_zh = StringField(_l("Name (Chinese)"))
    name_en = StringField(_l("Name (English)"))
    description_zh = TextAreaField(_l("Description (Chinese)"))
    description_en = TextAreaField(_l("Description (English)"))
    location = StringField(_l("Location"))
    specs = TextAreaField(
        _l(
            "Specifications, one 'name: value' per line; a name in both languages as '中文名 / English name'"
        )
    )
    capacity = WholeNumberField(_l("Capacity"), validators=[InputRequired(REQUIRED_MESSAGE)])
    unit_zh = StringField(_l("Unit name (Chinese)"))
    unit_en = StringField(_l("Unit name (English)"))
    slot_minutes = _minutes(_l("Booking granularity (minutes)"))
    min_duration_minutes = _minutes(_l("Minimum duration (minutes)"))
    max_duration_minutes = _minutes(_l("Maximum duration (minutes)"))
    min_notice_minutes = _minutes(_l("Minimum notice (minutes)"))
    max_advance_days = WholeNumberField(
        _l("Bookable up to (days ahead)"), validators=[InputRequired(REQUIRED_MESSAGE)]
    )
    setup_minutes = _minutes(_l("Setup buffer (minutes)"))
    cleanup_minutes = _minutes(_l("Cleanup buffer (minutes)"))
    always_open = BooleanField(_l("Always open (ignore opening hours)"))
    hours_0 = StringField(WEEKDAY_LABELS[0])
    hours_1 = StringField(WEEKDAY_LABELS[1])
    hours_2 = StringField(WEEKDAY_LABELS[2])
    hours_3 = StringField(WEEKDAY_LABELS[3])
    hours_4 = StringField(WEEKDAY_LABELS[4])
    hours_5 = StringField(WEEKDAY_LABELS[5])
    hours_6 = StringField(WEEKDAY_LABELS[6])
    requires_approval = BooleanField(_l("Bookings need an operator's approval"))
    qualification_id = SelectField(
        _l("Required qualification"), coerce=optional_int, validate_choice=False
    )
    visibility = SelectField(
        _l("Visibility"), choices=[(v, VISIBILITY_LABELS[v]) for v in VISIBILITIES]
    )

    def set_qualifications(self, qualifications, locale: str) -> None:
        self.qualification_id.choices = [("", _l("None"))] + [
            (q.id, q.name(locale)) for q in qualifications
        ]

    def hour_texts(self) -> dict[int, str]:
        return {d: getattr(self, f"hours_{d}").data or "" for d in range(7)}

    def fill_from(self, resource, opening_rows) -> None:
        for name in ResourceFields.__dataclass_fields__:
            if name in ("specs", "opening_hours"):
                continue
            getattr(self, name).data = getattr(resource, name)
        self.specs.data = format_specs(resource.specs)
        for d in range(7):
            getattr(self, f"hours_{d}").data = format_day_hours(opening_rows, d)

    def to_fields(self, specs, opening_rows) -> ResourceFields:
        return ResourceFields(
            kind=self.kind.data,
            name_zh=(self.name_zh.data or "").strip(),
            name_en=(self.name_en.data or "").strip(),
            description_zh=self.description_zh.data or "",
            description_en=self.description_en.data or "",
            location=(self.location.data or "").strip(),
            specs=specs,
            capacity=self.capacity.data,
            unit_zh=(self.unit_zh.data or "").strip(),
            unit_en=(self.unit_en.data or "").strip(),
            slot_minutes=self.slot_minutes.data,
            min_duration_minutes=self.min_duration_minutes.data,
            max_duration_minutes=self.max_duration_minutes.data,
            min_notice_minutes=self.min_notice_minutes.data,
            max_advance_days=self.max_advance_days.data,
            setup_minutes=self.setup_minutes.data,
            cleanup_minutes=self.cleanup_minutes.data,
            always_open=bool(self.always_open.data),
            requires_approval=bool(self.requires_approval.data),
            qualification_id=self.qualification_id.data,
            visibility=self.visibility.data,
            opening_hours=opening_rows,
        )


class CatalogueSearchForm(FlaskForm):
    class Meta:
        csrf = False  # a GET search form

    q = StringField(_l("Search"))
    kind = SelectField(_l("Kind"), validate_choice=False)
    carrier = SelectField(_l("Carrier"), validate_choice=False)


ASSET_CLASS_LABELS = {
    "": _l("Not counted for the bureau"),
    "general": _l("General instrument (通用)"),
    "specialised": _l("Specialised instrument (专用)"),
}


class PurchaseDayField(DateField):
    """A purchase date: from EARLIEST_PURCHASE on, not after the platform's last year (no
    date arithmetic can overflow); the service refuses one in the future. Not a DayField:
    that one starts in 2000, and instruments bought in the 1990s are still in use."""

    def process_formdata(self, valuelist):
        super().process_formdata(valuelist)
        if self.data is not None and not (
            EARLIEST_PURCHASE <= self.data and self.data.year <= MAX_YEAR
        ):
            self.data = None
            raise ValueError(str(purchase_date_problem().message))


class AssetForm(FlaskForm):
    asset_number = StringField(_l("Asset number (资产编号)"))
    original_value = StringField(_l("Original value, yuan (原值)"))
    purchased_on = PurchaseDayField(_l("Purchase date"), validators=[Optional()])
    funding_source = StringField(_l("Funding source (经费来源)"))
    asset_class = SelectField(_l("Class for quota hours"), choices=list(ASSET_CLASS_LABELS.items()))
