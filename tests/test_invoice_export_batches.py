"""The carrier's invoice exports read invoices a batch at a time and stream, and the invoice
run writes its lines a few organisations at a time (#15: no whole-history or whole-month list
in memory); both say exactly what the whole-list version said."""

from __future__ import annotations

import io
from datetime import timedelta

from openpyxl import load_workbook
from sqlalchemy import event, inspect, select

from booking.accounts.models import User
from booking.billing import invoices, ledger
from booking.billing.invoice_models import Invoice
from booking.exports import csv_text
from booking.extensions import db
from booking.metering import service as metering
from tests.conftest import login
from tests.factories import make_org, make_user
from tests.test_exports import sheet_dicts
from tests.test_invoices import billed  # noqa: F401  (fixture)

ORGANISATIONS = 5


def _five_invoices_and_a_credit_note(w) -> list[Invoice]:
    """Five organisations used the GPU last month (two jobs each); two invoices are issued
    and one of them partly credited."""
    for n in range(ORGANISATIONS):
        engineer = make_user(f"eng{n}@batch.test")
        make_org(f"Batch {n}", members=[engineer], resident_at=[w["carrier"]])
        for job in range(2):
            start = w["day"].replace(hour=9 + job * 3) + timedelta(minutes=n)
            usage = metering.walk_up(engineer, w["gpu"].id, quantity=1 + n % 3, now=start)
            metering.check_out(engineer, usage.id, now=start + timedelta(minutes=90))
    drafts = invoices.run_invoices(w["carrier"], w["period"]).invoices
    first = invoices.issue(w["op"], w["carrier"], drafts[0].id)
    invoices.issue(w["op"], w["carrier"], drafts[1].id)
    invoices.credit_note(w["op"], w["carrier"], first.id, "1.00", "rounding")
    return invoices.carrier_invoices(w["carrier"])


def test_a_batch_at_a_time_in_list_order(billed):  # noqa: F811
    whole = _five_invoices_and_a_credit_note(billed)
    expected = [(i.id, [line.id for line in i.lines]) for i in whole]
    ids = invoices.carrier_invoice_ids(billed["carrier"])
    assert ids == [i.id for i in whole] and len(ids) == ORGANISATIONS + 1
    db.session.expunge_all()
    seen = []
    for invoice in invoices.invoices_by_batch(ids, size=2):
        held = [o for o in db.session.identity_map.values() if isinstance(o, Invoice)]
        assert len(held) <= 2, held  # the batches before were let go of
        seen.append((invoice.id, [line.id for line in invoice.lines]))
    assert seen == expected


def test_the_exports_stream_and_match_the_whole_list(client, billed, monkeypatch):  # noqa: F811
    whole = _five_invoices_and_a_credit_note(billed)
    zone = billed["carrier"].timezone
    expected_csv = csv_text(
        ledger.line_header(zone, internal_notes=True),
        (ledger.as_csv_values(row) for row in ledger.line_rows(whole, zone, internal_notes=True)),
    )
    numbers = invoices.credited_numbers(billed["carrier"])
    (credit,) = [i for i in whole if i.kind == "credit_note"]
    corrected = next(i for i in whole if i.id == credit.credits_invoice_id)
    assert numbers == {corrected.id: corrected.number}
    expected_invoices = [row[0] for row in ledger.invoice_rows(whole, zone, numbers)]
    expected_credits = [row[4] for row in ledger.invoice_rows(whole, zone, numbers)]
    expected_lines = [row[5] for row in ledger.line_rows(whole, zone, internal_notes=True)]
    monkeypatch.setattr(invoices, "EXPORT_BATCH", 2)  # three and more batches
    login(client, "op@example.com")

    # Not buffered: the body is an iterator the server reads after the view has returned.
    response = client.get("/operate/CQ01/invoices/export.csv", buffered=False)
    assert response.status_code == 200 and response.is_streamed
    assert response.get_data(as_text=True) == expected_csv
    assert len(expected_lines) == ORGANISATIONS * 2 + 1  # two jobs each, one credit line

    response = client.get("/operate/CQ01/invoices/export.xlsx")
    assert response.status_code == 200
    book = load_workbook(io.BytesIO(response.data))
    rows = sheet_dicts(book["invoices"])
    assert [r["number"] or "" for r in rows] == expected_invoices
    assert [r["credits_number"] or "" for r in rows] == expected_credits
    assert any(expected_credits)  # the credit note names the invoice it corrects
    assert [r["line"] for r in sheet_dicts(book["lines"])] == expected_lines

    period = client.get(f"/operate/CQ01/invoices/export.csv?period={billed['period']}")
    assert period.get_data(as_text=True) == expected_csv  # all of them are of that month
    for bad in ("2026-13", "garbage", "2026-1"):
        for fmt in ("csv", "xlsx"):
            refused = client.get(f"/operate/CQ01/invoices/export.{fmt}?period={bad}")
            assert refused.status_code == 422, (bad, fmt)


def test_the_api_pages_the_carriers_invoices_in_the_database(client, billed):  # noqa: F811
    from booking.accounts.service import create_api_token

    whole = _five_invoices_and_a_credit_note(billed)
    staff = {"Authorization": f"Bearer {create_api_token(billed['op'], 'list')[1]}"}
    seen, url, pages = [], f"/api/v1/invoices?carrier=CQ01&limit=2&period={billed['period']}", 0
    while url:
        body = client.get(url, headers=staff).get_json()
        assert body["count"] == len(body["invoices"]) <= 2
        seen += [i["id"] for i in body["invoices"]]
        url, pages = body["next"], pages + 1
    assert seen == sorted(i.id for i in whole) and pages == 3
    other_month = client.get("/api/v1/invoices?carrier=CQ01&period=2020-01", headers=staff)
    assert other_month.get_json() == {"invoices": [], "count": 0, "next": None}
    assert (
        client.get("/api/v1/invoices?carrier=CQ01&period=2020-13", headers=staff).status_code == 422
    )


