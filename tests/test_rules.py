"""Pure rules: no app, no database."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from booking.accounts.rules import email_problems, normalise_email, password_problems
from booking.catalogue.rules import (
    ResourceFields,
    format_day_hours,
    format_specs,
    opening_hours_problems,
    parse_interval_list,
    parse_specs,
    resource_problems,
)
from booking.text_rules import plain_text_problems
from booking.types import UTCDateTime


def codes(problems):
    return {p.code for p in problems}


def fields(**overrides) -> ResourceFields:
    values = dict(
        kind="instrument",
        name_zh="扫描电镜",
        name_en="SEM",
        capacity=1,
        slot_minutes=30,
        min_duration_minutes=30,
        max_duration_minutes=240,
        opening_hours=[(0, 540, 1080)],
    )
    values.update(overrides)
    return ResourceFields(**values)


def test_valid_resource_has_no_problems():
    assert resource_problems(fields(), set()) == []


def test_min_longer_than_max_and_capacity_zero_are_both_reported():
    problems = resource_problems(
        fields(capacity=0, min_duration_minutes=300, max_duration_minutes=60), set()
    )
    assert {"capacity_too_small", "min_exceeds_max"} <= codes(problems)
    assert {p.field for p in problems} >= {"capacity", "min_duration_minutes"}


def test_durations_must_sit_on_the_slot_grid():
    problems = resource_problems(fields(slot_minutes=60, min_duration_minutes=90), set())
    assert codes(problems) == {"duration_off_grid"}


def test_markup_and_overlong_names_are_refused():
    problems = resource_problems(fields(name_en="<script>x</script>", name_zh="长" * 121), set())
    assert {"markup_not_allowed", "too_long"} <= codes(problems)


def test_unknown_kind_visibility_and_foreign_qualification():
    problems = resource_problems(
        fields(kind="spaceship", visibility="secret", qualification_id=7), {1}
    )
    assert {"invalid_kind", "invalid_visibility", "invalid_qualification"} <= codes(problems)


def test_needs_hours_unless_always_open():
    assert "no_opening_hours" in codes(resource_problems(fields(opening_hours=[]), set()))
    assert resource_problems(fields(opening_hours=[], always_open=True), set()) == []


def test_negative_buffers_and_notice_refused():
    problems = resource_problems(fields(setup_minutes=-5, min_notice_minutes=-1), set())
    assert codes(problems) == {"invalid_minutes"}
    assert len(problems) == 2


def test_parse_interval_list():
    assert parse_interval_list("09:00-12:00, 13:30-18:00") == [(540, 720), (810, 1080)]
    assert parse_interval_list("00:00-24:00") == [(0, 1440)]
    assert parse_interval_list("") == []
    assert parse_interval_list("9 to 5") is None
    assert parse_interval_list("25:00-26:00") is None
    assert parse_interval_list("24:00-24:00") is None


def test_opening_hours_reports_bad_overlapping_and_reversed_days():
    rows, problems = opening_hours_problems(
        {0: "09:00-18:00", 1: "junk", 2: "18:00-09:00", 3: "09:00-12:00,11:00-13:00"}
    )
    assert rows == [(0, 540, 1080)]
    assert {(p.code, p.field) for p in problems} == {
        ("invalid_hours", "hours_1"),
        ("hours_order", "hours_2"),
        ("hours_overlap", "hours_3"),
    }


intervals = st.lists(
    st.tuples(st.integers(0, 1439), st.integers(1, 1440)).filter(lambda t: t[0] < t[1]),
    max_size=4,
)


@given(st.dictionaries(st.integers(0, 6), intervals))
def test_opening_hours_round_trip(days):
    """Whatever the operator writes, accepted rows are well formed, sorted and disjoint, and
    formatting them gives back text that parses to the same rows."""
    texts = {
        d: ", ".join(f"{o // 60:02d}:{o % 60:02d}-{c // 60:02d}:{c % 60:02d}" for o, c in ivs)
        for d, ivs in days.items()
    }
    rows, problems = opening_hours_problems(texts)
    for weekday, opens, closes in rows:
        assert 0 <= opens < closes <= 1440 and 0 <= weekday <= 6
    for d in range(7):
        day = [(o, c) for w, o, c in rows if w == d]
        assert all(day[i][1] <= day[i + 1][0] for i in range(len(day) - 1))
    again, again_problems = opening_hours_problems({d: format_day_hours(rows, d) for d in range(7)})
    assert again == rows and again_problems == []
    bad_days = {p.field for p in problems}
    assert all(f"hours_{w}" not in bad_days for w, _, _ in rows)


def test_specs_parse_and_format():
    specs, problems = parse_specs("Resolution: 1 nm\n\n放大倍数：10–300000x")
    assert problems == []
    assert specs == [["Resolution", "1 nm"], ["放大倍数", "10–300000x"]]
    assert parse_specs(format_specs(specs))[0] == specs
    _, problems = parse_specs("just words")
    assert codes(problems) == {"invalid_specs"}
    _, problems = parse_specs("a: <b>")
    assert codes(problems) == {"markup_not_allowed"}


@pytest.mark.parametrize(
    ("password", "code"),
    [
        ("short", "weak_password"),
        ("password1", "weak_password"),
        ("aaaaaaaaaa", "weak_password"),
        ("x" * 129, "too_long"),
        ("zhang.san-2026", "weak_password"),
    ],
)
def test_weak_passwords(password, code):
    assert codes(password_problems(password, "zhang.san@example.com")) == {code}


def test_good_password_and_emails():
    assert password_problems("correct horse battery", "a@b.cn") == []
    assert normalise_email("  Zhang@Example.COM ") == "zhang@example.com"
    assert email_problems("zhang@example.com") == []
    assert codes(email_problems("not-an-email")) == {"invalid_email"}
    # The demo's reserved .test domain is taken (#16); names no mail can reach are not.
    assert email_problems("engineer@demo.test") == []
    for unreachable in ("a@b.invalid", "a@localhost", "a@host.local", "a@example"):
        assert codes(email_problems(unreachable)) == {"invalid_email"}, unreachable
    assert codes(email_problems("")) == {"required"}


def test_plain_text_rules():
    assert plain_text_problems("重庆", "n", 10) == []
    assert codes(plain_text_problems("  ", "n", 10)) == {"required"}
    assert plain_text_problems("", "n", 10, required=False) == []
    assert codes(plain_text_problems("a\x00b", "n", 10)) == {"control_characters"}


def test_utc_datetime_refuses_naive_and_normalises():
    column_type = UTCDateTime()

    class Dialect:
        name = "sqlite"

    with pytest.raises(ValueError):
        column_type.process_bind_param(datetime(2026, 11, 27, 9, 0), Dialect)
    shanghai = timezone(timedelta(hours=8))
    stored = column_type.process_bind_param(datetime(2026, 11, 27, 9, 0, tzinfo=shanghai), Dialect)
    assert stored == datetime(2026, 11, 27, 1, 0)
    assert column_type.process_result_value(stored, Dialect) == datetime(
        2026, 11, 27, 1, 0, tzinfo=UTC
    )
