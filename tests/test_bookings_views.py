"""Booking pages through the test client."""

import re
from datetime import timedelta
from urllib.parse import quote

import pytest
from sqlalchemy import delete, func, select

from booking.bookings import service
from booking.bookings.models import Booking, Outage, QualificationGrant, WaitlistEntry
from booking.extensions import db
from booking.types import utcnow
from tests.booking_helpers import SH, at, next_monday
from tests.conftest import login, post_form
from tests.factories import make_carrier, make_org, make_qualification, make_resource, make_user

EN = {"Accept-Language": "en"}


@pytest.fixture
def site(app, client):
    op = make_user("op@example.com")
    carrier = make_carrier("CQ01", admin=op)
    eng = make_user("eng@example.com")
    org = make_org("Startup", members=[eng])
    sem = make_resource(carrier, "SEM")
    gpu = make_resource(carrier, "GPU", kind="compute", capacity=4, always_open=True)
    line = make_resource(carrier, "SMT line", kind="pilot_line", requires_approval=True)
    return {
        "op": op,
        "eng": eng,
        "org": org,
        "sem": sem,
        "gpu": gpu,
        "line": line,
        "m": next_monday(),
        "carrier": carrier,
    }


def form_for(day, start, end, **extra):
    return {
        "day": day.date().isoformat(),
        "start_time": start,
        "end_time": end,
        "quantity": "1",
        **extra,
    }


def text(response):
    return response.get_data(as_text=True)


def test_book_through_the_form_and_see_it(client, site):
    login(client, "eng@example.com")
    m, sem = site["m"], site["sem"]
    page = client.get(f"/resources/{sem.id}/book?week={m.date().isoformat()}", headers=EN)
    assert page.status_code == 200 and "Week of" in text(page) and 'class="cell-free"' in text(page)
    response = post_form(
        client,
        f"/resources/{sem.id}/book",
        form_for(m, "10:00", "12:00", organisation_id=str(site["org"].id), purpose="EDS"),
        headers=EN,
    )
    assert response.status_code == 302
    booking = db.session.scalar(select(Booking))
    assert (booking.start_at, booking.end_at, booking.purpose) == (at(m, 10), at(m, 12), "EDS")
    detail = text(client.get(f"/bookings/{booking.id}", headers=EN))
    assert "History" in detail and "created" in detail and "Cancelling is free until" in detail
    week = text(client.get(f"/resources/{sem.id}/book?week={m.date().isoformat()}", headers=EN))
    assert 'class="cell-full"' in week
    # Each cell is named by its day, times and state; a free one links to the form at its start.
    monday = f"Monday {m.month}/{m.day}"
    assert f'<td class="cell-full" title="{monday} 10:00–11:00: booked">booked</td>' in week
    start = quote(at(m, 14).isoformat())
    assert (
        f'<a href="/resources/{sem.id}/book?week={m.date().isoformat()}&amp;start={start}'
        f'#booking-form" '
        f'aria-label="{monday} 14:00–15:00: free" data-day="{m.date().isoformat()}" '
        f'data-from="14:00" data-until="15:00">free</a>'
    ) in week
    chinese = text(client.get(f"/resources/{sem.id}/book?week={m.date().isoformat()}"))
    assert re.search(rf'title="\S+ {m.month}/{m.day} 10:00–11:00：[^"a-z]+"', chinese)
    assert "SEM" in text(client.get("/bookings/", headers=EN))
    # Units take their plural (#16: "Capacity 4 GPU").
    gpu = site["gpu"]
    gpu.unit_en, gpu.unit_zh = "GPU", "卡"
    db.session.commit()
    for path in (f"/resources/{gpu.id}", f"/resources/{gpu.id}/book", "/"):
        assert "4 GPUs" in text(client.get(path, headers=EN)), path
        assert "4卡" in text(client.get(path)), path


