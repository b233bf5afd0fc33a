"""Protobuf durations from clients: validated and capped the way Temporal does it, so no conversion can overflow.

Temporal rejects a duration whose seconds and nanos have different signs or that is negative, and silently caps
anything longer than 100 years (its Go ``time.Duration`` holds ~292 years; 100 leaves room to add it to a date).
``from_duration`` saturates at the same cap, so even a value that bypassed validation cannot raise.
"""

from __future__ import annotations

from datetime import timedelta

from google.protobuf import duration_pb2

MAX_SECONDS = 100 * 365 * 24 * 3600
MAX_DURATION = timedelta(seconds=MAX_SECONDS)


def validate_and_cap(d: duration_pb2.Duration) -> str | None:
    """The reason ``d`` is invalid, or None after capping it in place at 100 years."""
    if (d.seconds > 0 and d.nanos < 0) or (d.seconds < 0 and d.nanos > 0):
        return "duration has seconds and nanos with different signs"
    if d.seconds < 0 or d.nanos < 0:
        return "negative duration"
    if d.seconds >= MAX_SECONDS:
        d.seconds, d.nanos = MAX_SECONDS, 0
    return None


def from_duration(d: duration_pb2.Duration) -> timedelta:
    """``Duration`` -> ``timedelta``, saturating at +/-100 years (never OverflowError)."""
    seconds = d.seconds
    if -MAX_SECONDS < seconds < MAX_SECONDS:
        return timedelta(seconds=seconds, microseconds=d.nanos // 1000)
    return MAX_DURATION if seconds > 0 else -MAX_DURATION
