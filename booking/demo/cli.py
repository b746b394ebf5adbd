"""`flask demo load`: a realistic, idempotent demo platform for development."""

from __future__ import annotations

from datetime import date, time, timedelta

import click
from flask import Blueprint, current_app
from sqlalchemy import select

from booking.accounts.models import User
from booking.accounts.service import user_by_email
from booking.carriers.models import CARRIER_ADMIN, OPERATOR, Carrier, CarrierStaff
from booking.catalogue.models import Qualification, Resource
from booking.catalogue.rules import ResourceFields, opening_hours_problems
from booking.catalogue.service import create_resource
from booking.extensions import db
from booking.orgs.models import MANAGER, MEMBER, Membership, Organisation, Residency

cli = Blueprint("demo_cli", __name__, cli_group="demo")

DEMO_PASSWORD = "demo12345"
# email, name, platform admin?, (carrier code, role) or None
DEMO_USERS = [
    ("admin@demo.test", "平台管理员 Platform Admin", True, None),
    ("operator@demo.test", "李运营 Li (CQ01 admin)", False, ("CQ01", CARRIER_ADMIN)),
    ("operator2@demo.test", "王工 Wang (CQ02 operator)", False, ("CQ02", OPERATOR)),
    ("admin2@demo.test", "陈主任 Chen (CQ02 admin)", False, ("CQ02", CARRIER_ADMIN)),
    ("admin3@demo.test", "周老师 Zhou (CQ03 admin)", False, ("CQ03", CARRIER_ADMIN)),
    ("manager@demo.test", "赵经理 Zhao (startup manager)", False, None),
    ("engineer@demo.test", "张工程师 Zhang (engineer)", False, None),
    ("engineer2@demo.test", "刘工程师 Liu (engineer)", False, None),
]
# name, credit code, resident at, members (email, role)
DEMO_ORGANISATIONS = [
    (
        "山城智感科技有限公司",
        "91500000MA5U000001",
        ["CQ01"],
        [("manager@demo.test", MANAGER), ("engineer@demo.test", MEMBER)],
    ),
    (
        "渝新储能材料有限公司",
        "91500000MA5U000002",
        ["CQ02"],
        [("engineer2@demo.test", MANAGER)],
    ),
    (
        "蓉城外部检测客户（演示）",
        None,
        [],
        [("engineer2@demo.test", MEMBER)],
    ),
]


