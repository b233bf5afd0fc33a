"""Commands of a workflow task completion -> events (reference 2.5), plus user timers (5.1) and
memo / search-attribute merging (5.6). Chains, children, external signals/cancels and update messages
have their own modules."""

from __future__ import annotations

from typing import Any

from temporalio.api.command.v1 import message_pb2 as command_pb2
from temporalio.api.common.v1 import message_pb2 as common_pb2
from temporalio.api.enums.v1 import command_type_pb2
from temporalio.api.enums.v1 import failed_cause_pb2 as fc
from temporalio.api.enums.v1 import workflow_pb2 as wf_enums
from temporalio.api.history.v1 import message_pb2 as history_pb2

from server.common.durations import validate_and_cap
from server.common.errors import InvalidArgument, shorten
from server.common.search_attribute_catalogue import validate_search_attributes
from server.gen.durata.internal.history.v1 import state_pb2
from server.persistence.interface import TaskCategory

from . import activities, chains, children, external
from .activities import CommandError
from .config import HistoryConfig
from .mutable_state import MutableState, T, from_dur, from_ts, to_ts
from .search_attributes import check_command_search_attributes
from .updates import ProtocolContext

CT = command_type_pb2.CommandType
ST = wf_enums.WorkflowExecutionStatus

CLOSE_COMMANDS = frozenset(
    {
        CT.COMMAND_TYPE_COMPLETE_WORKFLOW_EXECUTION,
        CT.COMMAND_TYPE_FAIL_WORKFLOW_EXECUTION,
        CT.COMMAND_TYPE_CANCEL_WORKFLOW_EXECUTION,
        CT.COMMAND_TYPE_CONTINUE_AS_NEW_WORKFLOW_EXECUTION,
    }
)

# Commands this server does not implement: the WFT fails with a cause and a message that says so.
UNSUPPORTED: dict[int, tuple[int, str]] = {
    CT.COMMAND_TYPE_SCHEDULE_NEXUS_OPERATION: (
        fc.WORKFLOW_TASK_FAILED_CAUSE_FEATURE_DISABLED,
        "Nexus operations are not supported by this server.",
    ),
    CT.COMMAND_TYPE_REQUEST_CANCEL_NEXUS_OPERATION: (
        fc.WORKFLOW_TASK_FAILED_CAUSE_FEATURE_DISABLED,
        "Nexus operations are not supported by this server.",
    ),
}


def is_nil_payload(p: common_pb2.Payload) -> bool:
    """A nil-equivalent payload deletes the key on upsert (5.6)."""
    enc = p.metadata.get("encoding", b"")
    return enc == b"binary/null" or not p.data or p.data.strip() in (b"null", b"[]")


def merge_payload_map(target: Any, upserted: Any) -> None:
    """Merge protobuf map<string, Payload> fields; nil-equivalent values delete the key."""
    for key, payload in upserted.items():
        if is_nil_payload(payload):
            if key in target:
                del target[key]
        else:
            target[key].CopyFrom(payload)


