"""The booking state machine (issue 12): the table's own invariants, and random sequences of
actions driven through the real services on both databases — nothing moves out of a final
state, the sequence rises with every change a calendar sees, capacity is never exceeded."""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import timedelta

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from booking.bookings import rules
from booking.bookings import service as bookings
from booking.bookings.models import Booking
from booking.extensions import db
from booking.locking import resource_locked
from booking.metering import service as metering
from booking.metering.models import UsageRecord
from booking.problems import ServiceError
from tests.booking_helpers import at, next_monday
from tests.factories import make_carrier, make_org, make_resource, make_user


def test_the_table_has_no_way_out_of_a_final_state_and_only_known_states():
    for (status, action), step in rules.TRANSITIONS.items():
        assert status not in rules.FINAL, (status, action)
        assert step.to is None or step.to in rules.STATUSES
        assert step.who and step.who <= {rules.OWNER, rules.STAFF, rules.SYSTEM}
    # Every state but the final ones can be left, and every final state can be reached.
    reached = {step.to for step in rules.TRANSITIONS.values() if step.to}
    assert set(rules.FINAL) <= reached
    assert set(rules.HOLDING) == set(rules.STATUSES) - set(rules.FINAL)


_runs = itertools.count()
# Which transitions each step of the plan may make.
TRANSITIONS_OF = {
    "approve": (rules.APPROVE,),
    "reject": (rules.REJECT,),
    "cancel": (rules.CANCEL,),
    "modify": (rules.MODIFY, rules.MODIFY_FOR_APPROVAL),
    "check_in": (rules.CHECK_IN,),
    "check_out": (rules.CHECK_OUT,),
    "no_show": (rules.MARK_NO_SHOW,),
    "complete": (rules.COMPLETE,),
}
ACTIONS = ["create", "approve", "reject", "cancel", "modify", "check_in", "check_out",
           "no_show", "complete"]  # fmt: skip
# A plan starts by making a booking or two, then acts on them in any order.
first = st.tuples(
    st.just("create"), st.just(0), st.integers(0, 5), st.integers(1, 2), st.booleans()
)
steps = st.lists(first, min_size=1, max_size=2).flatmap(
    lambda opening: st.lists(
        st.tuples(
            st.sampled_from(ACTIONS),
            st.integers(0, 3),  # which booking (of those made so far)
            st.integers(0, 5),  # a slot on the day
            st.integers(1, 2),  # a quantity
            st.booleans(),  # acted by staff (else by the owner)
        ),
        min_size=1,
        max_size=14,
    ).map(lambda rest: opening + rest)
)


def _fresh(booking_id: int) -> Booking:
    db.session.commit()
    db.session.expire_all()
    return db.session.get(Booking, booking_id)


def _system(booking: Booking, action: str) -> None:
    """What the scheduler's jobs do: the transition through the one entry point (completion
    closes the sessions nobody checked out first, as the job does)."""
    with resource_locked(booking.resource_id):
        booking = db.session.get(Booking, booking.id, populate_existing=True)
        if action == rules.COMPLETE and booking.status == rules.IN_USE:
            metering.close_forgotten_sessions(booking)
        bookings.apply_action(booking, action, None, reason="job")
        db.session.commit()


def _held_peak(resource_id: int) -> int:
    edges: dict = defaultdict(int)
    for b in db.session.scalars(select(Booking).where(Booking.resource_id == resource_id)):
        if b.status in rules.HOLDING:
            edges[b.busy_from] += b.quantity
            edges[b.busy_until] -= b.quantity
    peak = load = 0
    for moment in sorted(edges):
        load += edges[moment]
        peak = max(peak, load)
    return peak


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(capacity=st.integers(1, 2), approval=st.booleans(), plan=steps)
def test_random_action_sequences_keep_the_machines_invariants(app, capacity, approval, plan):
    n = next(_runs)
    owner, operator = make_user(f"owner{n}@example.com"), make_user(f"op{n}@example.com")
    carrier = make_carrier(f"SM{n}", operators=[operator])
    make_org(f"Org {n}", members=[owner])
    resource = make_resource(
        carrier, f"R{n}", capacity=capacity, always_open=True, requires_approval=approval
    )
    day = next_monday()
    made: list[int] = []
    for action, which, slot, quantity, by_staff in plan:
        actor = operator if by_staff else owner
        start = at(day, 9 + slot)
        if action == "create":
            try:
                made.append(
                    bookings.create_booking(
                        actor,
                        resource.id,
                        start,
                        start + timedelta(hours=1),
                        quantity=quantity,
                        on_behalf_of=owner if by_staff else None,
                    ).id
                )
            except ServiceError:
                pass
            assert _held_peak(resource.id) <= capacity
            continue
        if not made:
            continue
        booking = _fresh(made[which % len(made)])
        before_status, before_sequence = booking.status, booking.sequence
        # A change to the same time and quantity changes nothing (no new calendar version).
        unchanged = action == "modify" and (booking.start_at, booking.end_at, booking.quantity) == (
            start,
            start + timedelta(hours=1),
            quantity,
        )
        try:
            if action == "approve":
                bookings.approve_booking(actor, booking.id)
            elif action == "reject":
                bookings.reject_booking(actor, booking.id, "no")
            elif action == "cancel":
                bookings.cancel_booking(actor, booking.id, "plans changed")
            elif action == "modify":
                bookings.modify_booking(
                    actor,
                    booking.id,
                    start=start,
                    end=start + timedelta(hours=1),
                    quantity=quantity,
                )
            elif action == "check_in":
                metering.check_in(actor, booking.id, now=booking.start_at)
            elif action == "check_out":
                open_usage = db.session.scalar(
                    select(UsageRecord.id).where(
                        UsageRecord.booking_id == booking.id, UsageRecord.end_at.is_(None)
                    )
                )
                if open_usage is None:
                    continue
                metering.check_out(actor, open_usage, now=booking.start_at + timedelta(minutes=30))
            elif action == "no_show":
                _system(booking, rules.MARK_NO_SHOW)
            elif action == "complete":
                _system(booking, rules.COMPLETE)
            refused = False
        except ServiceError:
            refused = True
        after = _fresh(booking.id)
        if before_status in rules.FINAL:
            assert refused and after.status == before_status, (action, before_status)
        if refused:
            assert (after.status, after.sequence) == (before_status, before_sequence), action
        elif unchanged:
            assert (after.status, after.sequence) == (before_status, before_sequence), action
        else:
            assert after.sequence > before_sequence, (action, before_status)
            possible = {TRANSITIONS_OF[action_name] for action_name in [action]}.pop()
            made_by = [a for a in possible if (before_status, a) in rules.TRANSITIONS]
            assert made_by, (action, before_status)
            targets = {rules.TRANSITIONS[(before_status, a)].to or before_status for a in made_by}
            assert after.status in targets, (action, before_status, after.status)
            event(f"{action} from {before_status}")
        assert _held_peak(resource.id) <= capacity