def load_demo() -> dict[str, int]:
    """Create whatever part of the demo is missing; running it twice changes nothing."""
    from werkzeug.security import generate_password_hash

    from booking.demo.data import CARRIERS, QUALIFICATIONS, RESOURCES, SPEC_NAMES_ZH

    created = {"users": 0, "carriers": 0, "resources": 0, "organisations": 0}
    password_hash = generate_password_hash(DEMO_PASSWORD)
    users: dict[str, User] = {}
    for email, name, is_admin, _role in DEMO_USERS:
        user = user_by_email(email)
        if user is None:
            user = User(
                email=email,
                display_name=name,
                password_hash=password_hash,
                is_platform_admin=is_admin,
            )
            db.session.add(user)
            created["users"] += 1
        users[email] = user
    db.session.flush()

    carriers: dict[str, Carrier] = {}
    for data in CARRIERS:
        carrier = db.session.scalar(select(Carrier).where(Carrier.code == data["code"]))
        if carrier is None:
            carrier = Carrier(**data)
            db.session.add(carrier)
            created["carriers"] += 1
        else:  # details added to the demo later fill blanks; nothing typed since is overwritten
            for name, value in data.items():
                if getattr(carrier, name) in ("", None):
                    setattr(carrier, name, value)
        carriers[data["code"]] = carrier
    db.session.flush()

    for email, _name, _admin, role in DEMO_USERS:
        if role is None:
            continue
        code, staff_role = role
        user, carrier = users[email], carriers[code]
        if not db.session.scalar(
            select(CarrierStaff.id).where(
                CarrierStaff.user_id == user.id, CarrierStaff.carrier_id == carrier.id
            )
        ):
            db.session.add(CarrierStaff(user_id=user.id, carrier_id=carrier.id, role=staff_role))

    qualifications: dict[tuple[str, str], Qualification] = {}
    for data in QUALIFICATIONS:
        carrier = carriers[data["carrier"]]
        q = db.session.scalar(
            select(Qualification).where(
                Qualification.carrier_id == carrier.id, Qualification.name_en == data["name_en"]
            )
        )
        if q is None:
            q = Qualification(
                carrier_id=carrier.id, name_zh=data["name_zh"], name_en=data["name_en"]
            )
            db.session.add(q)
        qualifications[(data["carrier"], data["name_en"])] = q
    db.session.flush()

    for name, code, resident_at, members in DEMO_ORGANISATIONS:
        org = db.session.scalar(select(Organisation).where(Organisation.name == name))
        if org is None:
            org = Organisation(name=name, credit_code=code)
            db.session.add(org)
            db.session.flush()
            created["organisations"] += 1
        for email, role in members:
            if not db.session.scalar(
                select(Membership.id).where(
                    Membership.user_id == users[email].id, Membership.organisation_id == org.id
                )
            ):
                db.session.add(
                    Membership(user_id=users[email].id, organisation_id=org.id, role=role)
                )
        for carrier_code in resident_at:
            if not db.session.scalar(
                select(Residency.id).where(
                    Residency.organisation_id == org.id,
                    Residency.carrier_id == carriers[carrier_code].id,
                )
            ):
                db.session.add(
                    Residency(organisation_id=org.id, carrier_id=carriers[carrier_code].id)
                )
    db.session.commit()

    for data in RESOURCES:
        carrier = carriers[data["carrier"]]
        exists = db.session.scalar(
            select(Resource.id).where(
                Resource.carrier_id == carrier.id, Resource.name_en == data["name_en"]
            )
        )
        if exists:
            continue
        rows, problems = opening_hours_problems(data.get("opening_hours") or {})
        if problems:
            raise click.ClickException(f"demo data: bad opening hours for {data['name_en']}")
        qualification = qualifications.get((data["carrier"], data.get("qualification") or ""))
        fields = ResourceFields(
            **{
                k: v
                for k, v in data.items()
                if k not in ("carrier", "opening_hours", "qualification", "specs")
            },
            specs=[[SPEC_NAMES_ZH.get(name, name), name, value] for name, value in data["specs"]],
            qualification_id=qualification.id if qualification else None,
            opening_hours=rows,
        )
        admin = db.session.get(User, next(s.user_id for s in carrier.staff))
        create_resource(carrier, fields, actor=admin)
        created["resources"] += 1
    created["rates"] = _demo_rates(users["operator@demo.test"])
    _demo_voucher(users["admin@demo.test"])
    _demo_projects_and_assets(carriers["CQ01"])
    created["past bookings"] = _demo_history(users)
    created["bookings"] = _demo_bookings(users)
    return created


# Plausible prices in yuan for resident / platform member / external users, by kind.
DEMO_PRICES = {
    "instrument": ("hour", "120", "200", "300"),
    "pilot_line": ("day", "3000", "5000", "8000"),
    "compute": ("quantity_hour", "12", "18", "25"),
    "licence": ("quantity_hour", "30", "45", "60"),
}


def _demo_rates(by: User) -> int:
    """A rate per tier for every demo resource that has none yet."""
    from datetime import date

    from booking.billing.models import Rate
    from booking.billing.money import parse_yuan

    priced = set(db.session.scalars(select(Rate.resource_id).distinct()))
    made = 0
    for resource in db.session.scalars(select(Resource)):
        if resource.id in priced:
            continue
        unit, *prices = DEMO_PRICES[resource.kind]
        for tier, price in zip(("resident", "member", "external"), prices, strict=True):
            db.session.add(
                Rate(
                    resource_id=resource.id,
                    tier=tier,
                    unit=unit,
                    price_fen=parse_yuan(price),
                    minimum_fen=parse_yuan(price) if unit == "hour" else 0,
                    basis="greater" if unit != "day" else "booked",
                    effective_from=date(2026, 1, 1),
                    created_by_id=by.id,
                )
            )
            made += 1
    db.session.commit()
    return made


def _demo_voucher(admin: User) -> None:
    """A municipal voucher programme with a grant to the demo startup."""
    from datetime import date

    from booking.billing.voucher_models import Voucher, VoucherProgramme

    programme = db.session.scalar(
        select(VoucherProgramme).where(VoucherProgramme.name == "2026 年度科技创新券")
    )
    if programme is None:
        programme = VoucherProgramme(
            name="2026 年度科技创新券",
            issuer="重庆市科学技术局（演示）",
            coverage_percent=50,
            cap_fen=5_000_000,
            valid_from=date(2026, 1, 1),
            valid_until=date(2027, 12, 31),
            kinds=[],
        )
        db.session.add(programme)
        db.session.flush()
    org = db.session.scalar(
        select(Organisation).where(Organisation.name == DEMO_ORGANISATIONS[0][0])
    )
    if not db.session.scalar(
        select(Voucher.id).where(
            Voucher.programme_id == programme.id, Voucher.organisation_id == org.id
        )
    ):
        db.session.add(
            Voucher(
                programme_id=programme.id,
                organisation_id=org.id,
                amount_fen=2_000_000,
                granted_by_id=admin.id,
            )
        )
    db.session.commit()


