from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, SelectField, StringField, TextAreaField, TimeField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from booking.bookings.facts import MAX_REASON_LENGTH
from booking.catalogue.forms import KIND_LABELS, WEEKDAY_LABELS
from booking.forms import REQUIRED_MESSAGE, DayField, MultiCheckboxField, WholeNumberField

RRULE_DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


def local_moment(day: date | None, clock: time | None, tz: str) -> datetime | None:
    """A date and a wall-clock time in the carrier's zone, as an aware datetime."""
    if day is None or clock is None:
        return None
    return datetime.combine(day, clock).replace(tzinfo=ZoneInfo(tz))


def quantity_field() -> WholeNumberField:
    return WholeNumberField(
        _l("Quantity"),
        default=1,
        validators=[
            InputRequired(REQUIRED_MESSAGE),
            NumberRange(min=1, message=_l("Must be at least %(min)d.")),
        ],
    )


class _When:
    day = DayField(_l("Date"), validators=[InputRequired(REQUIRED_MESSAGE)])
    start_time = TimeField(_l("From"), validators=[InputRequired(REQUIRED_MESSAGE)])
    end_day = DayField(_l("Until date (if another day)"), validators=[Optional()])
    end_time = TimeField(_l("To"), validators=[InputRequired(REQUIRED_MESSAGE)])

    def moments(self, tz: str) -> tuple[datetime | None, datetime | None]:
        start = local_moment(self.day.data, self.start_time.data, tz)
        end = local_moment(self.end_day.data or self.day.data, self.end_time.data, tz)
        return start, end


class BookingForm(_When, FlaskForm):
    quantity = quantity_field()
    organisation_id = SelectField(_l("Paying organisation"), coerce=int, validate_choice=True)
    purpose = TextAreaField(_l("Purpose"), validators=[Length(max=2000)])
    project = StringField(_l("Project (项目/课题编号)"), validators=[Length(max=80)])
    repeat = SelectField(
        _l("Repeat"),
        choices=[("", _l("Does not repeat")), ("DAILY", _l("Daily")), ("WEEKLY", _l("Weekly"))],
        default="",
    )
    weekdays = MultiCheckboxField(
        _l("On these weekdays"), choices=list(zip(RRULE_DAYS, WEEKDAY_LABELS, strict=True))
    )
    repeat_until = DayField(_l("Repeat until"), validators=[Optional()])
    repeat_count = WholeNumberField(
        _l("or number of times"),
        validators=[
            Optional(),
            NumberRange(min=1, max=200, message=_l("Between %(min)d and %(max)d.")),
        ],
    )

    def rrule(self) -> str | None:
        if not self.repeat.data:
            return None
        parts = [f"FREQ={self.repeat.data}"]
        if self.repeat.data == "WEEKLY" and self.weekdays.data:
            parts.append("BYDAY=" + ",".join(d for d in RRULE_DAYS if d in self.weekdays.data))
        if self.repeat_count.data:
            parts.append(f"COUNT={self.repeat_count.data}")
        elif self.repeat_until.data:
            parts.append(f"UNTIL={self.repeat_until.data:%Y%m%d}T235959")
        return ";".join(parts)


class ModifyForm(_When, FlaskForm):
    quantity = quantity_field()
    reason = StringField(_l("Reason (optional)"), validators=[Length(max=500)])


class CancelForm(FlaskForm):
    # The service judges the reason and the scope (facts.reason_problems,
    # series.cancel_with_scope) and the page shows its message; refused here, the form
    # returned to the booking without a word.
    reason = StringField(_l("Reason (optional)"), render_kw={"maxlength": MAX_REASON_LENGTH})
    scope = SelectField(
        _l("Cancel"),
        choices=[
            ("one", _l("Only this booking")),
            ("following", _l("This and the following ones")),
            ("all", _l("The whole series")),
        ],
        default="one",
        validate_choice=False,
    )


class ReasonForm(FlaskForm):
    reason = StringField(
        _l("Reason"),
        validators=[
            Length(max=MAX_REASON_LENGTH, message=_l("Must be at most %(max)d characters."))
        ],
    )


class OnBehalfForm(_When, FlaskForm):
    resource_id = SelectField(_l("Resource"), coerce=int)
    email = EmailField(_l("Booker's e-mail"), validators=[DataRequired(REQUIRED_MESSAGE)])
    organisation = StringField(
        _l("Paying organisation (if the person has several)"), validators=[Length(max=120)]
    )
    quantity = quantity_field()
    purpose = StringField(_l("Purpose"), validators=[Length(max=2000)])
    override_reason = StringField(
        _l("Override the booking rules, because… (optional)"), validators=[Length(max=500)]
    )


class OutageForm(_When, FlaskForm):
    resource_id = SelectField(_l("Resource"), coerce=int)
    reason = StringField(_l("Reason"), validators=[DataRequired(REQUIRED_MESSAGE), Length(max=500)])
    repeat = SelectField(
        _l("Repeat"),
        choices=[
            ("", _l("Does not repeat")),
            ("DAILY", _l("Daily")),
            ("WEEKLY", _l("Weekly")),
            ("MONTHLY", _l("Monthly")),
        ],
        default="",
    )
    repeat_count = WholeNumberField(
        _l("Number of times"),
        validators=[
            Optional(),
            NumberRange(min=1, max=200, message=_l("Between %(min)d and %(max)d.")),
        ],
    )

    def rrule(self) -> str | None:
        if not self.repeat.data:
            return None
        return f"FREQ={self.repeat.data};COUNT={self.repeat_count.data or 1}"


class GrantForm(FlaskForm):
    qualification_id = SelectField(_l("Qualification"), coerce=int)
    email = EmailField(_l("E-mail"), validators=[DataRequired(REQUIRED_MESSAGE)])
    expires_on = DayField(_l("Valid until (optional)"), validators=[Optional()])


class FindFreeForm(FlaskForm):
    class Meta:
        csrf = False  # a GET search

    kind = SelectField(_l("Kind"), choices=[(k, v) for k, v in KIND_LABELS.items()])
    day = DayField(_l("Date"), validators=[InputRequired(REQUIRED_MESSAGE)])
    start_time = TimeField(_l("From"), validators=[InputRequired(REQUIRED_MESSAGE)])
    end_time = TimeField(_l("To"), validators=[InputRequired(REQUIRED_MESSAGE)])
    quantity = quantity_field()


class NextFreeForm(FlaskForm):
    class Meta:
        csrf = False

    hours = WholeNumberField(
        _l("Hours"),
        default=2,
        validators=[
            InputRequired(REQUIRED_MESSAGE),
            NumberRange(min=1, max=24 * 14, message=_l("Between %(min)d and %(max)d.")),
        ],
    )
    quantity = quantity_field()
