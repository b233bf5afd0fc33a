"""Small builders shared by the schedule spec tests."""

from __future__ import annotations

import importlib.resources
import zoneinfo
from datetime import UTC, datetime, timedelta
from pathlib import Path

from google.protobuf import duration_pb2, timestamp_pb2
from temporalio.api.schedule.v1 import message_pb2 as sched

from services.internal_worker.schedules import CompiledSpec, compile_spec


def R(start: int, end: int = 0, step: int = 0) -> sched.Range:  # noqa: N802 - reads like the proto
    return sched.Range(start=start, end=end, step=step)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[arg-type,misc]


def dur(seconds: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromTimedelta(timedelta(seconds=seconds))
    return d


def ts(dt: datetime) -> timestamp_pb2.Timestamp:
    t = timestamp_pb2.Timestamp()
    t.FromDatetime(dt)
    return t


def cron(*strings: str, **fields: object) -> sched.ScheduleSpec:
    return sched.ScheduleSpec(cron_string=list(strings), **fields)  # type: ignore[arg-type]


def calendar(**fields: str) -> sched.ScheduleSpec:
    return sched.ScheduleSpec(calendar=[sched.CalendarSpec(**fields)])


def nominals(spec: sched.ScheduleSpec | CompiledSpec, after: datetime, count: int) -> list[datetime]:
    """The next ``count`` nominal times after ``after``, each search resuming at the previous result."""
    compiled = spec if isinstance(spec, CompiledSpec) else compile_spec(spec)
    out: list[datetime] = []
    for _ in range(count):
        found = compiled.next_time(after)
        if found is None:
            break
        out.append(found)
        after = found
    return out


def tzif_bytes(key: str) -> bytes:
    """The raw TZif data of a zone, from the system database or the tzdata package (as zoneinfo finds it)."""
    for root in zoneinfo.TZPATH:
        path = Path(root) / key
        if path.is_file():
            return path.read_bytes()
    package, _, name = f"tzdata.zoneinfo.{key}".replace("/", ".").rpartition(".")
    return importlib.resources.files(package).joinpath(name).read_bytes()
