"""Calendar strings and cron strings to the structured form the API stores and returns.

Temporal converts every ``CalendarSpec`` ("1-5/2,10" per field) and every cron string into a
``StructuredCalendarSpec`` (or, for ``@every``, an ``IntervalSpec``) when a schedule is created, so Describe shows
only the structured form. The accepted syntax, the defaults and the error texts follow Temporal's, because clients
(the CLI, the SDKs' tests) see them.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf import duration_pb2
from temporalio.api.schedule.v1 import message_pb2 as sched

from .gotime import GoError, atoi, int32, parse_duration

MIN_YEAR = 2000
MAX_YEAR = 2100
MAX_COMMENT_LEN = 200

_MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
_WEEKDAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")

_SHORTHANDS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


class SpecError(ValueError):
    """An invalid spec; the text is what follows "Invalid schedule spec: " in Temporal's error."""


@dataclass(frozen=True)
class _Field:
    name: str
    default: str
    low: int
    high: int
    kind: str = "int"  # "int", "year" (default is the empty list), "month" or "dow" (names accepted)


_SECOND = _Field("Second", "0", 0, 59)
_MINUTE = _Field("Minute", "0", 0, 59)
_HOUR = _Field("Hour", "0", 0, 23)
_DOW = _Field("DayOfWeek", "*", 0, 7, "dow")
_DOM = _Field("DayOfMonth", "*", 1, 31)
_MONTH = _Field("Month", "*", 1, 12, "month")
_YEAR = _Field("Year", "*", MIN_YEAR, MAX_YEAR, "year")


def _parse_value(s: str, low: int, high: int, kind: str) -> int:
    """One value: a decimal integer, or a month name prefix (3+ letters) / weekday prefix (2+ letters)."""
    names, min_len = (_MONTHS, 3) if kind == "month" else (_WEEKDAYS, 2) if kind == "dow" else ((), 0)
    if names and len(s) >= min_len:
        lowered = s.lower()
        for index, name in enumerate(names):
            if name.startswith(lowered):
                value = index + 1 if kind == "month" else index
                if not low <= value <= high:
                    raise GoError("out of range")
                return value
    value = atoi(s)
    if not low <= value <= high:
        raise GoError("out of range")
    return value


def _parse_part(part: str, field: _Field, out: list[sched.Range]) -> None:
    step, has_step = 1, False
    slashes = part.count("/")
    if slashes > 1:
        raise SpecError(f"{field.name} has too many slashes")
    if slashes == 1:
        part, step_text = part.split("/", 1)
        if not step_text:
            raise SpecError(f"{field.name} missing step value")
        try:
            step = atoi(step_text)
        except GoError as err:
            raise SpecError(str(err)) from err
        if step < 1:
            raise SpecError(f"{field.name} has invalid Step")
        has_step = True
    low, high = field.low, field.high
    start, end = low, high
    bounds = f"[{low}-{high}]"
    if part != "*":
        if "-" in part:
            if part.count("-") > 1:
                raise SpecError(f"{field.name} has too many dashes")
            first, last = part.split("-", 1)
            try:
                start = _parse_value(first, low, high, field.kind)
            except GoError as err:
                raise SpecError(f"{field.name} Start is not in range {bounds}") from err
            try:
                end = _parse_value(last, start, high, field.kind)
            except GoError as err:
                raise SpecError(f"{field.name} End is before Start or not in range {bounds}") from err
        else:
            try:
                start = _parse_value(part, low, high, field.kind)
            except GoError as err:
                raise SpecError(f"{field.name} is not in range {bounds}") from err
            if not has_step:
                end = start  # "x/y" runs from x to the field's maximum; a bare "x" is just x
    if field.kind == "dow" and end == 7:
        # 7 is another name for Sunday (0). When the range really includes 7 (and is not simply 1-7 or 0-7,
        # which 0-6 covers), Sunday is added as its own range; the range itself then stops at Saturday.
        if (7 - start) % step == 0 and (step > 1 or start > 1):
            out.append(sched.Range(start=0))
            if start == 7:
                return
        end = 6
    out.append(
        sched.Range(
            start=int32(start), end=int32(0 if end == start else end), step=int32(0 if step == 1 else step)
        )
    )


def _parse_field(text: str, field: _Field) -> list[sched.Range]:
    text = text.strip() or field.default
    if text == "*" and field.kind == "year":
        return []  # every year is the empty list
    out: list[sched.Range] = []
    for part in text.split(","):
        _parse_part(part, field, out)
    return out


