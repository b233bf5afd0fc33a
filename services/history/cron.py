"""Cron schedules (reference 2.3, 5.4): parsing and the backoff to the next tick. Standard 5-field cron,
the ``@hourly``-style macros and ``@every <duration>`` (Go duration syntax, e.g. ``@every 1m30s``)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from croniter import croniter

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")


class CronError(ValueError):
    pass


def _every(spec: str) -> timedelta:
    text = spec.strip()
    pos = 0
    total = 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise CronError(f"Invalid CronSchedule: cannot parse duration {spec!r}.")
    if total < 1:
        raise CronError("Invalid CronSchedule: @every interval must be at least 1s.")
    return timedelta(seconds=int(total))  # robfig/cron rounds to whole seconds


def _split(schedule: str) -> tuple[str, timedelta | None]:
    s = schedule.strip()
    if s.startswith("CRON_TZ=") or s.startswith("TZ="):
        raise CronError("Invalid CronSchedule: time zones are not supported by this server.")
    if s.startswith("@every "):
        return s, _every(s[len("@every "):])
    return s, None


def validate(schedule: str) -> None:
    s, every = _split(schedule)
    if every is not None:
        return
    if len(s.split()) != 5 and not s.startswith("@"):
        raise CronError(f"Invalid CronSchedule: {schedule!r} is not a 5-field cron expression.")
    if not croniter.is_valid(s):
        raise CronError(f"Invalid CronSchedule: {schedule!r}.")


def next_backoff(schedule: str, now: datetime) -> timedelta:
    """Time from ``now`` to the next tick (strictly after ``now``)."""
    s, every = _split(schedule)
    if every is not None:
        return every
    nxt = croniter(s, now.replace(microsecond=0)).get_next(datetime)
    if nxt.tzinfo is None:
        nxt = nxt.replace(tzinfo=now.tzinfo)
    return max(nxt - now, timedelta(0))
