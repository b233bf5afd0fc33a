"""Command ↔ history-event correspondence used to detect non-determinism on replay."""

from __future__ import annotations

import json
from typing import Any

from temporalio.api.command.v1 import message_pb2 as command_pb
from temporalio.api.enums.v1 import command_type_pb2 as ct
from temporalio.api.enums.v1 import event_type_pb2 as et
from temporalio.api.history.v1 import message_pb2 as history_pb

E = et.EventType
C = ct.CommandType

EXPECTED_EVENT: dict[int, tuple[int, ...]] = {
    C.COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK: (E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,),
    C.COMMAND_TYPE_REQUEST_CANCEL_ACTIVITY_TASK: (E.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED,),
    C.COMMAND_TYPE_START_TIMER: (E.EVENT_TYPE_TIMER_STARTED,),
    C.COMMAND_TYPE_CANCEL_TIMER: (E.EVENT_TYPE_TIMER_CANCELED,),
    C.COMMAND_TYPE_COMPLETE_WORKFLOW_EXECUTION: (E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,),
    C.COMMAND_TYPE_FAIL_WORKFLOW_EXECUTION: (E.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,),
    C.COMMAND_TYPE_CANCEL_WORKFLOW_EXECUTION: (E.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,),
    C.COMMAND_TYPE_CONTINUE_AS_NEW_WORKFLOW_EXECUTION: (E.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,),
    C.COMMAND_TYPE_RECORD_MARKER: (E.EVENT_TYPE_MARKER_RECORDED,),
    C.COMMAND_TYPE_START_CHILD_WORKFLOW_EXECUTION: (E.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED,),
    C.COMMAND_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION: (E.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED,),
    C.COMMAND_TYPE_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION: (
        E.EVENT_TYPE_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED,
    ),
    C.COMMAND_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES: (E.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,),
    C.COMMAND_TYPE_MODIFY_WORKFLOW_PROPERTIES: (E.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED,),
    C.COMMAND_TYPE_PROTOCOL_MESSAGE: (
        E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
        E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED,
    ),
}

COMMAND_EVENT_TYPES: frozenset[int] = frozenset(t for ts in EXPECTED_EVENT.values() for t in ts)

PATCH_MARKER = "core_patch"


def _camel(name: str, prefix: str) -> str:
    return "".join(p.capitalize() for p in name.removeprefix(prefix).split("_"))


def event_type_name(event_type: et.EventType.ValueType) -> str:
    return _camel(E.Name(event_type), "EVENT_TYPE_")


PATCH_DETAILS_KEY = "patch-data"  # the key sdk-core writes (and reads)
CHANGE_VERSION_SA = "TemporalChangeVersion"


def patch_id_of_marker(details: Any) -> str | None:
    for key in (PATCH_DETAILS_KEY, "patch_data"):
        try:
            if key in details:
                return str(json.loads(details[key].payloads[0].data)["id"])
        except Exception:
            return None
    return None


def is_change_version_upsert(ev: history_pb.HistoryEvent) -> bool:
    """The TemporalChangeVersion upsert that accompanies patch markers (skippable when code does not emit it)."""
    if ev.event_type != E.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
        return False
    fields = ev.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
    return set(fields) == {CHANGE_VERSION_SA}


def command_key(cmd: command_pb.Command, update_id: str = "") -> tuple[str, ...]:
    """What must be equal between a command and its history event (besides the type)."""
    t = cmd.command_type
    if t == C.COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK:
        a = cmd.schedule_activity_task_command_attributes
        return ("activity_type", a.activity_type.name, "activity_id", a.activity_id)
    if t == C.COMMAND_TYPE_START_TIMER:
        return ("timer_id", cmd.start_timer_command_attributes.timer_id)
    if t == C.COMMAND_TYPE_CANCEL_TIMER:
        return ("timer_id", cmd.cancel_timer_command_attributes.timer_id)
    if t == C.COMMAND_TYPE_START_CHILD_WORKFLOW_EXECUTION:
        a2 = cmd.start_child_workflow_execution_command_attributes
        return ("workflow_type", a2.workflow_type.name, "workflow_id", a2.workflow_id)
    if t == C.COMMAND_TYPE_RECORD_MARKER:
        a3 = cmd.record_marker_command_attributes
        pid = patch_id_of_marker(a3.details) if a3.marker_name == PATCH_MARKER else None
        return ("marker_name", a3.marker_name) + (("patch_id", pid) if pid else ())
    if t == C.COMMAND_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION:
        return ("signal_name", cmd.signal_external_workflow_execution_command_attributes.signal_name)
    if t == C.COMMAND_TYPE_PROTOCOL_MESSAGE:
        return ("update_id", update_id)
    if t == C.COMMAND_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
        return ("search_attributes", ",".join(sorted(
            cmd.upsert_workflow_search_attributes_command_attributes.search_attributes.indexed_fields)))
    return ()


def event_key(ev: history_pb.HistoryEvent) -> tuple[str, ...]:
    t = ev.event_type
    if t == E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
        a = ev.activity_task_scheduled_event_attributes
        return ("activity_type", a.activity_type.name, "activity_id", a.activity_id)
    if t == E.EVENT_TYPE_TIMER_STARTED:
        return ("timer_id", ev.timer_started_event_attributes.timer_id)
    if t == E.EVENT_TYPE_TIMER_CANCELED:
        return ("timer_id", ev.timer_canceled_event_attributes.timer_id)
    if t == E.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
        a2 = ev.start_child_workflow_execution_initiated_event_attributes
        return ("workflow_type", a2.workflow_type.name, "workflow_id", a2.workflow_id)
    if t == E.EVENT_TYPE_MARKER_RECORDED:
        a3 = ev.marker_recorded_event_attributes
        pid = patch_id_of_marker(a3.details) if a3.marker_name == PATCH_MARKER else None
        return ("marker_name", a3.marker_name) + (("patch_id", pid) if pid else ())
    if t == E.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED:
        return ("signal_name", ev.signal_external_workflow_execution_initiated_event_attributes.signal_name)
    if t == E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
        return ("update_id", ev.workflow_execution_update_accepted_event_attributes.protocol_instance_id)
    if t == E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
        return ("update_id", ev.workflow_execution_update_completed_event_attributes.meta.update_id)
    if t == E.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
        return ("search_attributes", ",".join(sorted(
            ev.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields)))
    return ()


def _fmt(name: str, key: tuple[str, ...]) -> str:
    pairs = ", ".join(f"{key[i]}={key[i + 1]!r}" for i in range(0, len(key) - 1, 2))
    return f"{name}({pairs})"


def describe_command(cmd: command_pb.Command, update_id: str = "") -> str:
    return _fmt(_camel(C.Name(cmd.command_type), "COMMAND_TYPE_"), command_key(cmd, update_id))


def describe_event(ev: history_pb.HistoryEvent) -> str:
    return _fmt(event_type_name(ev.event_type), event_key(ev))


def matches(cmd: command_pb.Command, update_id: str, ev: history_pb.HistoryEvent) -> bool:
    return ev.event_type in EXPECTED_EVENT.get(cmd.command_type, ()) and command_key(cmd, update_id) == event_key(ev)


def is_patch_marker(ev: history_pb.HistoryEvent) -> bool:
    return ev.event_type == E.EVENT_TYPE_MARKER_RECORDED and ev.marker_recorded_event_attributes.marker_name == PATCH_MARKER
