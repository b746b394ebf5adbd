"""Random create/modify/cancel sequences through the real services and database: capacity is
never exceeded, and the availability shown equals availability recomputed from scratch."""

import itertools
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from booking.bookings import service
from booking.bookings.models import HOLDING, Booking
from booking.extensions import db
from booking.problems import ServiceError
from tests.booking_helpers import at, next_monday
from tests.factories import make_carrier, make_org, make_resource, make_user

_codes = itertools.count()

operation = st.one_of(
    st.tuples(st.just("create"), st.integers(0, 15), st.integers(1, 6), st.integers(1, 4)),
    st.tuples(st.just("modify"), st.integers(0, 30), st.integers(0, 15), st.integers(1, 6)),
    st.tuples(st.just("cancel"), st.integers(0, 30)),
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    capacity=st.integers(1, 4),
    setup=st.sampled_from([0, 30]),
    cleanup=st.sampled_from([0, 30]),
    operations=st.lists(operation, min_size=1, max_size=12),
)
def test_capacity_invariant_through_services(app, capacity, setup, cleanup, operations):
    n = next(_codes)
    user = make_user(f"inv{n}@example.com")
    make_org(f"Inv {n}", members=[user])
    resource = make_resource(
        make_carrier(f"I{n}"),
        "Pool",
        kind="licence",
        capacity=capacity,
        always_open=True,
        setup_minutes=setup,
        cleanup_minutes=cleanup,
        max_duration_minutes=24 * 60,
    )
    day = at(next_monday(), 0)
    created: list[int] = []
    for op in operations:
        try:
            if op[0] == "create":
                _, slot, length, quantity = op
                start = day + timedelta(minutes=30 * slot)
                b = service.create_booking(
                    user,
                    resource.id,
                    start,
                    start + timedelta(minutes=30 * length),
                    quantity=min(quantity, capacity),
                )
                created.append(b.id)
            elif op[0] == "modify" and created:
                _, pick, slot, length = op
                start = day + timedelta(minutes=30 * slot)
                service.modify_booking(
                    user,
                    created[pick % len(created)],
                    start=start,
                    end=start + timedelta(minutes=30 * length),
                )
            elif op[0] == "cancel" and created:
                service.cancel_booking(user, created[op[1] % len(created)])
        except ServiceError:
            pass  # refused: nothing changed
    db.session.commit()
    rows = db.session.execute(
        select(Booking.busy_from, Booking.busy_until, Booking.quantity).where(
            Booking.resource_id == resource.id, Booking.status.in_(HOLDING)
        )
    ).all()
    window = (day - timedelta(hours=1), day + timedelta(hours=12))
    _, pieces = service.availability(user, resource.id, *window)
    for step in range(int((window[1] - window[0]).total_seconds() // 900)):
        instant = window[0] + timedelta(minutes=15 * step)
        in_use = sum(q for lo, hi, q in rows if lo <= instant < hi)
        assert in_use <= capacity
        shown = next(p for p in pieces if p["from"] <= instant < p["until"])
        assert shown["free"] == capacity - in_use