def test_refused_booking_shows_every_reason_and_offers_the_waitlist(client, site):
    m, sem = site["m"], site["sem"]
    other = make_user("other@example.com")
    make_org("Other", members=[other])
    service.create_booking(other, sem.id, at(m, 10), at(m, 12))
    login(client, "eng@example.com")
    data = form_for(m, "10:00", "11:00", organisation_id=str(site["org"].id))
    refused = post_form(client, f"/resources/{sem.id}/book", data, headers=EN)
    assert refused.status_code == 409 and "This time is already booked." in text(refused)
    assert "Join the waitlist" in text(refused)
    # The grid shows the week of the refused slot, not this week's (#16), with it booked.
    assert f"Week of {m.date().isoformat()}" in text(refused)
    assert f'title="Monday {m.month}/{m.day} 10:00–11:00: booked"' in text(refused)
    for far in ("9999-12-31", "0001-01-01"):  # out of the accepted years: the page's week
        odd = post_form(client, f"/resources/{sem.id}/book", {**data, "day": far}, headers=EN)
        assert odd.status_code in (409, 422) and "Week of" in text(odd), far
    post_form(client, f"/resources/{sem.id}/book", {**data, "action": "waitlist"}, headers=EN)
    assert db.session.scalar(select(WaitlistEntry.status)) == "waiting"
    bad = post_form(
        client,
        f"/resources/{sem.id}/book",
        form_for(m, "07:10", "23:50", organisation_id=str(site["org"].id)),
        headers=EN,
    )
    assert bad.status_code == 422
    assert "booking grid" in text(bad) and "not open" in text(bad)
    garbage = post_form(
        client,
        f"/resources/{sem.id}/book",
        {
            "day": "yesterday",
            "start_time": "25:99",
            "end_time": "",
            "quantity": "x",
            "organisation_id": "abc",
        },
        headers=EN,
    )
    assert garbage.status_code == 422
    assert db.session.scalar(select(func.count(Booking.id))) == 1


def test_recurring_preview_in_the_form(client, site):
    login(client, "eng@example.com")
    m, sem = site["m"], site["sem"]
    data = form_for(
        m, "10:00", "11:00", organisation_id=str(site["org"].id), repeat="DAILY", repeat_count="7"
    )
    preview = post_form(
        client, f"/resources/{sem.id}/book", {**data, "action": "check"}, headers=EN
    )
    assert preview.status_code == 200
    html = text(preview)
    assert html.count('name="occurrence"') == 5 and html.count("not open for the whole") == 2
    assert db.session.scalar(select(func.count(Booking.id))) == 0
    chosen = [o for o in html.split('name="occurrence" value="')[1:3]]
    starts = [c.split('"')[0] for c in chosen]
    booked = post_form(
        client, f"/resources/{sem.id}/book", {**data, "action": "book", "occurrence": starts}
    )
    assert booked.status_code == 302
    assert db.session.scalar(select(func.count(Booking.id))) == 2


