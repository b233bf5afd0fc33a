"""Workflow-task lifecycle (reference section 3): record started, complete, fail, time out."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio.api.common.v1 import message_pb2 as common_pb2
from temporalio.api.enums.v1 import failed_cause_pb2 as fc
from temporalio.api.enums.v1 import task_queue_pb2
from temporalio.api.enums.v1 import workflow_pb2 as wf_enums
from temporalio.api.failure.v1 import message_pb2 as failure_pb2
from temporalio.api.history.v1 import message_pb2 as history_pb2
from temporalio.api.update.v1 import message_pb2 as update_pb2
from temporalio.api.workflowservice.v1 import request_response_pb2 as ws

from server.gen.durata.internal.common.v1 import tokens_pb2
from server.gen.durata.internal.history.v1 import state_pb2

from . import build_id_search_attributes, reset_points
from .activities import CommandError, start_eager
from .api import workflow_pause
from .commands import CLOSE_COMMANDS, apply_commands
from .config import HistoryConfig
from .mutable_state import MutableState
from .updates import ProtocolContext, UpdateEffect

WFT_NOT_FOUND = "Workflow task not found."
# Temporal's history.discardSpeculativeWorkflowTaskMaximumEventsCount default.
DISCARD_SPECULATIVE_MAX_EVENTS = 10


@dataclass
class CompletionResult:
    """What a completion did; ``error`` is raised to the worker after the (failure) state is persisted."""

    error: CommandError | None = None
    new_wft_scheduled: bool = False
    closed: bool = False
    update_effects: list[UpdateEffect] = field(default_factory=list)
    # Discarded speculative WFT: the worker rolls back to this WFT started event (the response tells it).
    reset_history_event_id: int = 0
    # Activities started in this completion for the completing worker (request_eager_execution), with the
    # attributes of their scheduled events: the response hands them back as activity tasks.
    eager_activities: list[tuple[state_pb2.ActivityInfo, history_pb2.ActivityTaskScheduledEventAttributes]] = field(
        default_factory=list
    )


def token_matches_wft(ms: MutableState, token: tokens_pb2.TaskToken) -> bool:
    wt = ms.wft
    return (
        ms.running
        and wt.started_event_id != 0
        and wt.scheduled_event_id == token.scheduled_event_id
        and wt.started_event_id == token.started_event_id
        and wt.attempt == token.attempt
        and wt.stamp == token.stamp
    )


def complete_workflow_task(
    ms: MutableState,
    req: ws.RespondWorkflowTaskCompletedRequest,
    config: HistoryConfig | None = None,
    known_updates: dict[str, update_pb2.Request] | None = None,
    updates_waiting: bool = False,
) -> CompletionResult:
    """Apply a completion atomically: on a rejected command, discard everything and fail the WFT instead.
    ``known_updates``: requests of the run's in-flight updates; ``updates_waiting``: updates were admitted
    that no WFT delivered yet (they need a new WFT)."""
    workflow_pause.check_completion_allowed(ms, req)  # paused: no force_create_new_workflow_task
    snapshot = state_pb2.MutableState()
    snapshot.CopyFrom(ms.record)
    try:
        return _apply_completion(ms, req, config or HistoryConfig(), known_updates, updates_waiting)
    except CommandError as err:
        ms.record.CopyFrom(snapshot)
        ms.new_events.clear()
        ms.tasks.clear()
        ms.new_run = None
        ms.dirty = False
        if ms.wft.attempt > 1 and err.cause != fc.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND:
            # The same bad completion again: answer INVALID_ARGUMENT and let the task time out, which
            # spaces out the retries (2.5) instead of a tight fail/re-poll loop.
            return CompletionResult(error=err, new_wft_scheduled=True)
        failure = failure_pb2.Failure(message=err.message)
        failure.application_failure_info.SetInParent()
        ms.fail_workflow_task(err.cause, failure, req.identity)
        return CompletionResult(error=err, new_wft_scheduled=ms.wft_scheduled)


def _worker_version(req: ws.RespondWorkflowTaskCompletedRequest) -> common_pb2.WorkerVersionStamp | None:
    """The completing build, recorded where the SDKs read it on replay (``workflow.info`` build id): the stamp
    when the worker sends one, else the build id core puts in ``binary_checksum`` when the server does not
    advertise build-id versioning (Durata does not)."""
    if req.HasField("worker_version_stamp"):
        return req.worker_version_stamp
    return common_pb2.WorkerVersionStamp(build_id=req.binary_checksum) if req.binary_checksum else None


def _apply_completion(
    ms: MutableState,
    req: ws.RespondWorkflowTaskCompletedRequest,
    config: HistoryConfig,
    known_updates: dict[str, update_pb2.Request] | None,
    updates_waiting: bool,
) -> CompletionResult:
    r = ms.record
    closing = any(c.command_type in CLOSE_COMMANDS for c in req.commands)
    if closing and r.buffered_events:
        # New events arrived while the worker ran: it must see them before closing (2.5). Exact text matters.
        raise CommandError(fc.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND, "UnhandledCommand")
    if ms.wft.speculative and _discardable(ms, req):
        return _discard_speculative(ms, req, known_updates, updates_waiting)
    wt = state_pb2.WorkflowTaskInfo()
    wt.CopyFrom(ms.wft)
    ms.persist_transient_events()
    completed = ms.append(
        history_pb2.WorkflowTaskCompletedEventAttributes(
            scheduled_event_id=wt.scheduled_event_id,
            started_event_id=wt.started_event_id,
            identity=req.identity,
            binary_checksum=req.binary_checksum,
            worker_version=_worker_version(req),
            sdk_metadata=req.sdk_metadata if req.HasField("sdk_metadata") else None,
            metering_metadata=req.metering_metadata if req.HasField("metering_metadata") else None,
            versioning_behavior=req.versioning_behavior,
        )
    )
    ms.clear_workflow_task()
    r.last_completed_wft_started_event_id = wt.started_event_id
    reset_points.add_from_completion(ms, req, completed.event_id)
    _apply_sticky(ms, req)
    protocol = ProtocolContext.of(list(req.messages), known_updates or {})
    eager_ids: list[int] = []
    force = apply_commands(ms, list(req.commands), completed.event_id, req.identity, config, protocol, eager_ids)
    protocol.remaining(ms, completed.event_id)
    build_id_search_attributes.record_completion(
        ms, _worker_version(req), timedelta(seconds=config.build_id_visibility_delay_seconds)
    )
    if not ms.running:
        return CompletionResult(closed=True, update_effects=protocol.effects)
    if ms.paused:  # PauseWorkflowExecution: nothing new is dispatched, eager or not, until the unpause
        eager_ids = []
        workflow_pause.hold_activities(ms)
    eager = _start_eager(ms, eager_ids, req.identity)
    _schedule_next(ms, req.force_create_new_workflow_task or force, updates_waiting)
    return CompletionResult(new_wft_scheduled=ms.wft_scheduled, update_effects=protocol.effects, eager_activities=eager)


def _schedule_next(ms: MutableState, forced: bool, updates_waiting: bool) -> None:
    """The WFT after a completion: a normal one for new (buffered) events or when forced; a speculative one when
    only updates wait, so nothing is written unless the worker accepts one."""
    if ms.flush_buffered() or forced:
        ms.schedule_workflow_task(1)
    elif updates_waiting:
        ms.schedule_workflow_task(1, speculative=True)


def _apply_sticky(ms: MutableState, req: ws.RespondWorkflowTaskCompletedRequest) -> None:
    sticky = req.sticky_attributes
    if sticky.worker_task_queue.name:
        ms.record.sticky_task_queue = sticky.worker_task_queue.name
        ms.record.sticky_schedule_to_start_timeout.CopyFrom(sticky.schedule_to_start_timeout)
    else:
        ms.clear_sticky()


def _discardable(ms: MutableState, req: ws.RespondWorkflowTaskCompletedRequest) -> bool:
    """A speculative WFT answered with update rejections only leaves no trace in history. If events the worker
    had not seen rode along, they are shipped again by the next WFT: only workers that say they cope with that
    get it (and only for a few events); for others the WFT is written like a normal one."""
    if req.commands or req.force_create_new_workflow_task:
        return False
    if any(not m.body.Is(update_pb2.Rejection.DESCRIPTOR) for m in req.messages):
        return False
    unseen = ms.record.next_event_id - (ms.record.last_completed_wft_started_event_id + 2)
    if req.capabilities.discard_speculative_workflow_task_with_events:
        return unseen <= DISCARD_SPECULATIVE_MAX_EVENTS
    return unseen <= 0


def _discard_speculative(
    ms: MutableState,
    req: ws.RespondWorkflowTaskCompletedRequest,
    known_updates: dict[str, update_pb2.Request] | None,
    updates_waiting: bool,
) -> CompletionResult:
    """Drop the speculative WFT: no Scheduled/Started/Completed events; the rejections still reach their callers.
    Updates admitted meanwhile get another speculative WFT; events buffered meanwhile a normal one."""
    ms.clear_workflow_task()
    _apply_sticky(ms, req)
    protocol = ProtocolContext.of(list(req.messages), known_updates or {})
    protocol.remaining(ms, 0)
    _schedule_next(ms, False, updates_waiting)
    return CompletionResult(
        new_wft_scheduled=ms.wft_scheduled,
        update_effects=protocol.effects,
        reset_history_event_id=ms.record.last_completed_wft_started_event_id,
    )


def _start_eager(
    ms: MutableState, scheduled_ids: list[int], identity: str
) -> list[tuple[state_pb2.ActivityInfo, history_pb2.ActivityTaskScheduledEventAttributes]]:
    """Start the eagerly requested activities in the completion's own transaction (after every command, so one
    cancelled by a later command of the same completion is skipped)."""
    if not scheduled_ids:
        return []
    scheduled = {ev.event_id: ev for ev in ms.new_events if ev.event_id in scheduled_ids}
    out = []
    for sid in scheduled_ids:
        info = start_eager(ms, sid, str(uuid.uuid4()), identity)
        if info is not None:
            snapshot = state_pb2.ActivityInfo()
            snapshot.CopyFrom(info)
            out.append((snapshot, scheduled[sid].activity_task_scheduled_event_attributes))
    return out


def fail_workflow_task(ms: MutableState, req: ws.RespondWorkflowTaskFailedRequest) -> None:
    failure = req.failure if req.HasField("failure") else None
    ms.fail_workflow_task(req.cause, failure, req.identity)


def workflow_task_timer_fired(ms: MutableState, task: state_pb2.HistoryTaskInfo) -> None:
    """WORKFLOW_TASK_TIMEOUT: re-validate (same WFT, same stamp) before timing it out."""
    wt = ms.wft
    if not ms.running or wt.scheduled_event_id != task.event_id or wt.stamp != task.stamp or wt.attempt != task.attempt:
        return
    if task.timeout_type == wf_enums.TIMEOUT_TYPE_START_TO_CLOSE:
        if wt.started_event_id:
            ms.fail_workflow_task(0, None, "", timed_out=True)
        return
    # Sticky schedule-to-start: only while still queued on the sticky queue.
    if wt.started_event_id or wt.task_queue.kind != task_queue_pb2.TASK_QUEUE_KIND_STICKY:
        return
    if not wt.transient:
        ms.append(
            history_pb2.WorkflowTaskTimedOutEventAttributes(
                scheduled_event_id=wt.scheduled_event_id, timeout_type=wf_enums.TIMEOUT_TYPE_SCHEDULE_TO_START
            )
        )
    ms.clear_workflow_task()
    ms.clear_sticky()
    ms.schedule_workflow_task(wt.attempt)


def sticky_unavailable(ms: MutableState, task: state_pb2.HistoryTaskInfo) -> bool:
    """Matching refused the sticky queue: move the pending WFT to the normal queue (no event). Returns True if
    the caller should dispatch to the normal queue."""
    wt = ms.wft
    if not ms.running or wt.scheduled_event_id != task.event_id or wt.stamp != task.stamp or wt.started_event_id:
        return False
    ms.clear_sticky()
    wt.task_queue.CopyFrom(ms.normal_task_queue())
    ms.dirty = True
    return True