def apply_commands(
    ms: MutableState,
    commands: list[command_pb2.Command],
    completed_id: int,
    identity: str,
    config: HistoryConfig,
    protocol: ProtocolContext | None = None,
    eager_out: list[int] | None = None,
) -> bool:
    """Apply commands in order; returns True if a new WFT must be forced (activity cancelled before start).
    Activities the worker asked to run eagerly are scheduled without a task and their ids added to ``eager_out``."""
    force_new_wft = False
    for i, cmd in enumerate(commands):
        if not ms.running:
            raise CommandError(
                fc.WORKFLOW_TASK_FAILED_CAUSE_BAD_COMPLETE_WORKFLOW_EXECUTION_ATTRIBUTES,
                "A workflow-closing command must be the last command of a workflow task completion.",
            )
        ct = cmd.command_type
        if ct in UNSUPPORTED:
            raise CommandError(*UNSUPPORTED[ct])
        if ct == CT.COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK:
            act = cmd.schedule_activity_task_command_attributes
            eager = eager_out is not None and act.request_eager_execution and config.enable_activity_eager_execution
            ev = activities.schedule_activity(ms, act, completed_id, eager)
            if eager and eager_out is not None:
                eager_out.append(ev.event_id)
        elif ct == CT.COMMAND_TYPE_REQUEST_CANCEL_ACTIVITY_TASK:
            sched = cmd.request_cancel_activity_task_command_attributes.scheduled_event_id
            force_new_wft |= activities.request_cancel(ms, sched, completed_id)
            ev = None
        elif ct == CT.COMMAND_TYPE_START_TIMER:
            ev = start_timer(ms, cmd.start_timer_command_attributes, completed_id)
        elif ct == CT.COMMAND_TYPE_CANCEL_TIMER:
            ev = cancel_timer(ms, cmd.cancel_timer_command_attributes.timer_id, completed_id, identity)
        elif ct == CT.COMMAND_TYPE_RECORD_MARKER:
            mk = cmd.record_marker_command_attributes
            if not mk.marker_name:
                raise CommandError(fc.WORKFLOW_TASK_FAILED_CAUSE_BAD_RECORD_MARKER_ATTRIBUTES, "MarkerName is not set on RecordMarkerCommand.")
            attrs = history_pb2.MarkerRecordedEventAttributes(
                marker_name=mk.marker_name, header=mk.header, workflow_task_completed_event_id=completed_id
            )
            for k, v in mk.details.items():
                attrs.details[k].CopyFrom(v)
            if mk.HasField("failure"):
                attrs.failure.CopyFrom(mk.failure)
            ev = ms.append(attrs)
        elif ct == CT.COMMAND_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            sa = cmd.upsert_workflow_search_attributes_command_attributes.search_attributes
            if not sa.indexed_fields:
                raise CommandError(fc.WORKFLOW_TASK_FAILED_CAUSE_BAD_SEARCH_ATTRIBUTES, "SearchAttributes are not set on UpsertWorkflowSearchAttributesCommand.")
            if ms.search_attribute_aliases is not None:
                try:
                    validate_search_attributes(sa, ms.search_attribute_aliases)
                except InvalidArgument as e:
                    raise CommandError(fc.WORKFLOW_TASK_FAILED_CAUSE_BAD_SEARCH_ATTRIBUTES, e.message) from None
            ev = ms.append(
                history_pb2.UpsertWorkflowSearchAttributesEventAttributes(
                    workflow_task_completed_event_id=completed_id, search_attributes=sa
                )
            )
            merge_payload_map(ms.record.search_attributes.indexed_fields, sa.indexed_fields)
            ms.add_task(TaskCategory.VISIBILITY, T.HISTORY_TASK_TYPE_VISIBILITY_UPSERT)
        elif ct == CT.COMMAND_TYPE_MODIFY_WORKFLOW_PROPERTIES:
            memo = cmd.modify_workflow_properties_command_attributes.upserted_memo
            ev = ms.append(
                history_pb2.WorkflowPropertiesModifiedEventAttributes(
                    workflow_task_completed_event_id=completed_id, upserted_memo=memo
                )
            )
            merge_payload_map(ms.record.memo.fields, memo.fields)
            ms.add_task(TaskCategory.VISIBILITY, T.HISTORY_TASK_TYPE_VISIBILITY_UPSERT)
        elif ct == CT.COMMAND_TYPE_COMPLETE_WORKFLOW_EXECUTION:
            ca = cmd.complete_workflow_execution_command_attributes
            result = ca.result if ca.HasField("result") else None
            ev = ms.close(
                ST.WORKFLOW_EXECUTION_STATUS_COMPLETED,
                history_pb2.WorkflowExecutionCompletedEventAttributes(
                    result=result,
                    workflow_task_completed_event_id=completed_id,
                    new_execution_run_id=chains.cron_after_completion(ms, result, config),
                ),
            )
        elif ct == CT.COMMAND_TYPE_FAIL_WORKFLOW_EXECUTION:
            fa = cmd.fail_workflow_execution_command_attributes
            failed = history_pb2.WorkflowExecutionFailedEventAttributes(
                failure=fa.failure, workflow_task_completed_event_id=completed_id
            )
            failed.retry_state, failed.new_execution_run_id = chains.retry_or_cron(ms, fa.failure, config)  # type: ignore[assignment]
            ev = ms.close(ST.WORKFLOW_EXECUTION_STATUS_FAILED, failed)
        elif ct == CT.COMMAND_TYPE_CONTINUE_AS_NEW_WORKFLOW_EXECUTION:
            check_command_search_attributes(ms, cmd)
            ev = chains.continue_as_new(ms, cmd.continue_as_new_workflow_execution_command_attributes, completed_id, config)
        elif ct == CT.COMMAND_TYPE_START_CHILD_WORKFLOW_EXECUTION:
            check_command_search_attributes(ms, cmd)
            ev = children.initiate_child(ms, cmd.start_child_workflow_execution_command_attributes, completed_id)
        elif ct == CT.COMMAND_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION:
            ev = external.initiate_signal(ms, cmd.signal_external_workflow_execution_command_attributes, completed_id)
        elif ct == CT.COMMAND_TYPE_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION:
            ev = external.initiate_cancel(
                ms, cmd.request_cancel_external_workflow_execution_command_attributes, completed_id
            )
        elif ct == CT.COMMAND_TYPE_PROTOCOL_MESSAGE:
            if protocol is None:
                raise CommandError(
                    fc.WORKFLOW_TASK_FAILED_CAUSE_BAD_UPDATE_WORKFLOW_EXECUTION_MESSAGE, "ProtocolMessageCommand without messages."
                )
            ev = protocol.command(ms, cmd.protocol_message_command_attributes, completed_id)
        elif ct == CT.COMMAND_TYPE_CANCEL_WORKFLOW_EXECUTION:
            xa = cmd.cancel_workflow_execution_command_attributes
            ev = ms.close(
                ST.WORKFLOW_EXECUTION_STATUS_CANCELED,
                history_pb2.WorkflowExecutionCanceledEventAttributes(
                    details=xa.details if xa.HasField("details") else None, workflow_task_completed_event_id=completed_id
                ),
            )
        else:
            raise CommandError(fc.WORKFLOW_TASK_FAILED_CAUSE_UNSPECIFIED, f"Unknown command type {ct} at position {i}.")
        if ev is not None and cmd.HasField("user_metadata"):
            ev.user_metadata.CopyFrom(cmd.user_metadata)
    return force_new_wft