def test_modify_and_cancel_pages(client, site):
    m = site["m"]
    booking = service.create_booking(site["eng"], site["gpu"].id, at(m, 9), at(m, 11), quantity=2)
    login(client, "eng@example.com")
    page = f"/bookings/{booking.id}"
    changed = post_form(
        client, f"{page}/modify", form_for(m, "09:00", "12:00", quantity="3"), token_from=page
    )
    assert changed.status_code == 302
    db.session.expire_all()
    assert (
        db.session.get(Booking, booking.id).quantity,
        db.session.get(Booking, booking.id).end_at,
    ) == (3, at(m, 12))
    too_many = post_form(
        client,
        f"{page}/modify",
        form_for(m, "09:00", "12:00", quantity="9"),
        token_from=page,
        headers=EN,
    )
    assert too_many.status_code == 422 and "between 1 and 4" in text(too_many)
    # The history shows what the change did, not only "changed" (#16).
    history = text(client.get(page, headers=EN))
    change = re.search(r'<span class="change">([^<]+)</span>', history).group(1)
    assert "→" in change and "11:00" in change and "12:00" in change, change
    assert "×2 → ×3" in change, change
    post_form(client, f"{page}/cancel", {"reason": "done", "scope": "one"}, token_from=page)
    db.session.expire_all()
    assert db.session.get(Booking, booking.id).status == "cancelled"
    assert "Cancelled" in text(client.get("/bookings/", headers=EN))
    # Each entry says its action once (#16: "cancelled → cancelled"); times read day, month
    # name and year on the 24-hour clock in English, not "12/1/26, 1:00 AM".
    history = text(client.get(page, headers=EN))
    said = [
        re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", cell)).strip()
        for cell in re.findall(r"<td>([^<]*(?:<span[^>]*>[^<]*</span>)?[^<]*)\s*</td>", history)
    ]
    assert "cancelled" in said and not any("cancelled →" in s for s in said), said
    assert not re.search(r"\d+/\d+/\d+, \d+:\d+\s?[AP]M", history)
    assert re.search(rf"\w{{3}} {m.day} {m:%b} {m.year}, 09:00", history), history


def test_others_cannot_see_a_booking(client, site):
    booking = service.create_booking(
        site["eng"], site["sem"].id, at(site["m"], 10), at(site["m"], 11)
    )
    make_user("nosy@example.com")
    login(client, "nosy@example.com")
    assert client.get(f"/bookings/{booking.id}").status_code == 404
    assert (
        post_form(
            client, f"/bookings/{booking.id}/cancel", {"scope": "one"}, token_from="/bookings/"
        ).status_code
        == 404
    )


def test_operator_approves_rejects_and_books_on_behalf(client, site):
    m = site["m"]
    first = service.create_booking(site["eng"], site["line"].id, at(m, 9), at(m, 12))
    second = service.create_booking(site["eng"], site["line"].id, at(m, 13), at(m, 15))
    login(client, "op@example.com")
    queue = text(client.get("/operate/CQ01/approvals", headers=EN))
    assert "Startup" in queue and queue.count("data-booking=") == 2
    post_form(
        client,
        f"/operate/CQ01/approvals/{first.id}/approve",
        {"reason": ""},
        token_from="/operate/CQ01/approvals",
    )
    no_reason = post_form(
        client,
        f"/operate/CQ01/approvals/{second.id}/reject",
        {"reason": ""},
        token_from="/operate/CQ01/approvals",
        follow_redirects=True,
        headers=EN,
    )
    assert "Give a reason" in text(no_reason)
    post_form(
        client,
        f"/operate/CQ01/approvals/{second.id}/reject",
        {"reason": "Line is reserved"},
        token_from="/operate/CQ01/approvals",
    )
    db.session.expire_all()
    assert (
        db.session.get(Booking, first.id).status,
        db.session.get(Booking, second.id).status,
    ) == ("approved", "rejected")
    sunday = m - timedelta(days=1)
    data = {
        "resource_id": str(site["sem"].id),
        "email": "eng@example.com",
        "day": sunday.date().isoformat(),
        "start_time": "10:00",
        "end_time": "11:00",
        "quantity": "1",
        "purpose": "",
        "override_reason": "",
    }
    closed = post_form(client, "/operate/CQ01/bookings", data, headers=EN)
    assert closed.status_code == 422 and "not open" in text(closed)
    done = post_form(
        client, "/operate/CQ01/bookings", {**data, "override_reason": "Weekend run agreed"}
    )
    assert done.status_code == 302
    assert (
        db.session.scalar(
            select(Booking.override_reason).where(Booking.created_by_id == site["op"].id)
        )
        == "Weekend run agreed"
    )


