"""Factories for test rows: small functions with sensible defaults."""

from __future__ import annotations

from werkzeug.security import generate_password_hash

from booking.accounts.models import User
from booking.bookings.models import Booking
from booking.carriers.models import CARRIER_ADMIN, OPERATOR, Carrier, CarrierStaff
from booking.catalogue.models import OpeningHours, Qualification, Resource
from booking.extensions import db
from booking.orgs.models import MANAGER, MEMBER, Membership, Organisation, Residency

PASSWORD = "pass-word-123"
_HASH: dict[str, str] = {}


def password_hash() -> str:
    if "h" not in _HASH:  # hashing is slow by design: do it once per run
        _HASH["h"] = generate_password_hash(PASSWORD)
    return _HASH["h"]


def make_user(
    email: str, *, admin: bool = False, locale: str | None = None, name: str = ""
) -> User:
    user = User(
        email=email,
        display_name=name or email.split("@")[0],
        password_hash=password_hash(),
        is_platform_admin=admin,
        locale=locale,
    )
    db.session.add(user)
    db.session.commit()
    return user


def make_carrier(
    code: str, *, admin: User | None = None, operators=(), tz="Asia/Shanghai"
) -> Carrier:
    carrier = Carrier(code=code, name_zh=f"{code}孵化器", name_en=f"{code} Incubator", timezone=tz)
    db.session.add(carrier)
    db.session.flush()
    if admin:
        db.session.add(CarrierStaff(user_id=admin.id, carrier_id=carrier.id, role=CARRIER_ADMIN))
    for op in operators:
        db.session.add(CarrierStaff(user_id=op.id, carrier_id=carrier.id, role=OPERATOR))
    db.session.commit()
    return carrier


def make_org(name: str, *, managers=(), members=(), resident_at=()) -> Organisation:
    org = Organisation(name=name)
    db.session.add(org)
    db.session.flush()
    for u in managers:
        db.session.add(Membership(user_id=u.id, organisation_id=org.id, role=MANAGER))
    for u in members:
        db.session.add(Membership(user_id=u.id, organisation_id=org.id, role=MEMBER))
    for c in resident_at:
        db.session.add(Residency(organisation_id=org.id, carrier_id=c.id))
    db.session.commit()
    return org


def make_qualification(carrier: Carrier, name_en: str = "SEM training") -> Qualification:
    q = Qualification(carrier_id=carrier.id, name_zh="电镜培训", name_en=name_en)
    db.session.add(q)
    db.session.commit()
    return q


def make_resource(carrier: Carrier, name_en: str = "SEM", **overrides) -> Resource:
    values = dict(
        kind="instrument",
        name_zh=f"{name_en}（中文）",
        name_en=name_en,
        capacity=1,
        slot_minutes=30,
        min_duration_minutes=30,
        max_duration_minutes=480,
        visibility="public",
        status="active",
        location="A-101",
        specs=[["Resolution", "1 nm"]],
    )
    values.update(overrides)
    resource = Resource(carrier_id=carrier.id, **values)
    resource.opening_hours = [OpeningHours(weekday=d, opens=540, closes=1080) for d in range(5)]
    db.session.add(resource)
    db.session.commit()
    return resource


def make_booking(resource, user, org, start, end, status, quantity=1) -> Booking:
    """A booking row in any state, as it would be after its history (no rules checked):
    for figures that read bookings, not for the booking engine."""
    booking = Booking(
        resource_id=resource.id,
        user_id=user.id,
        organisation_id=org.id,
        start_at=start,
        end_at=end,
        busy_from=start,
        busy_until=end,
        quantity=quantity,
        status=status,
    )
    db.session.add(booking)
    db.session.flush()
    return booking
