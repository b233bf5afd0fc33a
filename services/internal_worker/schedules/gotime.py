"""The few pieces of Go's standard library whose exact behaviour Temporal's schedule specs inherit.

Temporal parses integers with ``strconv.Atoi`` and durations with ``time.ParseDuration`` (plus a ``d`` unit), and
it resolves a wall-clock time inside a DST gap or overlap the way Go's ``time.Date`` does. A schedule must accept,
reject and place times exactly as Temporal does, so these are reproduced here (error texts included) on top of the
standard library's ``zoneinfo``.
"""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_INT64_MAX = (1 << 63) - 1
_ATOI = re.compile(r"[+-]?[0-9]+")
_EPOCH_NAIVE = datetime(1970, 1, 1)
# Seconds from 0001-01-01T00:00:00Z to the Unix epoch: Go's binary time encoding counts from year 1.
SECONDS_YEAR1_TO_EPOCH = 62_135_596_800


class GoError(ValueError):
    """A parse failure carrying the text Go (and so Temporal) would report."""


def go_quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def atoi(s: str) -> int:
    """``strconv.Atoi``: optional sign and ASCII digits only, within int64."""
    if not _ATOI.fullmatch(s):
        raise GoError(f"strconv.Atoi: parsing {go_quote(s)}: invalid syntax")
    value = int(s)
    if not -_INT64_MAX - 1 <= value <= _INT64_MAX:
        raise GoError(f"strconv.Atoi: parsing {go_quote(s)}: value out of range")
    return value


def int32(v: int) -> int:
    """Go's ``int32(v)`` conversion (wraps)."""
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


_UNITS_NS = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,
    "\u03bcs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_DAYS = re.compile(r"([0-9]+(\.[0-9]*)?|(\.[0-9]+))d")
_DIGITS = re.compile(r"[0-9]*")


def _parse_go_duration(orig: str) -> int:
    """``time.ParseDuration``, in nanoseconds."""
    s, neg = orig, False
    if s and s[0] in "+-":
        neg, s = s[0] == "-", s[1:]
    if s == "0":
        return 0
    if not s:
        raise GoError(f"time: invalid duration {go_quote(orig)}")
    total = 0
    while s:
        if not (s[0] == "." or s[0].isascii() and s[0].isdigit()):
            raise GoError(f"time: invalid duration {go_quote(orig)}")
        whole_digits = _DIGITS.match(s).group()  # type: ignore[union-attr]
        s = s[len(whole_digits) :]
        whole = int(whole_digits) if whole_digits else 0
        if whole > _INT64_MAX:
            raise GoError(f"time: invalid duration {go_quote(orig)}")
        frac, scale, frac_digits = 0, 1.0, ""
        if s.startswith("."):
            frac_digits = _DIGITS.match(s, 1).group()  # type: ignore[union-attr]
            s = s[1 + len(frac_digits) :]
            for ch in frac_digits:  # Go stops accumulating (but keeps consuming) once it would overflow
                if frac > (_INT64_MAX - 9) // 10:
                    break
                frac, scale = frac * 10 + int(ch), scale * 10
        if not whole_digits and not frac_digits:
            raise GoError(f"time: invalid duration {go_quote(orig)}")
        end = 0
        while end < len(s) and s[end] != "." and not (s[end].isascii() and s[end].isdigit()):
            end += 1
        unit_name, s = s[:end], s[end:]
        if not unit_name:
            raise GoError(f"time: missing unit in duration {go_quote(orig)}")
        unit = _UNITS_NS.get(unit_name)
        if unit is None:
            raise GoError(f"time: unknown unit {go_quote(unit_name)} in duration {go_quote(orig)}")
        if whole > _INT64_MAX // unit:
            raise GoError(f"time: invalid duration {go_quote(orig)}")
        value = whole * unit
        if frac:
            value += int(float(frac) * (float(unit) / scale))
            if value > _INT64_MAX:
                raise GoError(f"time: invalid duration {go_quote(orig)}")
        total += value
        if total > _INT64_MAX:
            raise GoError(f"time: invalid duration {go_quote(orig)}")
    return -total if neg else total


def parse_duration(s: str) -> int:
    """Temporal's duration syntax: Go's plus ``d`` for exactly 24 hours. Nanoseconds."""

    def days_to_hours(m: re.Match[str]) -> str:
        return "%fh" % (24 * float(m.group()[:-1]))

    return _parse_go_duration(_DAYS.sub(days_to_hours, s))


def load_timezone(name: str, data: bytes = b"") -> tzinfo:
    """``time.LoadLocation`` (or ``LoadLocationFromTZData`` when ``data`` is given), with Go's error texts.

    ``Local`` means the server's local zone in Go; a server's schedules must not depend on the host, so it is UTC.
    """
    if data:
        try:
            return ZoneInfo.from_file(io.BytesIO(data), key=name)
        except (ValueError, OSError) as err:
            raise GoError("malformed time zone information") from err
    if name in ("", "UTC", "Local"):
        return UTC
    if ".." in name or name.startswith(("/", "\\")):
        raise GoError("time: invalid location name")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as err:
        raise GoError(f"unknown time zone {name}") from err


def offset_at(unix: int, tz: tzinfo) -> int:
    """The zone's UTC offset (seconds) in force at the instant ``unix``."""
    if tz is UTC:
        return 0
    offset = datetime.fromtimestamp(unix, UTC).astimezone(tz).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def go_date(tz: tzinfo, year: int, month: int, day: int, hour: int, minute: int = 0, second: int = 0) -> int:
    """``time.Date(...).Unix()``: out-of-range day/hour/minute/second carry over, and a wall time that a DST
    change skipped or repeated resolves the way Go does (Go looks up the offset at the wall time read as UTC,
    then re-checks it at the resulting instant)."""
    naive = datetime(year, month, 1) + timedelta(days=day - 1, hours=hour, minutes=minute, seconds=second)
    local = (naive - _EPOCH_NAIVE) // timedelta(seconds=1)
    if tz is UTC:
        return local
    return local - offset_at(local - offset_at(local, tz), tz)


def wall(unix: int, tz: tzinfo) -> datetime:
    """The wall-clock reading of ``unix`` in ``tz`` (``t.In(tz)``)."""
    return datetime.fromtimestamp(unix, UTC).astimezone(tz)


def go_weekday(dt: datetime) -> int:
    """Go's weekday numbering: Sunday is 0."""
    return (dt.weekday() + 1) % 7
