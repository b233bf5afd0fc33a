"""Canonical form of schedule specs: cron and calendar strings to structured calendars, and the errors for bad
input, with Temporal's texts (the same cases are checked against a real Temporal server in test_vs_temporal)."""

from __future__ import annotations

import pytest
from temporalio.api.schedule.v1 import message_pb2 as sched

from server.common.errors import InvalidArgument
from services.internal_worker.schedules import canonicalize, describe_form

from .helpers import R, calendar, cron, dur


def structured(spec: sched.ScheduleSpec) -> sched.StructuredCalendarSpec:
    out = canonicalize(spec)
    assert len(out.structured_calendar) == 1 and not out.calendar and not out.cron_string
    return out.structured_calendar[0]


def test_calendar_defaults_are_midnight_every_day() -> None:
    cal = structured(calendar())
    assert list(cal.second) == [R(0)]
    assert list(cal.minute) == [R(0)]
    assert list(cal.hour) == [R(0)]
    assert list(cal.day_of_month) == [R(1, 31)]
    assert list(cal.month) == [R(1, 12)]
    assert list(cal.year) == []  # every year
    assert list(cal.day_of_week) == [R(0, 6)]


def test_describe_form_spells_out_end_and_step() -> None:
    form = describe_form(canonicalize(calendar(hour="1-5/2,10", minute="*/15")))
    cal = form.structured_calendar[0]
    assert list(cal.hour) == [R(1, 5, 2), R(10, 10, 1)]
    assert list(cal.minute) == [R(0, 59, 15)]
    assert list(cal.second) == [R(0, 0, 1)]
    assert list(cal.day_of_month) == [R(1, 31, 1)]


@pytest.mark.parametrize(
    ("field", "text", "expected"),
    [
        ("hour", "1-5/2,10", [R(1, 5, 2), R(10)]),
        ("minute", "5/15", [R(5, 59, 15)]),  # x/y runs to the field's maximum
        ("minute", "*/20", [R(0, 59, 20)]),
        ("second", " 7 ", [R(7)]),
        ("hour", "3-3", [R(3)]),
        ("day_of_month", "1-31/10,15", [R(1, 31, 10), R(15)]),
        ("month", "jan,Jul-sep", [R(1), R(7, 9)]),
        ("month", "DECEMBER", [R(12)]),
        ("day_of_week", "mon-fri", [R(1, 5)]),
        ("day_of_week", "Sun,tu,th", [R(0), R(2), R(4)]),
        ("day_of_week", "7", [R(0)]),  # 7 is Sunday too
        ("day_of_week", "5-7", [R(0), R(5, 6)]),
        ("day_of_week", "1-7/2", [R(0), R(1, 6, 2)]),
        ("day_of_week", "3-7/3", [R(3, 6, 3)]),  # 7 is not in 3,6
        ("day_of_week", "0-7", [R(0, 6)]),
        ("day_of_week", "1-7", [R(1, 6)]),  # Temporal's reading: Sunday is not added back here
        ("year", "2026-2030/2", [R(2026, 2030, 2)]),
        ("year", "*", []),
    ],
)
def test_calendar_string_ranges(field: str, text: str, expected: list[sched.Range]) -> None:
    assert list(getattr(structured(calendar(**{field: text})), field)) == expected


def test_cron_five_six_and_seven_fields() -> None:
    five = structured(cron("15 9 1-7 * mon"))
    assert (list(five.second), list(five.minute), list(five.hour)) == ([R(0)], [R(15)], [R(9)])
    assert (list(five.day_of_month), list(five.day_of_week), list(five.year)) == ([R(1, 7)], [R(1)], [])
    six = structured(cron("0 12 * * * 2027"))
    assert list(six.year) == [R(2027)]
    seven = structured(cron("*/20 0 12 1 * * 2026"))
    assert list(seven.second) == [R(0, 59, 20)] and list(seven.year) == [R(2026)]


