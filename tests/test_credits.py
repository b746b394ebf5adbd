"""Credit notes (#13): capped by what the customer was due, line by line, and giving the voucher
subsidy of credited lines back to the vouchers (the claim list nets it off) — both databases."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from booking.billing import credits, invoices, vouchers
from booking.billing.invoice_models import Invoice
from booking.billing.voucher_models import Voucher, VoucherUse
from booking.extensions import db
from booking.problems import ServiceError
from tests.test_invoices import _grant, billed, billed_usage, used_booking  # noqa: F401

lines = st.lists(
    st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)).map(
        lambda t: credits.Creditable(0, t[0] + t[1], t[1])  # due includes room for the subsidy
    ),
    min_size=1,
    max_size=6,
).map(
    lambda found: [credits.Creditable(i, c.due_left, c.subsidy_left) for i, c in enumerate(found)]
)


@given(lines, st.lists(st.integers(1, 10**6), min_size=1, max_size=8))
def test_credits_never_exceed_what_was_due_and_return_the_whole_subsidy_at_the_end(found, asks):
    remaining = list(found)
    returned = 0
    for ask in asks:
        left = credits.due_left(remaining)
        if ask > left:
            try:
                credits.split_credit(ask, remaining)
            except ValueError:
                continue
            raise AssertionError("a credit beyond what was due was split")
        parts = credits.split_credit(ask, remaining)
        assert sum(p.due for p in parts) == ask
        by_line = {c.line_id: c for c in remaining}
        for part in parts:
            line = by_line[part.line_id]
            assert 0 < part.due <= line.due_left and 0 <= part.subsidy <= line.subsidy_left
            by_line[part.line_id] = credits.Creditable(
                line.line_id, line.due_left - part.due, line.subsidy_left - part.subsidy
            )
            returned += part.subsidy
        remaining = list(by_line.values())
    if credits.due_left(remaining) and credits.due_left(remaining) > 0:
        parts = credits.split_credit(credits.due_left(remaining), remaining)
        returned += sum(p.subsidy for p in parts)
    # Crediting everything that was due gives back exactly the subsidy there was.
    assert returned == sum(c.subsidy_left for c in found)


def test_a_credit_is_capped_by_what_was_due_not_by_the_list_price(billed):  # noqa: F811
    voucher = _grant(billed, 50, "10")  # a ¥10 subsidy on a ¥240 line: ¥230 due
    used_booking(billed, 10)
    (invoice,) = invoices.run_invoices(billed["carrier"], billed["period"]).invoices
    issued = invoices.issue(billed["op"], billed["carrier"], invoice.id)
    assert (issued.total_fen, issued.subsidy_fen, issued.due_fen) == (24000, 1000, 23000)
    try:
        invoices.credit_note(billed["op"], billed["carrier"], issued.id, "235", "too much")
    except ServiceError as refused:
        assert refused.code == "too_much" and refused.problems[0].details["max_fen"] == 23000
    else:
        raise AssertionError("a credit above what was due was accepted")
    half = invoices.credit_note(billed["op"], billed["carrier"], issued.id, "115", "half a run")
    assert (half.total_fen, half.subsidy_fen, half.due_fen) == (-12000, -500, -11500)
    db.session.expire_all()
    assert db.session.get(Voucher, voucher.id).used_fen == 500  # ¥5 back to the grant
    rest = invoices.credit_note(billed["op"], billed["carrier"], issued.id, "115", "the rest")
    assert rest.due_fen == -11500 and rest.subsidy_fen == -500
    db.session.expire_all()
    assert db.session.get(Voucher, voucher.id).used_fen == 0
    assert invoices.credit_left(db.session.get(Invoice, issued.id)) == 0
    # The claim list nets the credits off: nothing left to claim for this invoice.
    uses = vouchers.claims(billed["carrier"], voucher.programme_id)
    assert sum(use.amount_fen for use in uses) == 0 and len(uses) == 3


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    jobs=st.lists(st.tuples(st.integers(1, 300), st.integers(1, 4)), min_size=1, max_size=5),
    coverage=st.integers(1, 100),
    voucher_yuan=st.integers(1, 300),
    asks=st.lists(st.integers(1, 20000), min_size=1, max_size=5),
)
def test_credits_and_voucher_balances_stay_consistent(app, jobs, coverage, voucher_yuan, asks):
    """Random usage, vouchers and credits: credits never exceed what was due, every document
    is the sum of its lines, and a voucher's balance plus what it paid is what was granted."""
    invoice, voucher, op, carrier = billed_usage(jobs, coverage, voucher_yuan)
    issued = invoices.issue(op, carrier, invoice.id)
    credited = 0
    for ask in asks:
        left = invoices.credit_left(db.session.get(Invoice, issued.id))
        try:
            note = invoices.credit_note(op, carrier, issued.id, f"{ask / 100:.2f}", "r")
        except ServiceError as refused:
            assert refused.code == "too_much" and ask > left
            continue
        assert ask <= left
        credited += -note.due_fen
        assert note.total_fen == sum(line.amount_fen for line in note.lines)
        assert note.subsidy_fen == sum(line.subsidy_fen for line in note.lines)
    db.session.expire_all()
    assert credited <= issued.due_fen
    voucher = db.session.get(Voucher, voucher.id)
    drawn = db.session.scalar(
        select(func.coalesce(func.sum(VoucherUse.amount_fen), 0)).where(
            VoucherUse.voucher_id == voucher.id
        )
    )
    assert voucher.used_fen == drawn >= 0
    assert voucher.balance_fen + voucher.used_fen == voucher.amount_fen
