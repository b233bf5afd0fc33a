"""PauseWorkflowExecution / UnpauseWorkflowExecution: an operator holds a whole run back, then lets it go on.

While a run is paused (status WORKFLOW_EXECUTION_STATUS_PAUSED, ``MutableState.pause_info`` set) nothing of it is
handed to a worker: no workflow task is scheduled (``MutableState.schedule_workflow_task`` is a no-op), and no
activity attempt is dispatched (attempts that are not running get a new stamp, so their queued dispatches and
timers no longer apply; retry timers and transfer tasks that fire anyway are dropped by the task handlers). What
is already running is left alone: a started workflow task may still complete or fail (its follow-up task waits
for the unpause), a running activity attempt may still heartbeat and complete. Signals, cancel requests, timers
and child results are recorded as usual and delivered after the unpause; updates are refused, queries rejected.
Run and execution timeouts still apply, terminate and reset still work.

Pause writes WorkflowExecutionPaused (buffered while a workflow task is started, like a signal) after failing a
workflow task that was scheduled but not yet started (cause WORKFLOW_PAUSE_REQUESTED_BEFORE_TASK_STARTED).
Unpause writes WorkflowExecutionUnpaused, re-dispatches every pending activity that is not running and schedules
a workflow task. Both events are marked ``worker_may_ignore``. Each call is one transaction, as Temporal does it.
"""

from __future__ import annotations

import json
import uuid

from temporalio.api.common.v1 import message_pb2 as common_pb2
from temporalio.api.enums.v1 import failed_cause_pb2 as fc
from temporalio.api.enums.v1 import workflow_pb2 as wf_enums
from temporalio.api.history.v1 import message_pb2 as history_pb2
from temporalio.api.workflowservice.v1 import request_response_pb2 as ws

from server.common.errors import FailedPrecondition, InvalidArgument, NotFound
from server.gen.durata.internal.history.v1 import state_pb2
from server.persistence.interface import TaskCategory

from ..api_workflow import resolve_run_id
from ..engine import Engine
from ..mutable_state import MutableState, T, from_ts, to_ts

PAUSED = wf_enums.WORKFLOW_EXECUTION_STATUS_PAUSED
RUNNING = wf_enums.WORKFLOW_EXECUTION_STATUS_RUNNING

# Temporal's texts (pauseworkflow/unpauseworkflow, consts, workflow cache, updateworkflow, RespondWorkflowTaskCompleted).
WORKFLOW_COMPLETED = "workflow execution already completed"
ALREADY_PAUSED = "workflow is already paused."
NOT_PAUSED = "workflow is not paused."
UPDATE_WHILE_PAUSED = "Workflow is paused. Cannot update the workflow."
FORCE_WFT_WHILE_PAUSED = "Workflow is paused and force create new workflow task is not allowed."
WORKFLOW_ID_NOT_SET = "Can't load workflow execution.  WorkflowId not set."
RUN_ID_NOT_UUID = "RunId is not valid UUID."
HISTORY_SERVICE_IDENTITY = "history-service"
PAUSE_INFO_ATTRIBUTE = "TemporalPauseInfo"

PauseRequest = ws.PauseWorkflowExecutionRequest | ws.UnpauseWorkflowExecutionRequest


def is_paused(ms: MutableState) -> bool:
    return ms.paused


def validate_request(req: PauseRequest, max_id_length: int) -> None:
    """Temporal's checks of both requests (reason, request id, identity, then the execution), with its texts."""
    validate_lengths(req, max_id_length)
    validate_execution(req)


def validate_lengths(req: PauseRequest, max_id_length: int) -> None:
    if len(req.reason) > max_id_length:
        raise InvalidArgument("reason is too long.")
    if len(req.request_id) > max_id_length:
        raise InvalidArgument("request id is too long.")
    if len(req.identity) > max_id_length:
        raise InvalidArgument("identity is too long.")