def test_cron_comment_and_time_zone_prefixes() -> None:
    out = canonicalize(cron("CRON_TZ=America/New_York 30 2 * * * # nightly"))
    assert out.timezone_name == "America/New_York"
    assert out.structured_calendar[0].comment == "nightly"
    assert canonicalize(cron("TZ=Europe/Berlin 0 * * * *")).timezone_name == "Europe/Berlin"
    # A zone given both ways is fine when it agrees.
    assert (
        canonicalize(cron("TZ=Asia/Tokyo 0 * * * *", timezone_name="Asia/Tokyo")).timezone_name
        == "Asia/Tokyo"
    )


@pytest.mark.parametrize(
    ("shorthand", "equivalent"),
    [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
    ],
)
def test_cron_shorthands(shorthand: str, equivalent: str) -> None:
    assert structured(cron(shorthand)) == structured(cron(equivalent))


def test_every_becomes_an_interval_and_drops_the_time_zone() -> None:
    out = canonicalize(cron("CRON_TZ=America/New_York @every 90m/15m"))
    assert not out.structured_calendar and out.timezone_name == ""
    assert list(out.interval) == [sched.IntervalSpec(interval=dur(5400), phase=dur(900))]
    assert canonicalize(cron("@every 1.5d")).interval[0].interval == dur(36 * 3600)


def test_order_structured_then_calendar_then_cron() -> None:
    given = sched.StructuredCalendarSpec(hour=[R(5)], comment="given")
    out = canonicalize(
        sched.ScheduleSpec(
            structured_calendar=[given],
            calendar=[sched.CalendarSpec(comment="from calendar")],
            cron_string=["0 0 * * * # from cron"],
            interval=[sched.IntervalSpec(interval=dur(60))],
        )
    )
    assert [c.comment for c in out.structured_calendar] == ["given", "from calendar", "from cron"]
    assert out.structured_calendar[0] == given  # structured input is stored as given (no defaults added)
    assert len(out.interval) == 1


def test_exclude_calendar_strings_are_converted() -> None:
    out = canonicalize(
        sched.ScheduleSpec(cron_string=["@hourly"], exclude_calendar=[sched.CalendarSpec(hour="12")])
    )
    assert not out.exclude_calendar
    assert list(out.exclude_structured_calendar[0].hour) == [R(12)]


def test_canonicalize_is_idempotent_and_keeps_other_fields() -> None:
    spec = cron("CRON_TZ=Europe/Paris 0 9 * * mon-fri", jitter=dur(30))
    spec.start_time.seconds = 1_800_000_000
    once = canonicalize(spec)
    assert canonicalize(once) == once
    assert once.jitter == dur(30) and once.start_time.seconds == 1_800_000_000