def test_outage_page_lists_affected_bookings(client, site):
    m = site["m"]
    booking = service.create_booking(site["eng"], site["sem"].id, at(m, 14), at(m, 16))
    login(client, "op@example.com")
    data = {
        "resource_id": str(site["sem"].id),
        "day": m.date().isoformat(),
        "start_time": "15:00",
        "end_time": "17:00",
        "reason": "Column bake-out",
        "repeat": "",
        "repeat_count": "",
    }
    response = post_form(client, "/operate/CQ01/outages", data, headers=EN)
    assert response.status_code == 201
    assert f'data-booking="{booking.id}"' in text(response)
    assert db.session.scalar(select(func.count(Outage.id))) == 1
    bad = post_form(client, "/operate/CQ01/outages", {**data, "end_time": "14:00"}, headers=EN)
    assert bad.status_code == 422 and "after the start" in text(bad)
    client2 = client.application.test_client()
    login(client2, "eng@example.com")
    assert "Column bake-out" in text(client2.get("/inbox", headers=EN))
    # Unread: the booking's confirmation and the maintenance notice.
    assert '<span class="count">2</span>' in text(client2.get("/", headers=EN))


def test_grants_page(client, site):
    q = make_qualification(site["carrier"])
    login(client, "op@example.com")
    response = post_form(
        client,
        "/operate/CQ01/grants",
        {"qualification_id": str(q.id), "email": "eng@example.com", "expires_on": ""},
    )
    assert response.status_code == 302
    grant = db.session.scalar(select(QualificationGrant))
    assert grant.user_id == site["eng"].id and grant.expires_at is None
    unknown = post_form(
        client,
        "/operate/CQ01/grants",
        {"qualification_id": str(q.id), "email": "ghost@example.com"},
        headers=EN,
    )
    assert unknown.status_code == 422 and "No account" in text(unknown)
    post_form(
        client, f"/operate/CQ01/grants/{grant.id}/revoke", {}, token_from="/operate/CQ01/grants"
    )
    db.session.expire_all()
    assert db.session.get(QualificationGrant, grant.id).revoked_at is not None


def test_find_free_and_next_free(client, site):
    m = site["m"]
    service.create_booking(site["eng"], site["gpu"].id, at(m, 9), at(m, 17), quantity=3)
    page = client.get(
        f"/find?kind=compute&day={m.date().isoformat()}&start_time=09:00&end_time=17:00&quantity=2",
        headers=EN,
    )
    assert page.status_code == 200 and "free-result" not in text(page)
    page = client.get(
        f"/find?kind=compute&day={m.date().isoformat()}&start_time=09:00&end_time=17:00&quantity=1",
        headers=EN,
    )
    assert "1 of 4 units free" in text(page)
    bad = client.get("/find?kind=compute&day=nope&start_time=9&end_time=&quantity=0", headers=EN)
    assert bad.status_code == 422
    login(client, "eng@example.com")
    nxt = client.get(
        f"/resources/{site['sem'].id}/next-free?next-hours=2&next-quantity=1", headers=EN
    )
    assert nxt.status_code == 200 and 'id="next-free"' in text(nxt)
    # A one-unit resource shows no quantity field, and its search form still sends one.
    assert 'name="next-quantity" value="1"' in text(nxt)
    # "Book it" brings the asked length to the form, not the default half hour (#16).
    for hours in (2, 3):
        nxt = client.get(
            f"/resources/{site['sem'].id}/next-free?next-hours={hours}&next-quantity=1",
            headers=EN,
        )
        link = re.search(r'id="book-next-free" href="([^"]+)"', text(nxt)).group(1)
        form = text(client.get(link.replace("&amp;", "&"), headers=EN))
        start = re.search(r'name="start_time"[^>]*value="(\d\d):(\d\d)"', form)
        end = re.search(r'name="end_time"[^>]*value="(\d\d):(\d\d)"', form)
        minutes = (int(end[1]) * 60 + int(end[2])) - (int(start[1]) * 60 + int(start[2]))
        assert minutes == hours * 60, (hours, start.group(0), end.group(0))

    # "Book" from the search results carries the searched time and quantity to the form.
    found = client.get(
        f"/find?kind=compute&day={m.date().isoformat()}&start_time=10:00&end_time=13:00&quantity=1",
        headers=EN,
    )
    link = re.search(r'href="(/resources/\d+/book\?[^"]+)"', text(found)).group(1)
    form = text(client.get(link.replace("&amp;", "&"), headers=EN))
    assert re.search(r'name="start_time"[^>]*value="10:00"', form)
    assert re.search(r'name="end_time"[^>]*value="13:00"', form)
    assert "quantity=1" in link
    link = link.replace("quantity=1", "quantity=3")
    form = text(client.get(link.replace("&amp;", "&"), headers=EN))
    assert re.search(r'name="quantity"[^>]*value="3"', form)
    # Nonsense in the prefill is ignored, never a 500.
    odd = client.get(
        link.replace("&amp;", "&").split("&end=")[0] + "&end=0001-01-01T00:00%2B01:00&quantity=x",
        headers=EN,
    )
    assert odd.status_code == 200


