"""Signalling and cancelling other workflows, sans-IO (reference 5.3): the source run's side. Delivery is a
transfer task in ``outbound_tasks.py``; its outcome comes back through ``signal_result`` / ``cancel_result``."""

from __future__ import annotations

from typing import Any

from temporalio.api.command.v1 import message_pb2 as command_pb2
from temporalio.api.common.v1 import message_pb2 as common_pb2
from temporalio.api.enums.v1 import failed_cause_pb2 as fc
from temporalio.api.history.v1 import message_pb2 as history_pb2

from server.gen.durata.internal.history.v1 import state_pb2
from server.persistence.interface import TaskCategory

from .activities import CommandError
from .mutable_state import MutableState, T

NOT_FOUND = fc.SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED_CAUSE_EXTERNAL_WORKFLOW_EXECUTION_NOT_FOUND
CANCEL_NOT_FOUND = fc.CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED_CAUSE_EXTERNAL_WORKFLOW_EXECUTION_NOT_FOUND


def _info(ms: MutableState, event_id: int, namespace: str, ex: common_pb2.WorkflowExecution, child_only: bool, kind: str) -> state_pb2.ExternalInfo:
    same_ns = not namespace or namespace == ms.namespace_name
    return state_pb2.ExternalInfo(
        initiated_event_id=event_id,
        namespace=namespace or ms.namespace_name,
        namespace_id=ms.record.namespace_id if same_ns else "",
        workflow_id=ex.workflow_id,
        run_id=ex.run_id,
        child_workflow_only=child_only,
        request_id=f"{ms.record.run_id}/{kind}/{event_id}",
    )


def initiate_signal(
    ms: MutableState, a: command_pb2.SignalExternalWorkflowExecutionCommandAttributes, completed_id: int
) -> history_pb2.HistoryEvent:
    cause = fc.WORKFLOW_TASK_FAILED_CAUSE_BAD_SIGNAL_WORKFLOW_EXECUTION_ATTRIBUTES
    if not a.execution.workflow_id:
        raise CommandError(cause, "WorkflowId is not set on SignalExternalWorkflowExecutionCommand.")
    if not a.signal_name:
        raise CommandError(cause, "SignalName is not set on SignalExternalWorkflowExecutionCommand.")
    ev = ms.append(
        history_pb2.SignalExternalWorkflowExecutionInitiatedEventAttributes(
            workflow_task_completed_event_id=completed_id,
            namespace=a.namespace or ms.namespace_name,
            namespace_id=ms.record.namespace_id if not a.namespace or a.namespace == ms.namespace_name else "",
            workflow_execution=a.execution,
            signal_name=a.signal_name,
            input=a.input if a.HasField("input") else None,
            control=a.control,
            child_workflow_only=a.child_workflow_only,
            header=a.header if a.HasField("header") else None,
        )
    )
    ms.record.pending_signals[ev.event_id].CopyFrom(
        _info(ms, ev.event_id, a.namespace, a.execution, a.child_workflow_only, "signal")
    )
    ms.add_task(TaskCategory.TRANSFER, T.HISTORY_TASK_TYPE_SIGNAL_EXECUTION, event_id=ev.event_id)
    return ev


def initiate_cancel(
    ms: MutableState, a: command_pb2.RequestCancelExternalWorkflowExecutionCommandAttributes, completed_id: int
) -> history_pb2.HistoryEvent:
    if not a.workflow_id:
        raise CommandError(
            fc.WORKFLOW_TASK_FAILED_CAUSE_BAD_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_ATTRIBUTES,
            "WorkflowId is not set on RequestCancelExternalWorkflowExecutionCommand.",
        )
    ex = common_pb2.WorkflowExecution(workflow_id=a.workflow_id, run_id=a.run_id)
    ev = ms.append(
        history_pb2.RequestCancelExternalWorkflowExecutionInitiatedEventAttributes(
            workflow_task_completed_event_id=completed_id,
            namespace=a.namespace or ms.namespace_name,
            namespace_id=ms.record.namespace_id if not a.namespace or a.namespace == ms.namespace_name else "",
            workflow_execution=ex,
            control=a.control,
            child_workflow_only=a.child_workflow_only,
            reason=a.reason,
        )
    )
    ms.record.pending_cancels[ev.event_id].CopyFrom(_info(ms, ev.event_id, a.namespace, ex, a.child_workflow_only, "cancel"))
    ms.add_task(TaskCategory.TRANSFER, T.HISTORY_TASK_TYPE_CANCEL_EXECUTION, event_id=ev.event_id)
    return ev


def _execution(info: state_pb2.ExternalInfo) -> common_pb2.WorkflowExecution:
    return common_pb2.WorkflowExecution(workflow_id=info.workflow_id, run_id=info.run_id)


def _outbound_result(
    ms: MutableState, pending: Any, initiated_id: int, delivered: bool, ok_cls: Any, failed_cls: Any, cause: int
) -> None:
    """Resolve an outbound signal/cancel: the success or the not-found event, then wake the workflow."""
    info = pending.get(initiated_id)
    if not ms.running or info is None:
        return
    common = {
        "initiated_event_id": initiated_id,
        "namespace": info.namespace,
        "namespace_id": info.namespace_id,
        "workflow_execution": _execution(info),
    }
    ms.append_or_buffer(ok_cls(**common) if delivered else failed_cls(cause=cause, **common))
    del pending[initiated_id]
    ms.dirty = True
    ms.ensure_workflow_task()


def signal_result(ms: MutableState, initiated_id: int, delivered: bool) -> None:
    _outbound_result(
        ms, ms.record.pending_signals, initiated_id, delivered,
        history_pb2.ExternalWorkflowExecutionSignaledEventAttributes,
        history_pb2.SignalExternalWorkflowExecutionFailedEventAttributes, NOT_FOUND,
    )


def cancel_result(ms: MutableState, initiated_id: int, delivered: bool) -> None:
    _outbound_result(
        ms, ms.record.pending_cancels, initiated_id, delivered,
        history_pb2.ExternalWorkflowExecutionCancelRequestedEventAttributes,
        history_pb2.RequestCancelExternalWorkflowExecutionFailedEventAttributes, CANCEL_NOT_FOUND,
    )