def validate_execution(req: PauseRequest) -> None:
    """Temporal makes these checks when it loads the run (after the namespace lookup)."""
    if not req.workflow_id:
        raise InvalidArgument(WORKFLOW_ID_NOT_SET)
    if req.run_id:
        try:
            uuid.UUID(req.run_id)
        except ValueError:
            raise InvalidArgument(RUN_ID_NOT_UUID) from None


# ---------------------------------------------------------------- sans-IO state changes


def pause(ms: MutableState, req: ws.PauseWorkflowExecutionRequest) -> None:
    r = ms.record
    if not ms.running:
        raise NotFound(WORKFLOW_COMPLETED)
    if r.status == PAUSED:
        if r.pause_info.request_id and r.pause_info.request_id == req.request_id:
            return  # the same request again: nothing to do
        raise FailedPrecondition(ALREADY_PAUSED)
    if ms.wft_scheduled and not ms.wft_started:
        # Nothing else would ever resolve a task no worker has started; handing it out now would break the pause.
        ms.fail_workflow_task(
            fc.WORKFLOW_TASK_FAILED_CAUSE_WORKFLOW_PAUSE_REQUESTED_BEFORE_TASK_STARTED, None, HISTORY_SERVICE_IDENTITY,
            schedule_next=False,
        )
    r.status = PAUSED
    r.pause_info.CopyFrom(
        state_pb2.WorkflowPauseInfo(
            pause_time=to_ts(ms.now), identity=req.identity, reason=req.reason, request_id=req.request_id
        )
    )
    _write_event(ms, history_pb2.WorkflowExecutionPausedEventAttributes(
        identity=req.identity, reason=req.reason, request_id=req.request_id
    ))
    hold_activities(ms)
    refresh_pause_visibility(ms)


def unpause(ms: MutableState, req: ws.UnpauseWorkflowExecutionRequest) -> None:
    r = ms.record
    if not ms.running:
        raise NotFound(WORKFLOW_COMPLETED)
    if r.status != PAUSED:
        raise FailedPrecondition(NOT_PAUSED)
    r.status = RUNNING
    r.ClearField("pause_info")
    _write_event(ms, history_pb2.WorkflowExecutionUnpausedEventAttributes(
        identity=req.identity, reason=req.reason, request_id=req.request_id
    ))
    for info in _waiting_activities(ms):
        # A new stamp (whatever was queued before is stale) and a retry timer that dispatches the attempt when it
        # is due: now, or at the end of a retry backoff that is still running.
        info.stamp = ms.next_stamp()
        when = max(ms.now, from_ts(info.current_attempt_scheduled_time))
        ms.add_timer_task(
            T.HISTORY_TASK_TYPE_ACTIVITY_RETRY_TIMER, when, event_id=info.scheduled_event_id, attempt=info.attempt,
            stamp=info.stamp,
        )
    ms.ensure_workflow_task()
    refresh_pause_visibility(ms)


def hold_activities(ms: MutableState) -> None:
    """Invalidate every queued dispatch of the attempts that are not running (a new stamp), without marking the
    activities paused; running attempts keep their stamp, so their heartbeats and results are still accepted."""
    for info in _waiting_activities(ms):
        info.stamp = ms.next_stamp()
    ms.dirty = True


def _waiting_activities(ms: MutableState) -> list[state_pb2.ActivityInfo]:
    """Pending activities whose next attempt waits to be dispatched (not running, not paused on their own)."""
    acts = sorted(ms.record.activities.values(), key=lambda a: a.scheduled_event_id)
    return [a for a in acts if not a.started and not a.paused]


def _write_event(ms: MutableState, attributes: history_pb2.WorkflowExecutionPausedEventAttributes
                 | history_pb2.WorkflowExecutionUnpausedEventAttributes) -> None:
    """Written now, or buffered behind a started workflow task; older SDKs may skip it (worker_may_ignore)."""
    ev = ms.append_or_buffer(attributes)
    if ev is None:
        ms.record.buffered_events[-1].worker_may_ignore = True
        return
    before = ev.ByteSize()
    ev.worker_may_ignore = True
    ms.record.history_size_bytes += ev.ByteSize() - before


