"""Schedule specs: canonical form, next matching time with jitter, and the times ListScheduleMatchingTimes lists.

Sans-IO: every time is passed in. The semantics are Temporal's, so a schedule behaves the same on Durata as on a
Temporal server:

- the canonical form (what Create stores; Describe shows it via ``describe_form``) has every cron and calendar string turned
  into structured calendars / intervals;
- a nominal time is the earliest time after ``after`` matched by any calendar or interval (the union), not matched
  by any exclusion, within [start_time, end_time], and in the year 2100 at the latest;
- an interval fires at ``epoch + phase + k * interval`` (whole seconds);
- the actual time adds a jitter in [0, min(jitter, gap to the following nominal time)), derived
  deterministically from the nominal time and a per-schedule seed (``<namespace id>-<schedule id>``), bit for bit
  as Temporal computes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from google.protobuf import duration_pb2, timestamp_pb2
from temporalio.api.schedule.v1 import message_pb2 as sched

from server.common.errors import InvalidArgument

from .calendar import CompiledCalendar
from .farmhash import fingerprint32
from .gotime import SECONDS_YEAR1_TO_EPOCH, GoError, load_timezone
from .parse import MAX_YEAR, SpecError, calendar_to_structured, parse_cron_string, validate_structured

NANOS = 1_000_000_000
_INT64_MAX = (1 << 63) - 1
# Temporal lists at most this many times per ListScheduleMatchingTimes call.
MAX_LIST_MATCHING_TIMES = 1000
# Temporal lets the search for a non-excluded time run unbounded by default; an unbounded loop in Python could
# occupy a worker for hours on an over-excluded every-second spec, so Durata bounds it (None disables the bound).
DEFAULT_MAX_ITERATIONS = 1_000_000
TOO_MANY_EXCLUSIONS = (
    "the schedule calendar specification has too many exclusions. Please modify the specification."
)


class ComputeLimitExceeded(Exception):
    """The search for a non-excluded time gave up after ``max_iterations`` excluded candidates."""


@dataclass(frozen=True)
class NextTime:
    nominal: datetime  # the matching time, before jitter (UTC)
    actual: datetime  # nominal plus jitter: when the action really runs (UTC)


def jitter_seed(namespace_id: str, schedule_id: str) -> str:
    """The per-schedule jitter seed Temporal uses."""
    return f"{namespace_id}-{schedule_id}"


def _duration_nanos(d: duration_pb2.Duration) -> int:
    """A proto duration as Go's ``time.Duration`` (nanoseconds, saturating at the int64 bounds)."""
    total = d.seconds * NANOS + d.nanos
    return max(-_INT64_MAX - 1, min(_INT64_MAX, total))


def _trunc_div(a: int, b: int) -> int:
    """Integer division rounding toward zero, as Go's."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _check_duration(d: duration_pb2.Duration, what: str) -> None:
    """Protobuf's rules for a well-formed Duration, which Temporal checks before anything else. The message
    imitates Go protobuf's (its "proto:" prefix has a no-break space; its text format puts two spaces between
    fields in Temporal's released builds)."""
    text = "  ".join(
        f"{name}:{value}" for name, value in (("seconds", d.seconds), ("nanos", d.nanos)) if value
    )
    if abs(d.seconds) > 315_576_000_000:
        sign = "-" if d.seconds < 0 else "+"
        reason = f"duration ({text}) exceeds {sign}10000 years"
    elif abs(d.nanos) >= NANOS:
        reason = f"duration ({text}) has out-of-range nanos"
    elif (d.seconds > 0 and d.nanos < 0) or (d.seconds < 0 and d.nanos > 0):
        reason = f"duration ({text}) has seconds and nanos with different signs"
    else:
        return
    raise SpecError(f"{what} is not a valid duration: proto:\u00a0{reason}")


def _validate_interval(iv: sched.IntervalSpec) -> None:
    interval, phase = _duration_nanos(iv.interval), _duration_nanos(iv.phase)
    if interval < NANOS:
        raise SpecError("interval is too small")
    if phase < 0:
        raise SpecError("phase is negative")
    if phase >= interval:
        raise SpecError("phase cannot be greater than Interval")


