"""PauseActivity, UnpauseActivity, ResetActivity: operator control of a workflow's pending activities.

A pause only marks the activity: a running attempt keeps running until it learns of the pause through its next
heartbeat (``activity_paused``) and reports back; a paused activity gets no new attempt until it is unpaused.
A reset puts the attempt count back to 1; a running attempt learns of it through ``activity_reset``. Each call
is one transaction on the run's mutable state (no history events), as Temporal does it.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import datetime, timedelta

from temporalio.api.enums.v1 import workflow_pb2 as wf_enums
from temporalio.api.workflow.v1 import message_pb2 as workflow_pb2
from temporalio.api.workflowservice.v1 import request_response_pb2 as ws

from server.common.errors import FailedPrecondition, InvalidArgument, NotFound
from server.gen.durata.internal.history.v1 import state_pb2

from ..api_workflow import resolve_run_id
from ..engine import Engine
from ..mutable_state import MutableState, T, from_dur, to_ts
from . import workflow_pause

# Temporal's texts (consts.ErrActivityNotFound, consts.ErrWorkflowCompleted, frontend errors).
ACTIVITY_NOT_FOUND = "Can't find pending activity with such ID. Invalid activityID or activity already completed"
WORKFLOW_COMPLETED = "workflow execution already completed"
ID_OR_TYPE_NOT_SET = "Either Activity.Id or Activity.Type should be set on request."
WORKFLOW_ID_NOT_SET = "WorkflowId is not set on request."

ActivityRequest = ws.PauseActivityRequest | ws.UnpauseActivityRequest | ws.ResetActivityRequest | ws.UpdateActivityOptionsRequest
PA = wf_enums.PendingActivityState


def validate_activity_request(req: ActivityRequest) -> None:
    """The frontend checks Temporal makes before calling History."""
    if not req.execution.workflow_id:
        raise InvalidArgument(WORKFLOW_ID_NOT_SET)
    if req.WhichOneof("activity") is None:
        raise InvalidArgument(ID_OR_TYPE_NOT_SET)


def _targets(ms: MutableState, req: ActivityRequest) -> list[state_pb2.ActivityInfo]:
    """The pending activities the request names (by id, by type, or all); NOT_FOUND if none."""
    which = req.WhichOneof("activity")
    pending = sorted(ms.record.activities.values(), key=lambda a: a.scheduled_event_id)
    if which == "id":
        found = [a for a in pending if a.activity_id == req.id]
    elif which == "type":
        found = [a for a in pending if a.activity_type == req.type]
    else:  # unpause_all / match_all
        found = pending
    if not found:
        raise NotFound(ACTIVITY_NOT_FOUND)
    return found


def _jitter(req: ws.UnpauseActivityRequest | ws.ResetActivityRequest) -> timedelta:
    j = from_dur(req.jitter) if req.HasField("jitter") else timedelta(0)
    if j < timedelta(0):
        raise InvalidArgument("Jitter cannot be negative.")
    return j


def _reschedule(ms: MutableState, info: state_pb2.ActivityInfo, jitter: timedelta, at: datetime | None = None) -> None:
    """A new attempt for an activity that is not running: a retry timer (``at`` or now, plus a random part of the
    jitter) that dispatches it; the stamp bump invalidates any task of the previous schedule."""
    offset = timedelta(microseconds=random.randrange(max(1, int(jitter / timedelta(microseconds=1))))) if jitter else timedelta(0)
    info.stamp = ms.next_stamp()
    when = (at or ms.now) + offset
    info.current_attempt_scheduled_time.CopyFrom(to_ts(when))
    ms.add_timer_task(
        T.HISTORY_TASK_TYPE_ACTIVITY_RETRY_TIMER, when, event_id=info.scheduled_event_id, attempt=info.attempt, stamp=info.stamp
    )


def _clear_pause(info: state_pb2.ActivityInfo) -> None:
    info.paused = False
    for f in ("pause_time", "pause_identity", "pause_reason", "pause_request_id"):
        info.ClearField(f)


def _clear_heartbeat(info: state_pb2.ActivityInfo) -> None:
    info.ClearField("heartbeat_details")
    info.ClearField("last_heartbeat_time")


def pause(ms: MutableState, req: ws.PauseActivityRequest) -> None:
    if not ms.running:
        raise NotFound(WORKFLOW_COMPLETED)
    for info in _targets(ms, req):
        if info.paused:
            if info.pause_request_id == req.request_id:
                continue  # a retried request
            raise FailedPrecondition("activity is already paused")
        if not info.started:
            info.stamp = ms.next_stamp()  # the queued dispatch / retry timer no longer applies
        info.paused = True
        info.pause_time.CopyFrom(to_ts(ms.now))
        info.pause_identity = req.identity
        info.pause_reason = req.reason
        info.pause_request_id = req.request_id
    workflow_pause.refresh_pause_visibility(ms)  # TemporalPauseInfo lists paused activity types


def unpause(ms: MutableState, req: ws.UnpauseActivityRequest) -> None:
    if not ms.running:
        raise NotFound(WORKFLOW_COMPLETED)
    jitter = _jitter(req)
    for info in _targets(ms, req):
        if not info.paused:
            continue
        _clear_pause(info)
        if req.reset_attempts:
            info.attempt = 1
        if req.reset_heartbeat:
            _clear_heartbeat(info)
        if not info.started:
            _reschedule(ms, info, jitter)
    workflow_pause.refresh_pause_visibility(ms)


def reset(ms: MutableState, req: ws.ResetActivityRequest, scheduled: Mapping[int, object] | None = None) -> None:
    """``restore_original_options``: ``scheduled`` holds each target's ActivityTaskScheduled attributes (read by
    ``reset_activity``), whose options replace those UpdateActivityOptions set."""
    if not ms.running:
        raise NotFound(WORKFLOW_COMPLETED)
    jitter = _jitter(req)
    for info in _targets(ms, req):
        if scheduled is not None:
            from .activity_options import apply_original

            apply_original(ms, info, scheduled[info.scheduled_event_id])  # type: ignore[arg-type]
        info.attempt = 1
        info.activity_reset = True
        if req.reset_heartbeat:
            info.reset_heartbeats = True
        if info.paused and not req.keep_paused:
            _clear_pause(info)
        if info.started:
            continue  # the running attempt hears of it by heartbeat; the next attempt applies it
        # No attempt runs: the reset applies to the next one now (Temporal keeps the flags until a retry,
        # so its next attempt would be told "reset" once more).
        if req.reset_heartbeat:
            _clear_heartbeat(info)
        info.activity_reset = info.reset_heartbeats = False
        if not info.paused:
            _reschedule(ms, info, jitter)
    workflow_pause.refresh_pause_visibility(ms)


async def _update(engine: Engine, namespace_id: str, req: ActivityRequest, fn: object) -> None:
    shard = engine.shard(namespace_id, req.execution.workflow_id)
    run_id = await resolve_run_id(engine, shard, namespace_id, req.execution)
    await shard.update_run(namespace_id, req.execution.workflow_id, run_id, lambda ms: fn(ms, req))  # type: ignore[operator]


async def pause_activity(engine: Engine, namespace_id: str, req: ws.PauseActivityRequest) -> None:
    await _update(engine, namespace_id, req, pause)


async def unpause_activity(engine: Engine, namespace_id: str, req: ws.UnpauseActivityRequest) -> None:
    await _update(engine, namespace_id, req, unpause)


async def reset_activity(engine: Engine, namespace_id: str, req: ws.ResetActivityRequest) -> None:
    if not req.restore_original_options:
        await _update(engine, namespace_id, req, reset)
        return
    from .activity_options import locked_with_scheduled_events

    def targets(ms: MutableState) -> list[state_pb2.ActivityInfo]:
        if not ms.running:
            raise NotFound(WORKFLOW_COMPLETED)
        return _targets(ms, req)

    await locked_with_scheduled_events(engine, namespace_id, req.execution, targets, lambda ms, sch: reset(ms, req, sch))


def describe_pause(info: state_pb2.ActivityInfo, pa: workflow_pb2.PendingActivityInfo) -> None:
    """Describe: a paused activity is PAUSED when no attempt runs, PAUSE_REQUESTED while one still does."""
    if not info.paused:
        return
    pa.paused = True
    if pa.state == PA.PENDING_ACTIVITY_STATE_SCHEDULED:
        pa.state = PA.PENDING_ACTIVITY_STATE_PAUSED
    elif pa.state == PA.PENDING_ACTIVITY_STATE_STARTED:
        pa.state = PA.PENDING_ACTIVITY_STATE_PAUSE_REQUESTED
    pa.pause_info.pause_time.CopyFrom(info.pause_time)
    pa.pause_info.manual.identity = info.pause_identity
    pa.pause_info.manual.reason = info.pause_reason