def pause_info_entries(ms: MutableState) -> list[str]:
    """The TemporalPauseInfo keyword list: the paused workflow (and its reason), then paused activity types."""
    r = ms.record
    entries: list[str] = []
    if r.HasField("pause_info") and r.status == PAUSED:
        entries.append(f"Workflow:{r.workflow_id}")
        if r.pause_info.reason:
            entries.append(f"Reason:{r.pause_info.reason}")
    for activity_type in sorted({a.activity_type for a in r.activities.values() if a.paused}):
        entries.append(f"property:activityType={activity_type}")
    return entries


def update_pause_info_search_attribute(ms: MutableState) -> None:
    fields = ms.record.search_attributes.indexed_fields
    entries = pause_info_entries(ms)
    if not entries:
        if PAUSE_INFO_ATTRIBUTE in fields:
            del fields[PAUSE_INFO_ATTRIBUTE]
        return
    fields[PAUSE_INFO_ATTRIBUTE].CopyFrom(
        common_pb2.Payload(
            metadata={"encoding": b"json/plain", "type": b"KeywordList"},
            data=json.dumps(entries, separators=(",", ":")).encode(),
        )
    )


def refresh_pause_visibility(ms: MutableState) -> None:
    """TemporalPauseInfo recomputed and visibility told: after a workflow or an activity pause changes."""
    update_pause_info_search_attribute(ms)
    ms.add_task(TaskCategory.VISIBILITY, T.HISTORY_TASK_TYPE_VISIBILITY_UPSERT)
    ms.dirty = True


# ---------------------------------------------------------------- checks used by other paths


def check_update_allowed(ms: MutableState) -> None:
    """UpdateWorkflowExecution on a paused run is refused (FAILED_PRECONDITION)."""
    if is_paused(ms):
        raise FailedPrecondition(UPDATE_WHILE_PAUSED)


def check_completion_allowed(ms: MutableState, req: ws.RespondWorkflowTaskCompletedRequest) -> None:
    """A completion of the started task is accepted while paused, but it may not ask for a new workflow task."""
    if is_paused(ms) and req.force_create_new_workflow_task:
        raise FailedPrecondition(FORCE_WFT_WHILE_PAUSED)


def describe_pause(ms: MutableState, resp: ws.DescribeWorkflowExecutionResponse) -> None:
    r = ms.record
    if not r.HasField("pause_info"):
        return
    info = resp.workflow_extended_info.pause_info
    info.paused_time.CopyFrom(r.pause_info.pause_time)
    info.identity = r.pause_info.identity
    info.reason = r.pause_info.reason


# ---------------------------------------------------------------- RPCs


async def _update(engine: Engine, namespace_id: str, req: PauseRequest, fn: object) -> None:
    execution = common_pb2.WorkflowExecution(workflow_id=req.workflow_id, run_id=req.run_id)
    shard = engine.shard(namespace_id, req.workflow_id)
    try:
        run_id = await resolve_run_id(engine, shard, namespace_id, execution)
    except NotFound:
        raise NotFound(f"workflow not found for ID: {req.workflow_id}") from None  # Temporal's text
    if await shard.load(namespace_id, req.workflow_id, run_id) is None:
        raise NotFound(f'workflow execution not found for workflow ID "{req.workflow_id}" and run ID "{run_id}"')
    await shard.update_run(namespace_id, req.workflow_id, run_id, lambda ms: fn(ms, req))  # type: ignore[operator]


async def pause_workflow(engine: Engine, namespace_id: str, req: ws.PauseWorkflowExecutionRequest) -> None:
    await _update(engine, namespace_id, req, pause)


async def unpause_workflow(engine: Engine, namespace_id: str, req: ws.UnpauseWorkflowExecutionRequest) -> None:
    await _update(engine, namespace_id, req, unpause)