def calendar_to_structured(cal: sched.CalendarSpec) -> sched.StructuredCalendarSpec:
    """A ``CalendarSpec`` as a ``StructuredCalendarSpec``; all field errors are reported together."""
    errors: list[str] = []
    parsed: dict[str, list[sched.Range]] = {}
    # The order of the fields here is the order Temporal reports their errors in.
    for attr, field in (
        ("second", _SECOND),
        ("minute", _MINUTE),
        ("hour", _HOUR),
        ("day_of_week", _DOW),
        ("day_of_month", _DOM),
        ("month", _MONTH),
        ("year", _YEAR),
    ):
        try:
            parsed[attr] = _parse_field(getattr(cal, attr), field)
        except SpecError as err:
            errors.append(str(err))
    if errors:
        raise SpecError(", ".join(errors))
    return sched.StructuredCalendarSpec(comment=cal.comment, **parsed)


@dataclass
class ParsedCron:
    calendar: sched.StructuredCalendarSpec | None
    interval: sched.IntervalSpec | None
    timezone: str


def _duration(nanos: int) -> duration_pb2.Duration:
    seconds, rest = divmod(abs(nanos), 1_000_000_000)
    sign = -1 if nanos < 0 else 1
    return duration_pb2.Duration(seconds=sign * seconds, nanos=sign * rest)


def _parse_every(text: str) -> sched.IntervalSpec:
    """``@every <interval>[/<phase>]``; durations in Temporal's syntax (Go's plus ``d``)."""
    if " " not in text:
        raise SpecError("CronString does not have interval after @every")
    interval_text, _, phase_text = text.split(" ", 1)[1].partition("/")
    try:
        interval = parse_duration(interval_text)
        if not phase_text:
            return sched.IntervalSpec(interval=_duration(interval))
        phase = parse_duration(phase_text)
    except GoError as err:
        raise SpecError(str(err)) from err
    return sched.IntervalSpec(interval=_duration(interval), phase=_duration(phase))


def parse_cron_string(text: str) -> ParsedCron:
    """One cron string: optional ``CRON_TZ=``/``TZ=`` prefix, 5 (m h dom mon dow), 6 (+ year) or 7 (s m h dom mon
    dow year) fields, a ``#`` comment, the ``@daily``-style shorthands and ``@every``."""
    text = text.strip()
    tz_name = ""
    if text.startswith(("TZ=", "CRON_TZ=")):
        if " " not in text:
            raise SpecError("CronString has time zone but missing fields")
        prefix, text = text.split(" ", 1)
        tz_name = prefix.split("=", 1)[1]
    text, _, comment = text.partition("#")
    text, comment = text.strip(), comment.strip()
    if text.startswith("@every"):
        # Temporal drops a time zone given with @every: an interval does not depend on one.
        return ParsedCron(None, _parse_every(text), "")
    fields = _SHORTHANDS.get(text, text).split()
    cal = sched.CalendarSpec(comment=comment)
    if len(fields) == 5:
        cal.minute, cal.hour, cal.day_of_month, cal.month, cal.day_of_week = fields
    elif len(fields) == 6:
        cal.minute, cal.hour, cal.day_of_month, cal.month, cal.day_of_week, cal.year = fields
    elif len(fields) == 7:
        cal.second, cal.minute, cal.hour, cal.day_of_month, cal.month, cal.day_of_week, cal.year = fields
    else:
        raise SpecError("CronString does not have 5-7 fields")
    return ParsedCron(calendar_to_structured(cal), None, tz_name)


_LIMITS = (
    ("second", "Second", 0, 59),
    ("minute", "Minute", 0, 59),
    ("hour", "Hour", 0, 23),
    ("day_of_month", "DayOfMonth", 1, 31),
    ("month", "Month", 1, 12),
    ("year", "Year", MIN_YEAR, MAX_YEAR),
    ("day_of_week", "DayOfWeek", 0, 6),
)


def validate_structured(cal: sched.StructuredCalendarSpec) -> None:
    """Range bounds of a structured calendar (end 0 means "same as start"), and the comment's length."""
    errors: list[str] = []
    for attr, name, low, high in _LIMITS:
        for r in getattr(cal, attr):
            if not low <= r.start <= high:
                errors.append(f"{name} Start is not in range [{low}-{high}]")
            if r.end != 0 and (r.end < r.start or r.end > high):
                errors.append(f"{name} End is before Start or not in range [{low}-{high}]")
            if r.step < 0:
                errors.append(f"{name} has invalid Step")
    if len(cal.comment.encode()) > MAX_COMMENT_LEN:
        errors.append("comment is too long")
    if errors:
        raise SpecError("invalid calendar spec: " + ", ".join(errors))