R_ = sched.Range
BAD = [
    (cron("0 25 * * *"), "Hour is not in range [0-23]"),
    (cron("* * * *"), "CronString does not have 5-7 fields"),
    (cron("0 0 * * * 2000 2001 2002"), "CronString does not have 5-7 fields"),
    (cron("0 0 L * *"), "DayOfMonth is not in range [1-31]"),
    (cron("0 0 1-5-7 * *"), "DayOfMonth has too many dashes"),
    (cron("0/5/2 0 * * *"), "Minute has too many slashes"),
    (cron("0/ 0 * * *"), "Minute missing step value"),
    (cron("0/x 0 * * *"), 'strconv.Atoi: parsing "x": invalid syntax'),
    (
        cron("0 0 1/99999999999999999999 * *"),
        'strconv.Atoi: parsing "99999999999999999999": value out of range',
    ),
    (cron("0/0 0 * * *"), "Minute has invalid Step"),
    (cron("5-2 0 * * *"), "Minute End is before Start or not in range [0-59]"),
    (cron("x-2 0 * * *"), "Minute Start is not in range [0-59]"),
    (cron("0 0 * * 8"), "DayOfWeek is not in range [0-7]"),
    (cron("0 0 * foo mon"), "Month is not in range [1-12]"),
    (cron("0 0 * * * 1999"), "Year is not in range [2000-2100]"),
    (cron("CRON_TZ=Mars/Olympus 0 0 * * *"), "unknown time zone Mars/Olympus"),
    (cron("CRON_TZ=America/New_York"), "CronString has time zone but missing fields"),
    (cron("CRON_TZ=America/New_York 0 0 * * *", "0 1 * * *"), "conflicting timezone names"),
    (cron("CRON_TZ=America/New_York 0 0 * * *", timezone_name="Europe/Paris"), "conflicting timezone names"),
    (cron("@every"), "CronString does not have interval after @every"),
    (cron("@every 1x"), 'time: unknown unit "x" in duration "1x"'),
    (cron("@every 10"), 'time: missing unit in duration "10"'),
    (cron("@every 1d2x"), 'time: unknown unit "x" in duration "24.000000h2x"'),
    (cron("@every 500ms"), "interval is too small"),
    (cron("@every 1h/2h"), "phase cannot be greater than Interval"),
    (cron("@every 1h/-5m"), "phase is negative"),
    (cron("0 0 * * * # " + "x" * 201), "invalid calendar spec: comment is too long"),
    (
        calendar(hour="24", minute="61", day_of_week="fr-xx", year="1"),
        "Minute is not in range [0-59], Hour is not in range [0-23], "
        "DayOfWeek End is before Start or not in range [0-7], Year is not in range [2000-2100]",
    ),
    (calendar(hour="1,,2"), "Hour is not in range [0-23]"),
    (
        sched.ScheduleSpec(
            structured_calendar=[
                sched.StructuredCalendarSpec(
                    hour=[R_(start=25)], minute=[R_(start=5, end=3)], second=[R_(start=1, step=-1)]
                )
            ]
        ),
        "invalid calendar spec: Second has invalid Step, Minute End is before Start or not in range [0-59], "
        "Hour Start is not in range [0-23]",
    ),
    (sched.ScheduleSpec(exclude_calendar=[sched.CalendarSpec(hour="99")]), "Hour is not in range [0-23]"),
    (sched.ScheduleSpec(interval=[sched.IntervalSpec(interval=dur(0.5))]), "interval is too small"),
    (
        sched.ScheduleSpec(interval=[sched.IntervalSpec(interval=dur(60), phase=dur(60))]),
        "phase cannot be greater than Interval",
    ),
    (
        sched.ScheduleSpec(interval=[sched.IntervalSpec(interval=dur(60))], timezone_name="Nowhere/Land"),
        "unknown time zone Nowhere/Land",
    ),
    (
        sched.ScheduleSpec(interval=[sched.IntervalSpec(interval=dur(60))], timezone_name="../etc/passwd"),
        "time: invalid location name",
    ),
]


@pytest.mark.parametrize(("spec", "message"), BAD, ids=[m for _, m in BAD])
def test_bad_specs_are_invalid_argument_with_temporals_text(spec: sched.ScheduleSpec, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        canonicalize(spec)
    assert info.value.message == f"Invalid schedule spec: {message}"


def test_malformed_duration_is_rejected_before_parsing() -> None:
    spec = sched.ScheduleSpec(interval=[sched.IntervalSpec(interval=sched.IntervalSpec().interval)])
    spec.interval[0].interval.seconds, spec.interval[0].interval.nanos = 60, -1
    with pytest.raises(InvalidArgument, match="interval is not a valid duration: .*different signs"):
        canonicalize(spec)


def test_malformed_time_zone_data() -> None:
    spec = sched.ScheduleSpec(interval=[sched.IntervalSpec(interval=dur(60))], timezone_data=b"not tzif")
    with pytest.raises(InvalidArgument, match="malformed time zone information"):
        canonicalize(spec)
