"""Reset with children and requests to other workflows open at the cut (Temporal's default
``history.allowResetWithPendingChildren=true``), sans-IO.

The reset run carries every child the copied history leaves open (its ChildInfo rebuilt from the Initiated and,
if copied, Started events). The child keeps running: the run the reset terminated applies no parent close policy
(``outbound_tasks.close_execution``, keyed on the base run's ``reset_run_id``), and a child's close reported to
the old parent run follows ``reset_run_id`` to the new one (``api_internal.record_child_completed``). The base
run's child events after the cut (started, start failed, closed) are re-applied to the carried children, as
Temporal's resetter does, so a child started or closed after the cut is known to the new run. A child still not
started is started by the new run's START_CHILD task (under the base run's start request id, so a start the base
run already made is deduplicated). Signal / cancel requests to other workflows open at the cut are sent again
from the new run (same request ids: a target that already got them deduplicates), as Temporal's rebuilt state
regenerates their transfer tasks."""

from __future__ import annotations

from temporalio.api.enums.v1 import event_type_pb2
from temporalio.api.history.v1 import message_pb2 as history_pb2

from server.gen.durata.internal.history.v1 import state_pb2
from server.persistence.interface import TaskCategory

from ..mutable_state import MutableState, T

E = event_type_pb2.EventType

# Child events after the cut that are re-applied to a child the reset run carries (all but Initiated).
CHILD_EVENTS = {
    E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED: "child_workflow_execution_started_event_attributes",
    E.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_FAILED: "start_child_workflow_execution_failed_event_attributes",
    E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED: "child_workflow_execution_completed_event_attributes",
    E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_FAILED: "child_workflow_execution_failed_event_attributes",
    E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_CANCELED: "child_workflow_execution_canceled_event_attributes",
    E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TIMED_OUT: "child_workflow_execution_timed_out_event_attributes",
    E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TERMINATED: "child_workflow_execution_terminated_event_attributes",
}


def child_events(events: list[history_pb2.HistoryEvent]) -> list[history_pb2.HistoryEvent]:
    return [e for e in events if e.event_type in CHILD_EVENTS]


def restore_children(
    ms: MutableState, prefix: list[history_pb2.HistoryEvent], open_ids: set[int], base: state_pb2.MutableState
) -> None:
    """ChildInfo for each child open at the cut; call before re-applying the events after the cut."""
    by_id = {ev.event_id: ev for ev in prefix}
    started = {
        ev.child_workflow_execution_started_event_attributes.initiated_event_id: ev
        for ev in prefix if ev.event_type == E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED
    }
    for eid in sorted(open_ids):
        a = by_id[eid].start_child_workflow_execution_initiated_event_attributes
        old = base.children.get(eid)
        info = state_pb2.ChildInfo(
            initiated_event_id=eid, namespace=a.namespace, namespace_id=a.namespace_id, workflow_id=a.workflow_id,
            workflow_type=a.workflow_type.name, parent_close_policy=a.parent_close_policy,
            create_request_id=old.create_request_id if old is not None else f"{base.run_id}/child/{eid}",
        )
        s = started.get(eid)
        if s is not None:
            info.run_id = s.child_workflow_execution_started_event_attributes.workflow_execution.run_id
            info.started_event_id = s.event_id
        ms.record.children[eid].CopyFrom(info)


def reapply_child_event(ms: MutableState, ev: history_pb2.HistoryEvent) -> None:
    """A child event of the base run after the cut, for a child the reset run carries (else skipped)."""
    name = CHILD_EVENTS[ev.event_type]
    a = getattr(ev, name)
    child = ms.record.children.get(a.initiated_event_id)
    if child is None:
        return
    if ev.event_type == E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
        if child.started_event_id != 0:
            return
        out = ms.append(a)
        child.run_id = a.workflow_execution.run_id
        child.started_event_id = out.event_id
        return
    if ev.event_type == E.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_FAILED:
        if child.started_event_id != 0:
            return
        ms.append(a)
        del ms.record.children[a.initiated_event_id]
        return
    if child.started_event_id <= 0:
        return  # a close without a known start: the close notification delivers it later
    attrs = type(a)()
    attrs.CopyFrom(a)
    attrs.started_event_id = child.started_event_id  # type: ignore[attr-defined]
    ms.append(attrs)
    del ms.record.children[a.initiated_event_id]


def dispatch_unstarted_children(ms: MutableState) -> None:
    """A START_CHILD task for each carried child not started (after the re-applied events)."""
    for eid in sorted(ms.record.children):
        if ms.record.children[eid].started_event_id == 0:
            ms.add_task(TaskCategory.TRANSFER, T.HISTORY_TASK_TYPE_START_CHILD_EXECUTION, event_id=eid)


_EXTERNAL_INITIATED = {
    E.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED: (
        "signal_external_workflow_execution_initiated_event_attributes", "pending_signals", "signal",
        T.HISTORY_TASK_TYPE_SIGNAL_EXECUTION,
    ),
    E.EVENT_TYPE_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED: (
        "request_cancel_external_workflow_execution_initiated_event_attributes", "pending_cancels", "cancel",
        T.HISTORY_TASK_TYPE_CANCEL_EXECUTION,
    ),
}


def restore_externals(
    ms: MutableState, prefix: list[history_pb2.HistoryEvent], open_ids: set[int], base: state_pb2.MutableState
) -> None:
    """Each signal / cancel request open at the cut is pending again in the reset run, with its transfer task."""
    by_id = {ev.event_id: ev for ev in prefix}
    for eid in sorted(open_ids):
        ev = by_id[eid]
        name, field, kind, task_type = _EXTERNAL_INITIATED[ev.event_type]
        a = getattr(ev, name)
        old = getattr(base, field).get(eid)
        info = state_pb2.ExternalInfo(
            initiated_event_id=eid, namespace=a.namespace, namespace_id=a.namespace_id,
            workflow_id=a.workflow_execution.workflow_id, run_id=a.workflow_execution.run_id,
            child_workflow_only=a.child_workflow_only,
            request_id=old.request_id if old is not None else f"{base.run_id}/{kind}/{eid}",
        )
        getattr(ms.record, field)[eid].CopyFrom(info)
        ms.add_task(TaskCategory.TRANSFER, task_type, event_id=eid)