def _canonical(spec: sched.ScheduleSpec) -> sched.ScheduleSpec:
    """The canonical form, or SpecError with Temporal's text."""
    for iv in spec.interval:
        if iv.HasField("interval"):
            _check_duration(iv.interval, "interval")
        if iv.HasField("phase"):
            _check_duration(iv.phase, "phase")
    out = sched.ScheduleSpec()
    out.CopyFrom(spec)
    for cal in spec.calendar:
        out.structured_calendar.append(calendar_to_structured(cal))
    del out.calendar[:]
    for cal in spec.exclude_calendar:
        out.exclude_structured_calendar.append(calendar_to_structured(cal))
    del out.exclude_calendar[:]
    cron_tz: str | None = None
    for text in spec.cron_string:
        parsed = parse_cron_string(text)
        if cron_tz is not None and parsed.timezone != cron_tz:
            raise SpecError("conflicting timezone names")  # all cron strings agree (a missing zone included)
        cron_tz = parsed.timezone
        if parsed.calendar is not None:
            out.structured_calendar.append(parsed.calendar)
        if parsed.interval is not None:
            out.interval.append(parsed.interval)
    del out.cron_string[:]
    if cron_tz:
        if (out.timezone_name and out.timezone_name != cron_tz) or out.timezone_data:
            raise SpecError("conflicting timezone names")
        out.timezone_name = cron_tz
    for structured in out.structured_calendar:
        validate_structured(structured)
    for iv in out.interval:
        _validate_interval(iv)
    return out


def _invalid(err: Exception) -> InvalidArgument:
    return InvalidArgument(f"Invalid schedule spec: {err}")


