"""Properties of the next-time search, checked with Hypothesis against a brute-force oracle.

The oracle walks every minute of a window and keeps the instants whose wall clock (in the spec's zone) matches
the calendar and no exclusion. In zones west of UTC (or without DST) that is exactly Temporal's semantics, DST
included: a wall time skipped by spring-forward has no instant, and a repeated wall time has two.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.api.schedule.v1 import message_pb2 as sched

from services.internal_worker.schedules import ComputeLimitExceeded, compile_spec
from services.internal_worker.schedules.calendar import range_values

from .helpers import R, dur

ZONES = ["UTC", "America/New_York", "America/Los_Angeles", "America/Sao_Paulo", "Asia/Kolkata"]
# Days with DST changes in the zones above (and ordinary days), so windows often straddle a change.
ANCHORS = [
    datetime(2026, 3, 8, tzinfo=UTC),
    datetime(2026, 11, 1, tzinfo=UTC),
    datetime(2027, 3, 14, tzinfo=UTC),
    datetime(2027, 11, 7, tzinfo=UTC),
    datetime(2026, 6, 15, tzinfo=UTC),
    datetime(2028, 2, 28, tzinfo=UTC),
]
WINDOW = timedelta(days=3)


@st.composite
def ranges(draw: st.DrawFn, low: int, high: int, max_parts: int = 2) -> list[sched.Range]:
    out = []
    for _ in range(draw(st.integers(1, max_parts))):
        start = draw(st.integers(low, high))
        end = draw(st.one_of(st.just(0), st.integers(start, high)))
        out.append(R(start, end, draw(st.sampled_from([0, 1, 2, 3, 5, 7, 15]))))
    return out


@st.composite
def calendars(draw: st.DrawFn) -> sched.StructuredCalendarSpec:
    """Calendars at minute resolution (second 0) dense enough to fire a few times in a few days."""
    return sched.StructuredCalendarSpec(
        second=[R(0)],
        minute=draw(ranges(0, 59)),
        hour=draw(st.one_of(st.just([R(0, 23)]), ranges(0, 23, 3))),
        day_of_month=draw(st.one_of(st.just([R(1, 31)]), ranges(1, 31))),
        month=[R(1, 12)],
        day_of_week=draw(st.one_of(st.just([R(0, 6)]), ranges(0, 6))),
    )


def wall_matches(cal: sched.StructuredCalendarSpec, instant: datetime, zone: ZoneInfo) -> bool:
    w = instant.astimezone(zone)
    fields = [
        (cal.minute, w.minute, 0, 59),
        (cal.hour, w.hour, 0, 23),
        (cal.day_of_month, w.day, 1, 31),
        (cal.month, w.month, 1, 12),
        (cal.day_of_week, (w.weekday() + 1) % 7, 0, 6),
        (cal.second, w.second, 0, 59),
    ]
    return all(value in range_values(rs, low, high) for rs, value, low, high in fields)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cals=st.lists(calendars(), min_size=1, max_size=2),
    excludes=st.lists(calendars(), max_size=1),
    zone_name=st.sampled_from(ZONES),
    anchor=st.sampled_from(ANCHORS),
    offset_minutes=st.integers(-36 * 60, 12 * 60),
)
def test_next_time_finds_exactly_the_matching_instants(
    cals: list[sched.StructuredCalendarSpec],
    excludes: list[sched.StructuredCalendarSpec],
    zone_name: str,
    anchor: datetime,
    offset_minutes: int,
) -> None:
    zone = ZoneInfo(zone_name)
    spec = sched.ScheduleSpec(
        structured_calendar=cals, exclude_structured_calendar=excludes, timezone_name=zone_name
    )
    # More excluded candidates in a row than the window has minutes means nothing is left in the window.
    compiled = compile_spec(spec, max_iterations=5000)
    start = anchor + timedelta(minutes=offset_minutes, seconds=17)
    end = start + WINDOW

    got: list[datetime] = []
    cursor = start
    while True:
        try:
            found = compiled.next_time(cursor)
        except ComputeLimitExceeded:
            break
        if found is None or found > end:
            break
        assert found > cursor  # strictly increasing
        got.append(found)
        cursor = found

    expected = []
    minute = start.replace(second=0) + timedelta(minutes=1)
    while minute <= end:
        matched = any(wall_matches(c, minute, zone) for c in cals)
        if matched and not any(wall_matches(x, minute, zone) for x in excludes):
            expected.append(minute)
        minute += timedelta(minutes=1)
    assert got == expected


@settings(max_examples=80, deadline=None)
@given(
    every=st.integers(1, 10 * 86400),
    phase_fraction=st.floats(0, 0.999),
    jitter=st.integers(0, 3 * 86400),
    start=st.datetimes(
        min_value=datetime(2001, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
    ),
    seed=st.text(max_size=40),
)
def test_intervals_with_phase_and_jitter(
    every: int, phase_fraction: float, jitter: int, start: datetime, seed: str
) -> None:
    phase = int(every * phase_fraction)
    spec = sched.ScheduleSpec(
        interval=[sched.IntervalSpec(interval=dur(every), phase=dur(phase))], jitter=dur(jitter)
    )
    compiled = compile_spec(spec, seed)
    cursor, previous = start, None
    for _ in range(5):
        found = compiled.get_next_time(cursor)
        assert found is not None
        epoch_seconds = int(found.nominal.timestamp())
        assert (epoch_seconds - phase) % every == 0  # on the grid anchored at the epoch plus phase
        assert found.nominal > cursor and found.nominal - cursor <= timedelta(seconds=every)
        if previous is not None:
            assert found.nominal - previous == timedelta(seconds=every)
        jittered = found.actual - found.nominal
        limit = timedelta(seconds=min(jitter, every))  # never past the following nominal time
        assert timedelta(0) <= jittered < limit if jitter else jittered == timedelta(0)
        assert compiled.get_next_time(cursor) == found  # deterministic
        previous, cursor = found.nominal, found.actual
