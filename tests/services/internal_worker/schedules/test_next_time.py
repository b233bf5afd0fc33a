"""Next matching times: calendars, cron strings across DST changes, intervals with phase, bounds, exclusions,
jitter, and the ListScheduleMatchingTimes loop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from temporalio.api.schedule.v1 import message_pb2 as sched

from server.common.errors import InvalidArgument
from services.internal_worker.schedules import ComputeLimitExceeded, compile_spec, jitter_seed, matching_times
from services.internal_worker.schedules.farmhash import fingerprint32
from services.internal_worker.schedules.gotime import GoError, atoi, parse_duration

from .helpers import R, calendar, cron, dur, nominals, ts, tzif_bytes, utc

NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")


def interval(seconds: int, phase: int = 0, **fields: object) -> sched.ScheduleSpec:
    iv = sched.IntervalSpec(interval=dur(seconds), phase=dur(phase) if phase else None)
    return sched.ScheduleSpec(interval=[iv], **fields)  # type: ignore[arg-type]


# --- calendars -----------------------------------------------------------------------------------------------


def test_calendar_ranges_and_steps() -> None:
    spec = calendar(hour="9-17/4", minute="15,45", day_of_week="mon-fri")
    got = nominals(spec, utc(2026, 3, 6, 12, 0), 6)  # a Friday
    assert got == [
        utc(2026, 3, 6, 13, 15),
        utc(2026, 3, 6, 13, 45),
        utc(2026, 3, 6, 17, 15),
        utc(2026, 3, 6, 17, 45),
        utc(2026, 3, 9, 9, 15),  # the weekend is skipped
        utc(2026, 3, 9, 9, 45),
    ]


def test_day_of_month_and_day_of_week_both_restrict() -> None:
    # Classic cron would fire on every 13th and every Friday; Temporal fires only on Friday the 13th.
    assert nominals(cron("0 0 13 * fri"), utc(2026, 1, 1), 3) == [
        utc(2026, 2, 13),
        utc(2026, 3, 13),
        utc(2026, 11, 13),
    ]


def test_leap_day_and_missing_days() -> None:
    assert nominals(cron("0 0 29 2 *"), utc(2025, 1, 1), 2) == [utc(2028, 2, 29), utc(2032, 2, 29)]
    assert nominals(cron("0 0 31 * *"), utc(2026, 1, 31), 2) == [utc(2026, 3, 31), utc(2026, 5, 31)]


def test_strictly_after_and_sub_second_after() -> None:
    spec = cron("0 12 * * *")
    assert compile_spec(spec).next_time(utc(2026, 5, 1, 12)) == utc(2026, 5, 2, 12)
    assert compile_spec(spec).next_time(utc(2026, 5, 1, 11, 59, 59) + timedelta(microseconds=999_999)) == utc(
        2026, 5, 1, 12
    )


def test_seconds_field_and_years() -> None:
    got = nominals(cron("*/20 0 12 1 * * 2026"), utc(2026, 11, 30), 4)
    assert got == [utc(2026, 12, 1, 12, 0, 0), utc(2026, 12, 1, 12, 0, 20), utc(2026, 12, 1, 12, 0, 40)]


def test_nothing_after_2100() -> None:
    assert nominals(cron("0 0 1 1 * 2099-2100"), utc(2098, 6, 1), 5) == [utc(2099, 1, 1), utc(2100, 1, 1)]
    assert compile_spec(interval(86400)).next_time(utc(2100, 12, 31, 0, 0, 1)) is None


def test_time_zone_name_applies_to_structured_calendars() -> None:
    spec = sched.ScheduleSpec(
        structured_calendar=[
            sched.StructuredCalendarSpec(
                second=[R(0)],
                minute=[R(30)],
                hour=[R(9)],
                day_of_month=[R(1, 31)],
                month=[R(1, 12)],
                day_of_week=[R(0, 6)],
            )
        ],
        timezone_name="Asia/Kolkata",
    )
    assert compile_spec(spec).next_time(utc(2026, 1, 1)) == utc(2026, 1, 1, 4, 0)  # 09:30 IST


def test_time_zone_data_is_used_instead_of_the_name() -> None:
    data = tzif_bytes("America/New_York")
    spec = cron("30 1 * * *", timezone_name="Custom/Zone", timezone_data=data)
    assert nominals(spec, utc(2026, 10, 31, 12), 2) == [utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6, 30)]


def test_structured_calendar_with_an_empty_field_never_fires() -> None:
    spec = sched.ScheduleSpec(structured_calendar=[sched.StructuredCalendarSpec(hour=[R(1)])])  # no minutes
    assert compile_spec(spec).next_time(utc(2026, 1, 1)) is None


# --- DST ------------------------------------------------------------------------------------------------------


def test_spring_forward_gap_is_skipped() -> None:
    # 2026-03-08 in New York: 02:00 EST jumps to 03:00 EDT, so there is no 02:30 that day.
    got = nominals(cron("CRON_TZ=America/New_York 30 2 * * *"), datetime(2026, 3, 7, 12, tzinfo=NY), 2)
    assert [t.astimezone(NY).isoformat() for t in got] == [
        "2026-03-09T02:30:00-04:00",
        "2026-03-10T02:30:00-04:00",
    ]
    hourly = nominals(cron("CRON_TZ=America/New_York 30 * * * *"), datetime(2026, 3, 8, 0, 45, tzinfo=NY), 3)
    assert [t.astimezone(NY).isoformat() for t in hourly] == [
        "2026-03-08T01:30:00-05:00",
        "2026-03-08T03:30:00-04:00",
        "2026-03-08T04:30:00-04:00",
    ]


def test_fall_back_repeated_hour_fires_twice() -> None:
    # 2026-11-01 in New York: 02:00 EDT goes back to 01:00 EST; 01:30 happens twice.
    got = nominals(cron("CRON_TZ=America/New_York 30 1 * * *"), datetime(2026, 10, 31, 12, tzinfo=NY), 3)
    assert got == [utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6, 30), utc(2026, 11, 2, 6, 30)]
    # Searching from inside the second copy does not go back to the first.
    assert compile_spec(cron("CRON_TZ=America/New_York 45 1 * * *")).next_time(
        utc(2026, 11, 1, 6, 10)
    ) == utc(2026, 11, 1, 6, 45)


def test_fall_back_in_a_zone_east_of_utc_keeps_temporals_quirk() -> None:
    # Europe/Berlin, 2026-10-25: 03:00 CEST goes back to 02:00 CET. Temporal (checked against the real server in
    # test_vs_temporal) fires "1:30" twice (01:30 CEST and an hour later) and skips 02:30 CET.
    got = nominals(cron("CRON_TZ=Europe/Berlin 30 1,2 * * *"), utc(2026, 10, 24, 12), 3)
    assert got == [utc(2026, 10, 24, 23, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 0, 30)]


# --- intervals ------------------------------------------------------------------------------------------------


def test_interval_is_anchored_at_the_epoch() -> None:
    got = nominals(interval(7 * 60), utc(2026, 1, 1), 3)
    assert all(int(t.timestamp()) % 420 == 0 for t in got)
    assert got[1] - got[0] == got[2] - got[1] == timedelta(minutes=7)


def test_interval_with_phase() -> None:
    assert nominals(interval(3600, 17 * 60), utc(2026, 1, 1, 10, 20), 2) == [
        utc(2026, 1, 1, 11, 17),
        utc(2026, 1, 1, 12, 17),
    ]
    assert compile_spec(cron("@every 90m/15m")).next_time(utc(2026, 1, 1)) == utc(2026, 1, 1, 0, 15)


def test_union_of_calendars_and_intervals() -> None:
    spec = sched.ScheduleSpec(
        cron_string=["0 12 * * *"],
        calendar=[sched.CalendarSpec(hour="6", minute="30")],
        interval=[sched.IntervalSpec(interval=dur(8 * 3600), phase=dur(3600))],
    )
    assert nominals(spec, utc(2026, 1, 1), 6) == [
        utc(2026, 1, 1, 1),
        utc(2026, 1, 1, 6, 30),
        utc(2026, 1, 1, 9),
        utc(2026, 1, 1, 12),
        utc(2026, 1, 1, 17),
        utc(2026, 1, 2, 1),
    ]


# --- bounds and exclusions ------------------------------------------------------------------------------------


def test_start_time_itself_can_match_and_end_time_is_inclusive() -> None:
    spec = cron("@hourly", start_time=ts(utc(2026, 1, 1, 5)), end_time=ts(utc(2026, 1, 1, 7)))
    assert nominals(spec, utc(2025, 1, 1), 5) == [utc(2026, 1, 1, 5), utc(2026, 1, 1, 6), utc(2026, 1, 1, 7)]


def test_nothing_before_the_epoch_without_a_start_time() -> None:
    # The search starts one second before the epoch, so the epoch itself can match.
    assert compile_spec(cron("0 0 1 1 *")).next_time(datetime(1960, 6, 1, tzinfo=UTC)) == utc(1970, 1, 1)
    assert compile_spec(interval(3600)).next_time(datetime(1960, 6, 1, tzinfo=UTC)) == utc(1970, 1, 1, 1)


def test_exclusions() -> None:
    spec = sched.ScheduleSpec(
        cron_string=["0 * * * *"],
        exclude_calendar=[
            sched.CalendarSpec(hour="12-13"),
            sched.CalendarSpec(hour="*", day_of_week="sat,sun"),
        ],
    )
    assert nominals(spec, utc(2026, 3, 6, 10, 30), 4) == [  # Friday
        utc(2026, 3, 6, 11),
        utc(2026, 3, 6, 14),
        utc(2026, 3, 6, 15),
        utc(2026, 3, 6, 16),
    ]
    assert compile_spec(spec).next_time(utc(2026, 3, 6, 23, 30)) == utc(2026, 3, 9, 0)  # Monday


def test_excluding_everything_hits_the_compute_limit() -> None:
    spec = sched.ScheduleSpec(
        cron_string=["* * * * *"], exclude_calendar=[sched.CalendarSpec(minute="*", hour="*")]
    )
    compiled = compile_spec(spec, max_iterations=500)
    with pytest.raises(ComputeLimitExceeded):
        compiled.get_next_time(utc(2026, 1, 1))
    with pytest.raises(InvalidArgument, match="too many exclusions"):
        compiled.matching_times(utc(2026, 1, 1), utc(2026, 1, 2))


# --- jitter ---------------------------------------------------------------------------------------------------


def test_jitter_matches_temporals_values() -> None:
    # Known results of Temporal's jitter (nominal 2022-03-24T00:00Z, jitter 1h) for three seeds.
    spec = interval(86400, jitter=dur(3600))
    actual = {
        seed: compile_spec(spec, seed).get_next_time(utc(2022, 3, 23, 11))
        for seed in ("", "seed-1", "seed-2")
    }
    assert all(r is not None and r.nominal == utc(2022, 3, 24) for r in actual.values())
    assert {seed: r.actual for seed, r in actual.items() if r} == {
        "": utc(2022, 3, 24, 0, 35, 24) + timedelta(milliseconds=276),
        "seed-1": utc(2022, 3, 24, 0, 6, 12) + timedelta(milliseconds=519),
        "seed-2": utc(2022, 3, 24, 0, 39, 16) + timedelta(milliseconds=922),
    }


def test_jitter_is_capped_by_the_gap_to_the_following_time() -> None:
    compiled = compile_spec(interval(90 * 60, jitter=dur(86400)))
    after = utc(2022, 3, 23, 11)
    for _ in range(50):
        found = compiled.get_next_time(after)
        assert found is not None
        assert timedelta(0) <= found.actual - found.nominal < timedelta(minutes=90)
        after = found.actual


def test_jitter_is_deterministic_and_depends_on_the_seed() -> None:
    spec = cron("0 * * * *", jitter=dur(1800))
    seed = jitter_seed("9a1f4c9e-0000-4000-8000-000000000000", "nightly")
    first = matching_times(spec, utc(2026, 1, 1), utc(2026, 1, 3), seed)
    assert first == matching_times(spec, utc(2026, 1, 1), utc(2026, 1, 3), seed)
    assert first != matching_times(spec, utc(2026, 1, 1), utc(2026, 1, 3), seed + "x")
    offsets = {t - t.replace(minute=0, second=0, microsecond=0) for t in first}
    assert len(offsets) > 40 and all(timedelta(0) <= o < timedelta(minutes=30) for o in offsets)


def test_no_jitter_means_actual_equals_nominal() -> None:
    found = compile_spec(cron("@daily")).get_next_time(utc(2026, 1, 1, 1))
    assert found is not None and found.actual == found.nominal == utc(2026, 1, 2)


# --- matching times -------------------------------------------------------------------------------------------


def test_matching_times_end_inclusive_and_capped_at_1000() -> None:
    assert matching_times(cron("@hourly"), utc(2026, 1, 1), utc(2026, 1, 1, 3)) == [
        utc(2026, 1, 1, 1),
        utc(2026, 1, 1, 2),
        utc(2026, 1, 1, 3),
    ]
    assert len(matching_times(interval(1), utc(2026, 1, 1), utc(2026, 1, 2))) == 1000


def test_matching_times_are_the_jittered_times() -> None:
    compiled = compile_spec(interval(60, jitter=dur(59)), "seed")
    got = compiled.matching_times(utc(2026, 1, 1), utc(2026, 1, 1, 1))
    minutes = [t.replace(second=0, microsecond=0) for t in got]
    assert minutes[:59] == [utc(2026, 1, 1, 0, m) for m in range(1, 60)] and minutes[59:] in (
        [],
        [utc(2026, 1, 1, 1)],
    )
    assert all(t.second < 59 for t in got) and len({t.second for t in got}) > 10
    # Each listed time is the scheduler's actual time for that minute (nominal plus jitter).
    for prev, t in zip([utc(2026, 1, 1), *got], got, strict=False):
        found = compiled.get_next_time(prev)
        assert found is not None and found.actual == t and found.nominal == minutes[got.index(t)]


# --- building blocks ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fingerprint"),
    [
        ("", 0xDC56D17A),
        ("abcd", 0x98B51E95),
        ("abcdefghi", 0x6F98DC86),
        ("0123456789~01", 0x0D92CAFB),
        ("0123456789^0123456789", 0x536D1EFD),
        ("Nepal premier won't resign.", 0x322984D9),
        ("He who has a shady past knows that nice guys finish last.", 0xF585DFC4),
    ],
)
def test_farmhash_fingerprint32_reference_values(text: str, fingerprint: int) -> None:
    assert fingerprint32(text.encode()) == fingerprint


@pytest.mark.parametrize(
    ("text", "nanos"),
    [
        ("90m", 5400 * 10**9),
        ("1h30m", 5400 * 10**9),
        ("1.5h", 5400 * 10**9),
        ("2d", 172800 * 10**9),
        ("-5m", -300 * 10**9),
        ("0", 0),
        ("250ms", 250 * 10**6),
        ("1us", 1000),
        (".5s", 5 * 10**8),
    ],
)
def test_durations(text: str, nanos: int) -> None:
    assert parse_duration(text) == nanos


@pytest.mark.parametrize("text", ["", "h", "1", "1x", "1..5h", "--1h", "9999999999999999999h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(GoError, match="^time: "):
        parse_duration(text)


def test_atoi_is_strict() -> None:
    assert atoi("+7") == 7 and atoi("-3") == -3
    for bad in (" 1", "1_0", "٣", "0x10", ""):
        with pytest.raises(GoError, match="invalid syntax"):
            atoi(bad)