class CompiledSpec:
    """A canonicalized spec ready to answer "what is the next time after t?"."""

    def __init__(
        self,
        spec: sched.ScheduleSpec,
        seed: str = "",
        *,
        max_iterations: int | None = DEFAULT_MAX_ITERATIONS,
    ) -> None:
        try:
            self.canonical = _canonical(spec)
            self.tz: tzinfo = load_timezone(self.canonical.timezone_name, self.canonical.timezone_data)
        except (SpecError, GoError) as err:
            raise _invalid(err) from err
        self.seed = seed
        self.max_iterations = max_iterations
        c = self.canonical
        self._calendars = [CompiledCalendar(cal, self.tz) for cal in c.structured_calendar]
        self._excludes = [CompiledCalendar(cal, self.tz) for cal in c.exclude_structured_calendar]
        self._intervals = [
            (max(_duration_nanos(iv.interval) // NANOS, 1), max(_duration_nanos(iv.phase) // NANOS, 0))
            for iv in c.interval
        ]
        # An absent start time is the Unix epoch: nothing matches before 1970.
        self._start_ns = _timestamp_nanos(c.start_time) if c.HasField("start_time") else 0
        self._end_ns = _timestamp_nanos(c.end_time) if c.HasField("end_time") else None
        self._jitter_ns = _duration_nanos(c.jitter)

    def _raw_next(self, after: int) -> int | None:
        """The earliest calendar or interval time after ``after`` (Unix seconds), ignoring exclusions and bounds."""
        best: int | None = None
        for cal in self._calendars:
            found = cal.next(after)
            if found is not None and (best is None or found < best):
                best = found
        for interval, phase in self._intervals:
            found = (_trunc_div(after - phase, interval) + 1) * interval + phase
            if best is None or found < best:
                best = found
        return best

    def _excluded(self, unix: int) -> bool:
        return any(ex.matches(unix) for ex in self._excludes)

    def _past_end(self, unix: int) -> bool:
        if self._end_ns is not None and unix * NANOS > self._end_ns:
            return True
        return datetime.fromtimestamp(unix, UTC).year > MAX_YEAR

    def get_next_time(self, after: datetime) -> NextTime | None:
        """The first time strictly after ``after`` (nominal and jittered), or None when no time is left.

        Raises ComputeLimitExceeded when ``max_iterations`` candidates in a row were excluded.
        """
        after_ns = max(_datetime_nanos(after), self._start_ns - NANOS)  # so that start_time itself can match
        cursor = after_ns // NANOS
        nominal: int | None = None
        iterations = 0
        while nominal is None or self._excluded(nominal):
            if self.max_iterations is not None and iterations >= self.max_iterations:
                raise ComputeLimitExceeded(TOO_MANY_EXCLUSIONS)
            iterations += 1
            nominal = self._raw_next(cursor)
            if nominal is None or self._past_end(nominal):
                return None
            cursor = nominal
        max_jitter_ns = self._jitter_ns
        following = self._raw_next(nominal)
        if following is not None:
            max_jitter_ns = min(max_jitter_ns, (following - nominal) * NANOS)
        jitter_ms = self._jitter_ms(nominal, max_jitter_ns)
        base = datetime.fromtimestamp(nominal, UTC)
        return NextTime(base, base + timedelta(milliseconds=jitter_ms))

    def next_time(self, after: datetime) -> datetime | None:
        """The first nominal (un-jittered) time strictly after ``after``."""
        found = self.get_next_time(after)
        return found.nominal if found is not None else None

    def _jitter_ms(self, nominal: int, max_jitter_ns: int) -> int:
        """Temporal's jitter: the FarmHash fingerprint of the nominal time (in Go's binary time encoding, UTC)
        followed by the seed, scaled into [0, max jitter) with millisecond resolution."""
        max_ms = min(max(max_jitter_ns, 0) // 1_000_000, 0xFFFFFFFF)
        if max_ms == 0:
            return 0
        encoded = (
            b"\x01"
            + (nominal + SECONDS_YEAR1_TO_EPOCH).to_bytes(8, "big", signed=True)
            + b"\x00\x00\x00\x00"  # nanoseconds: nominal times are whole seconds
            + b"\xff\xff"  # zone offset -1: UTC
        )
        return (fingerprint32(encoded + self.seed.encode()) * max_ms) >> 32

    def matching_times(self, start: datetime, end: datetime) -> list[datetime]:
        """The actual (jittered) times in (start, end], at most 1000: what ListScheduleMatchingTimes returns.

        Each search resumes after the previous actual time, as Temporal's does.
        """
        out: list[datetime] = []
        cursor = start
        for _ in range(MAX_LIST_MATCHING_TIMES):
            try:
                found = self.get_next_time(cursor)
            except ComputeLimitExceeded as err:
                raise InvalidArgument(TOO_MANY_EXCLUSIONS) from err
            if found is None or found.actual > end:
                break
            out.append(found.actual)
            cursor = found.actual
        return out


def _timestamp_nanos(ts: timestamp_pb2.Timestamp) -> int:
    return ts.seconds * NANOS + ts.nanos


def _datetime_nanos(dt: datetime) -> int:
    if dt.tzinfo is None:
        raise ValueError("schedule times must be timezone-aware")
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * NANOS + delta.microseconds * 1_000


def compile_spec(
    spec: sched.ScheduleSpec, seed: str = "", *, max_iterations: int | None = DEFAULT_MAX_ITERATIONS
) -> CompiledSpec:
    """Validate and compile ``spec``; raises InvalidArgument with Temporal's text for a bad one."""
    return CompiledSpec(spec, seed, max_iterations=max_iterations)


def canonicalize(spec: sched.ScheduleSpec) -> sched.ScheduleSpec:
    """What Create stores: cron and calendar strings converted, everything validated (InvalidArgument if not)."""
    return compile_spec(spec).canonical


def describe_form(spec: sched.ScheduleSpec) -> sched.ScheduleSpec:
    """What Describe and List return for a stored canonical spec: every range with its end and step spelled out
    (end below start becomes start, step 0 becomes 1)."""
    out = sched.ScheduleSpec()
    out.CopyFrom(spec)
    for cal in [*out.structured_calendar, *out.exclude_structured_calendar]:
        for ranges in (
            cal.second,
            cal.minute,
            cal.hour,
            cal.day_of_month,
            cal.month,
            cal.year,
            cal.day_of_week,
        ):
            for r in ranges:
                r.end = max(r.end, r.start)
                r.step = r.step or 1
    return out


def matching_times(
    spec: sched.ScheduleSpec | CompiledSpec, start: datetime, end: datetime, seed: str = ""
) -> list[datetime]:
    """ListScheduleMatchingTimes for ``spec`` between ``start`` and ``end`` (the jittered times)."""
    compiled = spec if isinstance(spec, CompiledSpec) else compile_spec(spec, seed)
    return compiled.matching_times(start, end)


__all__ = [
    "CompiledSpec",
    "ComputeLimitExceeded",
    "NextTime",
    "canonicalize",
    "compile_spec",
    "describe_form",
    "jitter_seed",
    "matching_times",
]
