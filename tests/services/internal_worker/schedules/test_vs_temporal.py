"""The spec engine against a real Temporal dev server: matching times (jitter included), canonical forms and
error texts must be identical.

For each spec a paused schedule is created on the real server; ListScheduleMatchingTimes there is compared with
``matching_times`` here, seeded as Temporal seeds it (``<namespace id>-<schedule id>``), and DescribeSchedule's
spec with ``describe_form(canonicalize(spec))``. Skipped when the ``temporal`` binary is not installed.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.api.common.v1 import message_pb2 as common
from temporalio.api.schedule.v1 import message_pb2 as sched
from temporalio.api.taskqueue.v1 import message_pb2 as taskqueue
from temporalio.api.workflow.v1 import message_pb2 as workflow
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv
from temporalio.client import Client
from temporalio.service import RPCError

from server.common.errors import InvalidArgument
from services.internal_worker.schedules import canonicalize, compile_spec, describe_form, jitter_seed

from .helpers import R, calendar, cron, dur, ts, tzif_bytes, utc
from .test_canonical import BAD

pytestmark = pytest.mark.e2e


def _temporal_cli() -> str | None:
    beside = Path(sys.executable).parent / "temporal"
    return str(beside) if beside.exists() else shutil.which("temporal")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def temporal_target() -> Iterator[str]:
    cli = _temporal_cli()
    if cli is None:
        pytest.skip("the temporal CLI (dev server) is not installed")
    tmp = tempfile.mkdtemp(prefix="durata-sched-")
    port = _free_port()
    cmd = [
        cli,
        "server",
        "start-dev",
        "--headless",
        "--port",
        str(port),
        "--ui-port",
        str(_free_port()),
        "--http-port",
        str(_free_port()),
        "--metrics-port",
        str(_free_port()),
        "--db-filename",
        f"{tmp}/temporal.db",
        "--log-level",
        "error",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        shutil.rmtree(tmp, ignore_errors=True)


@dataclass
class Temporal:
    client: Client
    namespace_id: str

    async def create(self, spec: sched.ScheduleSpec) -> str:
        schedule_id = f"spec-{uuid.uuid4().hex[:10]}"
        action = sched.ScheduleAction(
            start_workflow=workflow.NewWorkflowExecutionInfo(
                workflow_id=f"wf-{schedule_id}",
                workflow_type=common.WorkflowType(name="Nothing"),
                task_queue=taskqueue.TaskQueue(name="nowhere"),
            )
        )
        schedule = sched.Schedule(spec=spec, action=action, state=sched.ScheduleState(paused=True))
        await self.client.workflow_service.create_schedule(
            wsv.CreateScheduleRequest(
                namespace="default", schedule_id=schedule_id, schedule=schedule, request_id=str(uuid.uuid4())
            )
        )
        return schedule_id


@pytest.fixture
async def temporal(temporal_target: str) -> AsyncIterator[Temporal]:
    deadline = time.monotonic() + 60
    while True:  # the dev server answers once its frontend and default namespace are up
        try:
            client = await Client.connect(temporal_target)
            ns = await client.workflow_service.describe_namespace(
                wsv.DescribeNamespaceRequest(namespace="default")
            )
            break
        except (RuntimeError, RPCError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
    yield Temporal(client, ns.namespace_info.id)


def _with(spec: sched.ScheduleSpec, **fields: object) -> sched.ScheduleSpec:
    out = sched.ScheduleSpec()
    out.CopyFrom(spec)
    for name, value in fields.items():
        if isinstance(value, list):
            getattr(out, name).extend(value)
        elif hasattr(value, "CopyFrom"):
            getattr(out, name).CopyFrom(value)
        else:
            setattr(out, name, value)
    return out


MARCH = (utc(2026, 3, 1), utc(2026, 3, 20))
AUTUMN = (utc(2026, 10, 20), utc(2026, 11, 5))
CASES: dict[str, tuple[sched.ScheduleSpec, tuple[datetime, datetime]]] = {
    "weekday noon": (cron("0 12 * * MON-FRI"), MARCH),
    "ny spring-forward gap": (cron("CRON_TZ=America/New_York 30 2 * * *"), MARCH),
    "ny hourly through the gap": (cron("CRON_TZ=America/New_York 30 * 8 3 *"), MARCH),
    "ny fall-back repeat": (cron("CRON_TZ=America/New_York 30,45 1 * * *"), AUTUMN),
    "berlin fall-back": (cron("TZ=Europe/Berlin 30 1,2 * * *"), AUTUMN),
    "berlin 2:30": (cron("CRON_TZ=Europe/Berlin 30 2 * * *"), AUTUMN),
    "every with phase": (cron("@every 90m/15m"), (utc(2026, 3, 1), utc(2026, 3, 4))),
    "shorthands": (cron("@daily # midnight", "@weekly", "@monthly"), (utc(2026, 1, 1), utc(2026, 6, 1))),
    "calendar string ranges": (calendar(hour="9-17/2", minute="15,45", day_of_week="mon-fri"), MARCH),
    "friday the 13th": (cron("0 0 13 * fri"), (utc(2026, 1, 1), utc(2028, 12, 31))),
    "sunday as 7": (calendar(hour="12", day_of_week="1-7"), MARCH),
    "sunday range": (calendar(hour="12", day_of_week="5-7"), MARCH),
    "month names and leap day": (
        calendar(day_of_month="29", month="feb,Jul"),
        (utc(2026, 1, 1), utc(2032, 12, 31)),
    ),
    "seconds and year": (cron("*/20 0 12 1 * * 2026"), (utc(2026, 1, 1), utc(2027, 1, 1))),
    "interval phase jitter": (
        sched.ScheduleSpec(
            interval=[sched.IntervalSpec(interval=dur(3600), phase=dur(17 * 60))], jitter=dur(1800)
        ),
        MARCH,
    ),
    "calendar jitter capped": (
        _with(cron("*/10 * * * *"), jitter=dur(3600)),
        (utc(2026, 3, 1), utc(2026, 3, 2)),
    ),
    "bounds": (
        _with(cron("@hourly"), start_time=ts(utc(2026, 3, 2, 5)), end_time=ts(utc(2026, 3, 3, 7, 30))),
        MARCH,
    ),
    "exclusions": (
        _with(
            cron("0 * * * *"),
            exclude_calendar=[
                sched.CalendarSpec(hour="12-13"),
                sched.CalendarSpec(hour="*", day_of_week="sat,sun"),
            ],
        ),
        (utc(2026, 3, 5), utc(2026, 3, 10)),
    ),
    "structured with zone": (
        sched.ScheduleSpec(
            structured_calendar=[
                sched.StructuredCalendarSpec(
                    second=[R(0)],
                    minute=[R(30)],
                    hour=[R(9, 18, 3)],
                    day_of_month=[R(1, 31)],
                    month=[R(1, 12)],
                    day_of_week=[R(1, 5)],
                )
            ],
            exclude_structured_calendar=[
                sched.StructuredCalendarSpec(
                    second=[R(0)],
                    minute=[R(30)],
                    hour=[R(12)],
                    day_of_month=[R(1, 31)],
                    month=[R(1, 12)],
                    day_of_week=[R(0, 6)],
                )
            ],
            timezone_name="Asia/Kolkata",
        ),
        MARCH,
    ),
    "time zone data": (
        cron(
            "30 1,2 * * *",
            timezone_name="Custom/Zone",
            timezone_data=tzif_bytes("America/New_York"),
        ),
        AUTUMN,
    ),
    "union": (
        sched.ScheduleSpec(
            cron_string=["0 12 * * *"],
            calendar=[sched.CalendarSpec(hour="6", minute="30")],
            interval=[sched.IntervalSpec(interval=dur(8 * 3600), phase=dur(3600))],
            jitter=dur(600),
        ),
        MARCH,
    ),
}


@pytest.mark.parametrize("name", list(CASES))
async def test_matching_times_and_canonical_form_equal_temporals(temporal: Temporal, name: str) -> None:
    spec, (start, end) = CASES[name]
    schedule_id = await temporal.create(spec)
    service = temporal.client.workflow_service
    listed = await service.list_schedule_matching_times(
        wsv.ListScheduleMatchingTimesRequest(
            namespace="default", schedule_id=schedule_id, start_time=ts(start), end_time=ts(end)
        )
    )
    theirs = [t.ToDatetime(UTC) for t in listed.start_time]
    ours = compile_spec(spec, jitter_seed(temporal.namespace_id, schedule_id)).matching_times(start, end)
    assert theirs, "a case that lists nothing compares nothing"
    assert ours == theirs

    described = await service.describe_schedule(
        wsv.DescribeScheduleRequest(namespace="default", schedule_id=schedule_id)
    )
    assert describe_form(canonicalize(spec)) == described.schedule.spec


@pytest.mark.parametrize(("spec", "message"), BAD, ids=[m for _, m in BAD])
async def test_errors_equal_temporals(temporal: Temporal, spec: sched.ScheduleSpec, message: str) -> None:
    with pytest.raises(RPCError) as theirs:
        await temporal.create(spec)
    with pytest.raises(InvalidArgument) as ours:
        canonicalize(spec)
    assert theirs.value.status.name == ours.value.code.name == "INVALID_ARGUMENT"
    assert ours.value.message == theirs.value.message


async def test_malformed_duration_error_equals_temporals(temporal: Temporal) -> None:
    spec = sched.ScheduleSpec(interval=[sched.IntervalSpec(interval=dur(60))])
    spec.interval[0].interval.nanos = -1
    with pytest.raises(RPCError) as theirs:
        await temporal.create(spec)
    with pytest.raises(InvalidArgument) as ours:
        canonicalize(spec)
    assert ours.value.message == theirs.value.message