def start_timer(
    ms: MutableState, a: command_pb2.StartTimerCommandAttributes, completed_id: int
) -> history_pb2.HistoryEvent:
    if not a.timer_id:
        raise CommandError(fc.WORKFLOW_TASK_FAILED_CAUSE_BAD_START_TIMER_ATTRIBUTES, "TimerId is not set on StartTimerCommand.")
    if a.timer_id in ms.record.timers:
        raise CommandError(fc.WORKFLOW_TASK_FAILED_CAUSE_START_TIMER_DUPLICATE_ID, f"Timer with id {a.timer_id} is already started.")
    reason = validate_and_cap(a.start_to_fire_timeout)
    if reason is not None:
        raise CommandError(
            fc.WORKFLOW_TASK_FAILED_CAUSE_BAD_START_TIMER_ATTRIBUTES,
            f"An invalid StartToFireTimeout is set on StartTimerCommand: {reason}. TimerId={shorten(a.timer_id)}",
        )
    # A zero (or unset) duration is a timer that fires at once, as on Temporal 1.32 (``workflow.sleep(0)``).
    duration = from_dur(a.start_to_fire_timeout)
    ev = ms.append(
        history_pb2.TimerStartedEventAttributes(
            timer_id=a.timer_id, start_to_fire_timeout=a.start_to_fire_timeout, workflow_task_completed_event_id=completed_id
        )
    )
    fire = ms.now + duration
    ms.record.timers[a.timer_id].CopyFrom(
        state_pb2.TimerInfo(timer_id=a.timer_id, started_event_id=ev.event_id, expiry_time=to_ts(fire))
    )
    ms.add_timer_task(T.HISTORY_TASK_TYPE_USER_TIMER, fire, event_id=ev.event_id, timer_id=a.timer_id)
    return ev


def restore_timer(ms: MutableState, ev: history_pb2.HistoryEvent) -> None:
    """A timer a reset run inherits from its copied history: due when the original was (at once if that passed)."""
    a = ev.timer_started_event_attributes
    fire = from_ts(ev.event_time) + from_dur(a.start_to_fire_timeout)
    ms.record.timers[a.timer_id].CopyFrom(
        state_pb2.TimerInfo(timer_id=a.timer_id, started_event_id=ev.event_id, expiry_time=to_ts(fire))
    )
    ms.add_timer_task(T.HISTORY_TASK_TYPE_USER_TIMER, max(fire, ms.now), event_id=ev.event_id, timer_id=a.timer_id)


def cancel_timer(ms: MutableState, timer_id: str, completed_id: int, identity: str) -> history_pb2.HistoryEvent:
    info = ms.record.timers.get(timer_id)
    started_id = 0
    if info is not None:
        started_id = info.started_event_id
        del ms.record.timers[timer_id]
    else:
        # Its TimerFired may still sit in the buffer: drop it, the cancel wins.
        for idx, ev in enumerate(ms.record.buffered_events):
            if ev.HasField("timer_fired_event_attributes") and ev.timer_fired_event_attributes.timer_id == timer_id:
                started_id = ev.timer_fired_event_attributes.started_event_id
                del ms.record.buffered_events[idx]
                break
        else:
            raise CommandError(fc.WORKFLOW_TASK_FAILED_CAUSE_BAD_CANCEL_TIMER_ATTRIBUTES, f"Timer with id {timer_id} is not running.")
    return ms.append(
        history_pb2.TimerCanceledEventAttributes(
            timer_id=timer_id, started_event_id=started_id, workflow_task_completed_event_id=completed_id, identity=identity
        )
    )


def timer_fired(ms: MutableState, task: state_pb2.HistoryTaskInfo) -> None:
    """USER_TIMER task: fire only if the timer is still the one the task was created for."""
    info = ms.record.timers.get(task.timer_id)
    if not ms.running or info is None or info.started_event_id != task.event_id:
        return
    del ms.record.timers[task.timer_id]
    ms.dirty = True
    ms.append_or_buffer(history_pb2.TimerFiredEventAttributes(timer_id=task.timer_id, started_event_id=task.event_id))
    ms.ensure_workflow_task()