HISTORY_PURPOSE = "演示历史 Demo history"
HISTORY_MONTHS = 3


DEMO_PROJECTS = [
    ("KJ-2026-017", "毫米波雷达模组研发（区科技局课题）"),
    ("RD-2026-03", "车规级域控制器 EMC 整改"),
]
# Asset data of two CQ01 instruments (English name → number, 原值 in fen, purchase date,
# funding source, class): what the bureau's annual form lists.
DEMO_ASSETS = {
    "3 m EMC pre-compliance semi-anechoic chamber": (
        "XH-ZC-2021-001",
        480_000_000,
        date(2021, 9, 1),
        "市级科技创新平台专项",
        "specialised",
    ),
    "Spectrum analyser 26.5 GHz": (
        "XH-ZC-2022-014",
        68_000_000,
        date(2022, 3, 15),
        "园区自筹",
        "general",
    ),
}


def _demo_projects_and_assets(cq01: Carrier) -> None:
    """Projects of the first demo startup, and asset data; blanks are filled, nothing typed
    since is overwritten."""
    from booking.orgs.models import Project

    org = db.session.scalar(
        select(Organisation).where(Organisation.name == DEMO_ORGANISATIONS[0][0])
    )
    for code, name in DEMO_PROJECTS:
        if not db.session.scalar(
            select(Project.id).where(Project.organisation_id == org.id, Project.code == code)
        ):
            db.session.add(Project(organisation_id=org.id, code=code, name=name))
    for resource in db.session.scalars(select(Resource).where(Resource.carrier_id == cq01.id)):
        found = DEMO_ASSETS.get(resource.name_en)
        if found and not resource.asset_number:
            number, value, bought, funding, asset_class = found
            resource.asset_number, resource.original_value_fen = number, value
            resource.purchased_on, resource.funding_source = bought, funding
            resource.asset_class = asset_class
    db.session.commit()


def _demo_history(users: dict[str, User], today=None) -> int:
    """Three past months of use at CQ01, billed through the real invoice run and issued, so
    that reports, charts and invoices have something to show. Only once."""
    from datetime import UTC, date, datetime
    from zoneinfo import ZoneInfo

    from booking.billing.invoices import issue, run_invoices
    from booking.bookings.models import Booking
    from booking.metering.models import CHECK_IN, UsageRecord

    if db.session.scalar(select(Booking.id).where(Booking.purpose == HISTORY_PURPOSE).limit(1)):
        return 0
    cq01 = db.session.scalar(select(Carrier).where(Carrier.code == "CQ01"))
    zone = ZoneInfo(cq01.timezone)
    today = today or datetime.now(zone).date()
    first = date(today.year, today.month, 1)
    for _ in range(HISTORY_MONTHS):
        first = (first - timedelta(days=1)).replace(day=1)
    resources = list(
        db.session.scalars(
            select(Resource).where(Resource.carrier_id == cq01.id).order_by(Resource.id)
        )
    )
    orgs = {
        o.name: o.id
        for o in db.session.scalars(select(Organisation))
        if o.name in {name for name, *_ in DEMO_ORGANISATIONS}
    }
    who = [
        (users["engineer@demo.test"], orgs["山城智感科技有限公司"]),
        (users["engineer2@demo.test"], orgs["渝新储能材料有限公司"]),
        (users["engineer2@demo.test"], orgs["蓉城外部检测客户（演示）"]),
    ]
    # The resources were in service through the history we invent for them.
    in_service = datetime.combine(first, time(0), zone).astimezone(UTC)
    for resource in resources:
        resource.created_at = min(resource.created_at, in_service)
    made = 0
    day = first
    this_month = date(today.year, today.month, 1)
    while day < this_month:
        for n, resource in enumerate(resources):
            # Every resource busy on some weekdays, at different hours: a plausible pattern.
            if day.weekday() >= 5 or (day.toordinal() + n) % 3 == 0:
                continue
            user, org_id = who[(day.toordinal() + n) % 7 % 3]
            hours = 2 + (day.toordinal() + n) % 3
            quantity = 1 if resource.capacity == 1 else 1 + (day.toordinal() + n) % 2
            if resource.kind == "pilot_line":
                hours = 8
            local = datetime(day.year, day.month, day.day, 9 + (n % 4) * 2, tzinfo=zone)
            start, end = local.astimezone(UTC), (local + timedelta(hours=hours)).astimezone(UTC)
            status = "no_show" if (day.toordinal() + n) % 23 == 0 else "completed"
            booking = Booking(
                resource_id=resource.id,
                user_id=user.id,
                organisation_id=org_id,
                created_by_id=user.id,
                start_at=start,
                end_at=end,
                busy_from=start,
                busy_until=end,
                quantity=quantity,
                purpose=HISTORY_PURPOSE,
                status=status,
            )
            db.session.add(booking)
            db.session.flush()
            if status == "completed":
                db.session.add(
                    UsageRecord(
                        carrier_id=cq01.id,
                        resource_id=resource.id,
                        booking_id=booking.id,
                        user_id=user.id,
                        organisation_id=org_id,
                        start_at=start + timedelta(minutes=5),
                        end_at=end - timedelta(minutes=10 * (n % 3)),
                        quantity=quantity,
                        source=CHECK_IN,
                    )
                )
            made += 1
        day += timedelta(days=1)
    db.session.commit()
    operator = users["operator@demo.test"]
    month = first
    while month < this_month:
        result = run_invoices(cq01, month.strftime("%Y-%m"))
        if month < (this_month - timedelta(days=1)).replace(day=1):  # the last one stays draft
            for invoice in result.invoices:
                issue(operator, cq01, invoice.id)
        month = (month + timedelta(days=32)).replace(day=1)
    return made


