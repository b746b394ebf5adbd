"""The feed writer against icalendar: the same bytes for every event (pure, no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import icalendar
from hypothesis import given, settings
from hypothesis import strategies as st

from booking.calendars import ical

# Zones with DST, half-hour offsets, and ones icalendar writes as UTC (Z, no TZID).
ZONES = [
    "Asia/Shanghai",
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Africa/Abidjan",
    "Atlantic/Reykjavik",
    "UTC",
    "Etc/UTC",
    "GMT",
]
# Text as people type it, and what breaks writers: escapes, carets, line ends, wide characters.
awkward = st.text(
    alphabet=st.one_of(
        st.sampled_from(list('\\;,:^"\r\n\t N长铝合金😀é ')),
        st.characters(codec="utf-8"),
    ),
    max_size=300,
)
moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
)


@st.composite
def feed_events(draw):
    start = draw(moments)
    return ical.FeedEvent(
        uid=f"booking-{draw(st.integers(1, 2**31))}@{draw(st.sampled_from(['booking.local', '预约.example']))}",
        start=start,
        end=start + timedelta(minutes=draw(st.integers(1, 60 * 24 * 40))),
        status=draw(st.sampled_from(sorted(ical.STATUS) + ["unknown"])),
        sequence=draw(st.integers(0, 10_000)),
        last_modified=draw(moments),
        summary=draw(awkward),
        location=draw(awkward),
        url=draw(st.sampled_from(["", "https://booking.example/bookings/7"])),
        description=draw(st.none() | awkward),
    )


@settings(max_examples=300, deadline=None)
@given(item=feed_events(), tz=st.sampled_from(ZONES), cancel=st.booleans())
def test_the_writer_writes_what_icalendar_writes(item, tz, cancel):
    expected = ical.event(item, tz, cancel=cancel).to_ical()
    assert ical.vevent_bytes(item, tz, cancel=cancel) == expected


@settings(max_examples=60, deadline=None)
@given(items=st.lists(feed_events(), max_size=5), tz=st.sampled_from(ZONES))
def test_an_assembled_feed_reads_back_with_every_event(items, tz):
    writer = ical.FeedWriter(tz)  # one for the feed: its lines and times are made once
    body = (
        ical.feed_head("名称, with; escapes", tz)
        + b"".join(writer.vevent(item) for item in items)
        + ical.FEED_TAIL
    )
    assert body == ical.render("名称, with; escapes", tz, items)
    parsed = icalendar.Calendar.from_ical(body)
    assert [str(e["UID"]) for e in parsed.walk("VEVENT")] == [i.uid for i in items]
    for line in body.split(b"\r\n"):
        assert len(line) <= 75
        line.decode()


@given(item=feed_events(), tz=st.sampled_from(ZONES))
def test_times_read_as_epoch_seconds_are_written_as_the_datetimes(item, tz):
    as_seconds = ical.FeedEvent(
        **{
            **{f: getattr(item, f) for f in item.__slots__},
            "start": int(item.start.timestamp()),
            "end": int(item.end.timestamp()),
            "last_modified": int(item.last_modified.timestamp()),
        }
    )
    whole = ical.FeedEvent(
        **{
            **{f: getattr(item, f) for f in item.__slots__},
            "start": item.start.replace(microsecond=0),
            "end": item.end.replace(microsecond=0),
            "last_modified": item.last_modified.replace(microsecond=0),
        }
    )
    assert ical.vevent_bytes(as_seconds, tz) == ical.event(whole, tz).to_ical()


def test_every_zone_a_carrier_can_choose_is_written_as_icalendar_writes_it():
    """Every zone the service accepts, each with a winter and a summer event."""
    from zoneinfo import available_timezones

    for tz in sorted(available_timezones()):
        for month in (1, 7):
            start = datetime(2026, month, 15, 1, 30, tzinfo=UTC)
            item = ical.FeedEvent(
                uid="booking-1@booking.local",
                start=start,
                end=start + timedelta(hours=2),
                status="approved",
                sequence=1,
                last_modified=start,
                summary="SEM",
            )
            assert ical.vevent_bytes(item, tz) == ical.event(item, tz).to_ical(), tz


def test_a_value_beginning_with_a_byte_order_mark_is_written_as_icalendar_writes_it():
    """Found by the comparison above: icalendar drops one BOM that begins a TEXT value."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for text in ("\ufeff", "\ufeff\ufeff样品", "a\ufeff", "\ufeff;\\N,"):
        item = ical.FeedEvent(
            uid="booking-1@booking.local",
            start=start,
            end=start + timedelta(hours=1),
            status="approved",
            sequence=0,
            last_modified=start,
            summary=text,
            location=text,
            description=text,
        )
        assert (
            ical.vevent_bytes(item, "Asia/Shanghai") == ical.event(item, "Asia/Shanghai").to_ical()
        )
