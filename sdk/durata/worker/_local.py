"""Local activities: run inside the worker during the workflow task and recorded as ``core_local_activity`` markers.

Scheduling emits no command. When the workflow loop goes idle with local activities pending, the worker runs
them and feeds the outcomes back within the same workflow task; each outcome emits a RECORD_MARKER command
and resolves the awaiting future. On replay the outcomes come from the markers of the same workflow task,
applied at the same point (after the loop goes idle), so command order is identical. A local activity that runs
longer than 80% of the workflow task timeout is kept alive by workflow-task heartbeats (see _workflow_worker.py):
the commands so far are completed with a forced new workflow task, and the outcome lands in a later task.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from temporalio.api.command.v1 import message_pb2 as command_pb
from temporalio.api.common.v1 import message_pb2 as common_pb
from temporalio.api.enums.v1 import command_type_pb2 as ct
from temporalio.api.failure.v1 import message_pb2 as failure_pb
from temporalio.api.history.v1 import message_pb2 as history_pb

from .. import activity as act
from .. import exceptions as exc
from ..common import RetryPolicy
from ..failure import from_failure, to_failure
from ._loop import WorkflowLoop

if TYPE_CHECKING:
    from ..converter import DataConverter

LOCAL_ACTIVITY_MARKER = "core_local_activity"
C = ct.CommandType


@dataclasses.dataclass
class LocalActivity:
    seq: int
    activity_id: str
    activity_type: str
    args: list[common_pb.Payload]
    result_type: Any
    start_to_close: timedelta | None
    schedule_to_close: timedelta | None
    retry_policy: RetryPolicy | None
    fut: asyncio.Future[Any]


@dataclasses.dataclass
class LocalOutcome:
    result: common_pb.Payloads | None = None
    failure: failure_pb.Failure | None = None
    attempt: int = 1


def marker_outcome(ev: history_pb.HistoryEvent) -> tuple[int, LocalOutcome] | None:
    a = ev.marker_recorded_event_attributes
    if a.marker_name != LOCAL_ACTIVITY_MARKER:
        return None
    try:
        data = json.loads(a.details["data"].payloads[0].data)
    except Exception:
        return None
    out = LocalOutcome(attempt=int(data.get("attempt", 1)))
    if a.HasField("failure"):
        out.failure = a.failure
    else:
        out.result = a.details["result"] if "result" in a.details else common_pb.Payloads()
    return int(data["seq"]), out


class LocalActivityOps(WorkflowLoop):
    pending_local: dict[int, LocalActivity]

    def wf_start_local_activity(self, name: str, args: Sequence[Any], *, result_type: Any,
                                start_to_close_timeout: timedelta | None, schedule_to_close_timeout: timedelta | None,
                                retry_policy: RetryPolicy | None, activity_id: str | None) -> asyncio.Task[Any]:
        self._seq["local"] += 1
        la = LocalActivity(self._seq["local"], activity_id or str(self._seq["local"]), name,
                           self.converter.encode(list(args)), result_type, start_to_close_timeout,
                           schedule_to_close_timeout, retry_policy, self.create_future())
        self.pending_local[la.seq] = la

        async def run() -> Any:
            try:
                return await asyncio.shield(la.fut)
            except asyncio.CancelledError:
                if la.fut.done():
                    return la.fut.result()
                self.pending_local.pop(la.seq, None)
                la.fut.cancel()
                cancelled = exc.CancelledError("Local activity cancelled")
                raise self._local_error(la, cancelled) from cancelled

        return self.create_task(run())

    def _local_error(self, la: LocalActivity, cause: BaseException) -> exc.ActivityError:
        err = exc.ActivityError("Local activity failed", scheduled_event_id=0, started_event_id=0, identity="",
                                activity_type=la.activity_type, activity_id=la.activity_id, retry_state=None)
        err.__cause__ = cause
        return err

    def resolve_local(self, seq: int, outcome: LocalOutcome) -> None:
        """Record the marker and resolve the future (live: from execution; replay: from history)."""
        la = self.pending_local.pop(seq, None)
        if la is None:
            return
        c = command_pb.Command(command_type=C.COMMAND_TYPE_RECORD_MARKER)
        m = c.record_marker_command_attributes
        m.marker_name = LOCAL_ACTIVITY_MARKER
        m.details["data"].payloads.append(self.converter.payload_converter.to_payload(
            {"seq": seq, "attempt": outcome.attempt, "activity_id": la.activity_id,
             "activity_type": la.activity_type}))
        if outcome.failure is not None:
            m.failure.CopyFrom(outcome.failure)
            if not la.fut.done():
                la.fut.set_exception(self._local_error(la, from_failure(outcome.failure, self.converter)))
        else:
            m.details["result"].CopyFrom(outcome.result or common_pb.Payloads())
            if not la.fut.done():
                try:
                    la.fut.set_result(self.converter.decode_one(outcome.result, la.result_type))
                except Exception as err:
                    la.fut.set_exception(err)
        self._emit(c)

    def resolve_locals(self, outcomes: Mapping[int, LocalOutcome]) -> list[command_pb.Command]:
        """Feed finished local activities (in scheduling order), run the loop; returns all commands of this task."""
        for seq in sorted(outcomes):
            self.resolve_local(seq, outcomes[seq])
        return self.continue_live()

    def continue_live(self) -> list[command_pb.Command]:
        """Run the loop after local-activity outcomes were fed in; returns all commands of this task."""
        self._run()
        self._finish_activation()
        return [c.proto for c in self._unmatched]


async def execute_local(defn: act._Definition | None, la: LocalActivity, conv: DataConverter, info_base: dict[str, Any],
                        executor: Any) -> LocalOutcome:
    """Run one local activity with its retry policy (bounded by schedule-to-close)."""
    from ..workflow import _types_of

    policy = la.retry_policy or RetryPolicy()
    deadline = time.monotonic() + la.schedule_to_close.total_seconds() if la.schedule_to_close else None
    attempt = 0
    while True:
        attempt += 1
        try:
            if defn is None:
                raise exc.ApplicationError(f"Local activity {la.activity_type} is not registered on this worker",
                                           type="NotFoundError", non_retryable=True)
            args = conv.decode(la.args, _types_of(defn.fn)[0])
            info = act.Info(activity_id=la.activity_id, activity_type=la.activity_type, attempt=attempt,
                            heartbeat_details=[], heartbeat_timeout=None, is_local=True, task_token=b"",
                            schedule_to_close_timeout=la.schedule_to_close, start_to_close_timeout=la.start_to_close,
                            **info_base)
            ctx = act._Context(info, lambda _details: None)
            try:
                result = await _invoke(defn, args, ctx, la.start_to_close, executor)
            except act._CompleteAsyncError:
                raise exc.ApplicationError("Local activities cannot be completed asynchronously",
                                           type="CompleteAsyncError", non_retryable=True) from None
            return LocalOutcome(result=conv.encode_payloads([result]), attempt=attempt)
        except Exception as err:
            if isinstance(err, asyncio.TimeoutError):
                err = exc.TimeoutError("Local activity timed out", type=exc.TimeoutType.START_TO_CLOSE,
                                       last_heartbeat_details=[])
            retryable = not (isinstance(err, exc.ApplicationError) and (
                err.non_retryable or (err.type or "") in (policy.non_retryable_error_types or [])))
            delay = policy.initial_interval.total_seconds() * policy.backoff_coefficient ** (attempt - 1)
            if policy.maximum_interval:
                delay = min(delay, policy.maximum_interval.total_seconds())
            out_of_time = deadline is not None and time.monotonic() + delay > deadline
            if not retryable or out_of_time or (policy.maximum_attempts and attempt >= policy.maximum_attempts):
                return LocalOutcome(failure=to_failure(err, conv), attempt=attempt)
            await asyncio.sleep(delay)


async def _invoke(defn: act._Definition, args: list[Any], ctx: act._Context, limit: timedelta | None,
                  executor: Any) -> Any:
    import contextvars

    context = contextvars.copy_context()
    context.run(act._current.set, ctx)
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[Any]
    if defn.is_async:
        fut = loop.create_task(defn.fn(*args), context=context)
    else:
        fut = loop.run_in_executor(executor, lambda: context.run(defn.fn, *args))
    return await asyncio.wait_for(fut, limit.total_seconds() if limit else None)