def test_a_refusal_is_said_once(client, site):
    """Minimum notice, qualification and maintenance refusals appeared twice on the page."""
    from booking.bookings.service import create_booking

    login(client, "eng@example.com")
    m = site["m"]
    create_booking(site["eng"], site["sem"].id, at(m, 10), at(m, 11))
    for action in ("book", "check"):
        refused = post_form(
            client,
            f"/resources/{site['sem'].id}/book",
            {
                **form_for(m, "10:00", "11:00", organisation_id=str(site["org"].id)),
                "action": action,
                "day": "2020-01-06",  # long past, and taken
            },
            headers=EN,
        )
        page = refused.get_data(as_text=True)
        codes = re.findall(r'data-code="([a-z_]+)"', page)
        assert codes and len(codes) == len(set(codes)), action
        for code in codes:
            text = re.search(rf'data-code="{code}">([^<]+)<', page).group(1)
            assert page.count(text) == 1, (action, text)
        # A past slot cannot be waited for: no waitlist offered (#16).
        assert 'value="waitlist"' not in page, action


def test_the_waitlist_is_offered_only_when_capacity_alone_refuses(client, site):
    login(client, "eng@example.com")
    m, sem = site["m"], site["sem"]
    other = make_user("other@example.com")
    make_org("Other", members=[other])
    service.create_booking(other, sem.id, at(m, 10), at(m, 12))
    data = form_for(m, "10:00", "11:00", organisation_id=str(site["org"].id))
    taken = post_form(client, f"/resources/{sem.id}/book", data, headers=EN)
    assert taken.status_code == 409 and 'value="waitlist"' in text(taken)
    # The same taken slot on a resource the engineer is not qualified for: no waitlist.
    q = make_qualification(site["carrier"])
    sem.qualification_id = q.id
    db.session.commit()
    # With several units it says how many are free of how many, and how many were asked for.
    service.create_booking(other, site["gpu"].id, at(m, 10), at(m, 12), quantity=3)
    gpu = {**data, "quantity": "2"}
    few = post_form(client, f"/resources/{site['gpu'].id}/book", gpu, headers=EN)
    assert "Not enough capacity at this time: 1 of 4 free, 2 asked for." in text(few)
    assert 'value="waitlist"' in text(few)
    chinese = post_form(client, f"/resources/{site['gpu'].id}/book", gpu)
    assert "共 4 个，仅剩 1 个空闲，您需要 2 个" in text(chinese)
    unqualified = post_form(client, f"/resources/{sem.id}/book", data, headers=EN)
    codes = set(re.findall(r'data-code="([a-z_]+)"', text(unqualified)))
    assert "capacity_exceeded" in codes and len(codes) > 1, codes
    assert 'value="waitlist"' not in text(unqualified)