def test_the_run_lets_go_of_written_lines(billed, monkeypatch):  # noqa: F811
    """The invoice run writes lines a few organisations at a time and drops them from memory;
    the invoices come out as they would in one piece."""
    monkeypatch.setattr(invoices, "RUN_FLUSH_EVERY", 2)
    drafts = _five_invoices_and_a_credit_note(billed)  # the run inside made five drafts
    run = [i for i in drafts if i.kind == "invoice"]
    assert len(run) == ORGANISATIONS
    for invoice in run:
        assert len(invoice.lines) == 2  # read back: both jobs of each organisation
        assert invoice.total_fen == sum(line.amount_fen for line in invoice.lines) > 0
        assert invoice.tax_fen == sum(line.tax_fen for line in invoice.lines)

    # A second month, run while watching: the lines of the first organisations are let go
    # of (unloaded) before the run ends, and those of the rest are still loaded.
    for n in range(ORGANISATIONS):
        engineer = db.session.scalar(select(User).where(User.email == f"eng{n}@batch.test"))
        start = billed["day"].replace(hour=15) + timedelta(minutes=n)
        usage = metering.walk_up(engineer, billed["gpu"].id, quantity=1, now=start)
        metering.check_out(engineer, usage.id, now=start + timedelta(minutes=30))
    result = invoices.run_invoices(billed["carrier"], billed["period"])
    assert result.lines_added == ORGANISATIONS
    unloaded = ["lines" in inspect(i).unloaded for i in result.invoices]
    assert unloaded == [True, True, True, True, False]  # two batches of two let go, one held


def test_another_carriers_operator_gets_none_of_it(client, billed):  # noqa: F811
    from booking.accounts.service import create_api_token
    from tests.factories import make_carrier

    _five_invoices_and_a_credit_note(billed)
    other = make_user("other-op@batch.test")
    make_carrier("CQ02", admin=other)
    db.session.commit()
    login(client, "other-op@batch.test")
    for path in ("/operate/CQ01/invoices/export.csv", "/operate/CQ01/invoices/export.xlsx"):
        answer = client.get(path)
        assert answer.status_code in (403, 404) and b"Batch 0" not in answer.data, path
    token = {"Authorization": f"Bearer {create_api_token(other, 'x')[1]}"}
    answer = client.get("/api/v1/invoices?carrier=CQ01", headers=token)
    assert answer.status_code in (403, 404) and "invoices" not in (answer.get_json() or {})


def test_the_csv_export_reads_one_moment_while_it_streams(client, billed, monkeypatch):  # noqa: F811
    """A change committed while the export is being read (here: an organisation renamed)
    does not reach the batches read after it: the whole file is as of its first read."""
    from sqlalchemy import update

    from booking.orgs.models import Organisation

    whole = _five_invoices_and_a_credit_note(billed)
    late = whole[4].organisation  # its invoice is in the third batch of two
    old_name = late.name
    monkeypatch.setattr(invoices, "EXPORT_BATCH", 2)
    login(client, "op@example.com")
    response = client.get("/operate/CQ01/invoices/export.csv", buffered=False)
    chunks = iter(response.response)
    first = [next(chunks), next(chunks)]  # the header and the first line: batch one read
    with db.engine.connect() as other:
        other.execute(
            update(Organisation).where(Organisation.id == late.id).values(name="Renamed Ltd")
        )
        other.commit()
    text = b"".join(first + list(chunks)).decode("utf-8-sig")
    response.close()
    assert old_name in text and "Renamed Ltd" not in text


def test_a_rerun_reads_only_the_drafts_it_adds_to(billed):  # noqa: F811
    """Running a month again reads the lines of the drafts that get new lines, not those of
    every draft of the month."""
    _five_invoices_and_a_credit_note(billed)  # two issued, three still drafts
    engineer = db.session.scalar(select(User).where(User.email == "eng4@batch.test"))
    org = engineer.memberships[0].organisation_id
    start = billed["day"].replace(hour=16)
    usage = metering.walk_up(engineer, billed["gpu"].id, quantity=1, now=start)
    metering.check_out(engineer, usage.id, now=start + timedelta(minutes=30))
    untouched = set(
        db.session.scalars(
            select(Invoice.id).where(Invoice.status == "draft", Invoice.organisation_id != org)
        )
    )
    assert len(untouched) == 2
    db.session.expunge_all()
    asked: list = []

    def lines_read(conn, cursor, statement, parameters, context, executemany):
        if "FROM invoice_lines" in statement and "invoice_id" in statement:
            values = parameters.values() if isinstance(parameters, dict) else parameters
            asked.extend(v for v in values if isinstance(v, int))

    event.listen(db.engine, "before_cursor_execute", lines_read)
    try:
        result = invoices.run_invoices(billed["carrier"], billed["period"])
    finally:
        event.remove(db.engine, "before_cursor_execute", lines_read)
    assert result.lines_added == 1 and len(result.invoices) == 1
    assert asked and not untouched & set(asked)  # the other drafts' lines were never read