def _in_two_days(carrier: Carrier):
    from datetime import datetime, time
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(carrier.timezone)
    return datetime.combine(datetime.now(zone).date() + timedelta(days=2), time(9), zone)


def _demo_bookings(users: dict[str, User]) -> int:
    """A few bookings so that pages have something to show: an approved GPU booking and a
    pilot-line request waiting for approval. Only when the demo engineer has none."""
    from booking.bookings.models import Booking, QualificationGrant
    from booking.bookings.service import BookingRefused, create_booking, next_free_slot

    engineer = users["engineer@demo.test"]
    if db.session.scalar(
        select(Booking.id)
        .where(Booking.user_id == engineer.id, Booking.purpose != HISTORY_PURPOSE)
        .limit(1)
    ):
        return 0
    cq01 = db.session.scalar(select(Carrier).where(Carrier.code == "CQ01"))
    for q in db.session.scalars(select(Qualification).where(Qualification.carrier_id == cq01.id)):
        db.session.add(QualificationGrant(user_id=engineer.id, qualification_id=q.id))
    db.session.commit()
    made = 0
    wanted = [("compute", 180, 2), ("pilot_line", None, 1)]
    for kind, minutes, quantity in wanted:
        resource = db.session.scalar(
            select(Resource)
            .where(
                Resource.carrier_id == cq01.id,
                Resource.kind == kind,
                Resource.visibility == "public",
            )
            .order_by(Resource.id)
        )
        if resource is None:
            continue
        duration = minutes or resource.min_duration_minutes
        # From the day after tomorrow, 09:00: a booking that is clearly upcoming, never one
        # that starts within minutes of loading the demo (the kiosk would offer its check-in).
        start = next_free_slot(engineer, resource.id, duration, quantity, after=_in_two_days(cq01))
        if start is None:
            continue
        try:
            create_booking(
                engineer,
                resource.id,
                start,
                start + timedelta(minutes=duration),
                quantity=quantity,
                purpose="演示预约 Demo booking",
            )
            made += 1
        except BookingRefused:
            continue
    return made


@cli.cli.command("load")
def load() -> None:
    """Load the demo platform (development only; idempotent)."""
    if current_app.config["BOOKING_ENV"] == "production":
        raise click.ClickException("Demo data is never loaded when BOOKING_ENV=production.")
    created = load_demo()
    click.echo("Demo data ready (" + ", ".join(f"{n} new {k}" for k, n in created.items()) + ").")
    click.echo(f"Demo accounts (password {DEMO_PASSWORD}):")
    for email, name, _admin, _role in DEMO_USERS:
        click.echo(f"  {email:24} {name}")