def test_booking_inside_the_late_cancellation_window_is_warned_first(client, site):
    """#16: booked at 00:12 for 01:00 with 24 h of free cancellation, the booker learned only
    afterwards that cancelling would cost. The warning comes before confirming."""
    login(client, "eng@example.com")
    gpu, org = site["gpu"], site["org"]
    soon = (utcnow() + timedelta(hours=3)).astimezone(SH).replace(second=0, microsecond=0)
    soon = soon.replace(minute=0 if soon.minute < 30 else 30)
    data = form_for(
        soon,
        soon.strftime("%H:%M"),
        (soon + timedelta(hours=1)).strftime("%H:%M"),
        organisation_id=str(org.id),
    )
    if soon.date() != (soon + timedelta(hours=1)).date():
        data["end_day"] = (soon + timedelta(hours=1)).date().isoformat()
    path = f"/resources/{gpu.id}/book"
    warned = post_form(client, path, data, headers=EN)
    assert warned.status_code == 200 and 'id="late-warning"' in text(warned)
    assert "it ends 1 day before the start" in text(warned) and "50% of the booked charge" in text(
        warned
    )
    assert 'value="book_late"' in text(warned) and "Book anyway" in text(warned)
    assert db.session.scalar(select(func.count(Booking.id))) == 0
    checked = post_form(client, path, {**data, "action": "check"}, headers=EN)
    assert checked.status_code == 200 and 'id="late-warning"' in text(checked)
    chinese = post_form(client, path, data)
    assert "免费取消" in text(chinese) and "1天" in text(chinese)
    # A slot refused anyway says why, not the warning.
    other = make_user("other@example.com")
    make_org("Other", members=[other])
    service.create_booking(other, gpu.id, soon, soon + timedelta(hours=1), quantity=4)
    taken = post_form(client, path, data, headers=EN)
    assert taken.status_code == 409 and 'id="late-warning"' not in text(taken)
    db.session.execute(delete(Booking))
    db.session.commit()
    booked = post_form(client, path, {**data, "action": "book_late"}, headers=EN)
    assert booked.status_code == 302
    assert db.session.scalar(select(func.count(Booking.id))) == 1
    # Far enough ahead, "Book" books at once.
    m = site["m"]
    later = post_form(client, path, form_for(m, "10:00", "11:00", organisation_id=str(org.id)))
    assert later.status_code == 302
    assert db.session.scalar(select(func.count(Booking.id))) == 2


def test_late_warning_before_a_series_keeps_the_chosen_occurrences(client, site):
    login(client, "eng@example.com")
    gpu, org = site["gpu"], site["org"]
    soon = (utcnow() + timedelta(hours=3)).astimezone(SH).replace(minute=0, second=0, microsecond=0)
    end = soon + timedelta(hours=1)
    data = form_for(
        soon, soon.strftime("%H:%M"), end.strftime("%H:%M"), organisation_id=str(org.id)
    )
    if soon.date() != end.date():
        data["end_day"] = end.date().isoformat()
    data.update(repeat="DAILY", repeat_count="3")
    path = f"/resources/{gpu.id}/book"
    keep = [soon + timedelta(days=d) for d in (0, 2)]
    warned = post_form(
        client, path, {**data, "occurrence": [k.isoformat() for k in keep]}, headers=EN
    )
    assert warned.status_code == 200 and 'id="late-warning"' in text(warned)
    ticked = re.findall(r'name="occurrence" value="([^"]+)" checked', text(warned))
    assert len(ticked) == 2 and len(re.findall(r'name="occurrence"', text(warned))) == 3
    assert db.session.scalar(select(func.count(Booking.id))) == 0
    done = post_form(
        client,
        path,
        {**data, "action": "book_late", "occurrence": ticked},
        headers=EN,
    )
    assert done.status_code == 302
    assert db.session.scalar(select(func.count(Booking.id))) == 2
    # Starting with the third occurrence, two days on, nothing is late: booked at once.
    db.session.execute(delete(Booking))
    db.session.commit()
    third = (soon + timedelta(days=2)).isoformat()
    assert post_form(client, path, {**data, "occurrence": [third]}).status_code == 302


def test_resources_of_a_kind_side_by_side_for_a_day(client, site):
    """#16: choosing among several GPU servers: one table, a column each, a day."""
    m, gpu = site["m"], site["gpu"]
    second = make_resource(site["carrier"], "GPU 2", kind="compute", capacity=2, always_open=True)
    hidden = make_resource(site["carrier"], "GPU private", kind="compute", visibility="residents")
    service.create_booking(site["eng"], second.id, at(m, 10), at(m, 12), quantity=2)
    login(client, "eng@example.com")
    page = client.get(f"/resources/{gpu.id}/compare?day={m.date().isoformat()}", headers=EN)
    assert page.status_code == 200
    body = text(page)
    heads = re.findall(r'<th scope="col"><a href="/resources/(\d+)"', body)
    assert heads == [str(gpu.id), str(second.id)] or sorted(heads) == sorted(
        [str(gpu.id), str(second.id)]
    )
    assert str(hidden.id) not in heads and "SEM" not in body.split("<table")[1]
    rows = re.findall(r'<tr><th scope="row">(\d\d:\d\d)</th>(.*?)</tr>', body, re.S)
    ten = dict(rows)["10:00"]
    assert "GPU 2 · Monday" in ten and ": booked" in ten  # the second server is full then
    assert f'href="/resources/{gpu.id}/book?week={m.date().isoformat()}&amp;start=' in ten
    assert 'id="next-day"' in body and f"day={(m + timedelta(days=1)).date().isoformat()}" in body
    book = text(client.get(f"/resources/{gpu.id}/book", headers=EN))
    assert f'id="compare-link" href="/resources/{gpu.id}/compare?day=' in book
    for bad in ("2026-13-01", "yesterday", "9999-12-31"):
        assert client.get(f"/resources/{gpu.id}/compare?day={bad}").status_code == 422, bad
    assert client.get(f"/resources/{hidden.id}/compare").status_code == 404


def test_a_month_at_a_glance(client, site):
    m, sem = site["m"], site["sem"]
    service.create_booking(site["eng"], sem.id, at(m, 9), at(m, 17))  # eight hours at most
    service.create_booking(site["eng"], sem.id, at(m, 17), at(m, 18))  # the whole Monday
    login(client, "eng@example.com")

    def cell(day) -> str:
        """The day's cell in its own month's page (a week may straddle two months)."""
        page = client.get(f"/resources/{sem.id}/month?month={day:%Y-%m}", headers=EN)
        assert page.status_code == 200
        found = re.search(
            rf'<td class="cell-\w+" data-day="{day.isoformat()}">.*?</td>', text(page), re.S
        )
        return found.group(0)

    assert 'class="cell-full"' in cell(m.date())
    tuesday = (m + timedelta(days=1)).date()
    assert 'class="cell-free"' in cell(tuesday)
    assert f'<a href="/resources/{sem.id}/book?week={tuesday.isoformat()}"' in cell(tuesday)
    assert 'class="cell-closed"' in cell((m + timedelta(days=5)).date())  # Saturday
    body = text(client.get(f"/resources/{sem.id}/month?month={m:%Y-%m}", headers=EN))
    assert 'id="next-month"' in body and 'id="month-link"' in text(
        client.get(f"/resources/{sem.id}/book")
    )
    for bad in ("2026-13", "26-01", "9999-12", "x"):
        assert client.get(f"/resources/{sem.id}/month?month={bad}").status_code == 422, bad
    # Further ahead than the resource takes bookings: open days, none bookable (#16 review:
    # every one of them showed "free", as no other view did).
    sem.max_advance_days = 30
    db.session.commit()
    later = m + timedelta(days=70)
    beyond = cell(later.date())
    assert 'class="cell-beyond"' in beyond and "<a href" not in beyond
    assert "not bookable yet" in beyond
