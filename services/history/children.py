"""Child workflows, sans-IO (reference 5.2): the parent's side of the state machine. The transfer tasks that
start children, report closes and apply parent close policies live in ``outbound_tasks.py``."""

from __future__ import annotations

from temporalio.api.command.v1 import message_pb2 as command_pb2
from temporalio.api.common.v1 import message_pb2 as common_pb2
from temporalio.api.enums.v1 import event_type_pb2 as et
from temporalio.api.enums.v1 import failed_cause_pb2 as fc
from temporalio.api.enums.v1 import workflow_pb2 as wf_enums
from temporalio.api.history.v1 import message_pb2 as history_pb2
from temporalio.api.workflowservice.v1 import request_response_pb2 as ws

from server.common.errors import InvalidArgument
from server.gen.durata.internal.history.v1 import state_pb2
from server.persistence.interface import TaskCategory

from . import cron, workflow_ops
from .activities import CommandError, default_retry_policy
from .mutable_state import MutableState, T

BAD_ATTRS = fc.WORKFLOW_TASK_FAILED_CAUSE_BAD_START_CHILD_EXECUTION_ATTRIBUTES


def initiate_child(
    ms: MutableState, a: command_pb2.StartChildWorkflowExecutionCommandAttributes, completed_id: int
) -> history_pb2.HistoryEvent:
    r = ms.record
    if not a.workflow_id:
        raise CommandError(BAD_ATTRS, "WorkflowId is not set on StartChildWorkflowExecutionCommand.")
    if not a.workflow_type.name:
        raise CommandError(BAD_ATTRS, "WorkflowType is not set on StartChildWorkflowExecutionCommand.")
    if a.cron_schedule:
        try:
            cron.validate(a.cron_schedule)
        except cron.CronError as e:
            raise CommandError(BAD_ATTRS, str(e)) from None
    _validate_start(ms, a)
    same_ns = not a.namespace or a.namespace == ms.namespace_name
    attrs = history_pb2.StartChildWorkflowExecutionInitiatedEventAttributes(
        namespace=a.namespace or ms.namespace_name,
        namespace_id=r.namespace_id if same_ns else "",
        workflow_id=a.workflow_id,
        workflow_type=a.workflow_type,
        task_queue=a.task_queue if a.task_queue.name else ms.normal_task_queue(),
        input=a.input if a.HasField("input") else None,
        workflow_execution_timeout=a.workflow_execution_timeout if a.HasField("workflow_execution_timeout") else None,
        workflow_run_timeout=a.workflow_run_timeout if a.HasField("workflow_run_timeout") else None,
        workflow_task_timeout=a.workflow_task_timeout if a.HasField("workflow_task_timeout") else None,
        parent_close_policy=a.parent_close_policy or wf_enums.PARENT_CLOSE_POLICY_TERMINATE,
        control=a.control,
        workflow_task_completed_event_id=completed_id,
        workflow_id_reuse_policy=a.workflow_id_reuse_policy,
        retry_policy=a.retry_policy if a.HasField("retry_policy") else None,
        cron_schedule=a.cron_schedule,
        header=a.header if a.HasField("header") else None,
        memo=a.memo if a.HasField("memo") else None,
        search_attributes=a.search_attributes if a.HasField("search_attributes") else None,
        priority=a.priority if a.HasField("priority") else None,
    )
    ev = ms.append(attrs)
    r.children[ev.event_id].CopyFrom(
        state_pb2.ChildInfo(
            initiated_event_id=ev.event_id,
            namespace=attrs.namespace,
            namespace_id=attrs.namespace_id,
            workflow_id=a.workflow_id,
            workflow_type=a.workflow_type.name,
            parent_close_policy=attrs.parent_close_policy,
            create_request_id=f"{r.run_id}/child/{ev.event_id}",
        )
    )
    ms.add_task(TaskCategory.TRANSFER, T.HISTORY_TASK_TYPE_START_CHILD_EXECUTION, event_id=ev.event_id)
    return ev


def _validate_start(ms: MutableState, a: command_pb2.StartChildWorkflowExecutionCommandAttributes) -> None:
    """What the child's StartWorkflowExecution would refuse is refused now, as a bad command."""
    req = ws.StartWorkflowExecutionRequest(
        workflow_id=a.workflow_id,
        workflow_type=a.workflow_type,
        task_queue=a.task_queue if a.task_queue.name else ms.normal_task_queue(),
        workflow_execution_timeout=a.workflow_execution_timeout if a.HasField("workflow_execution_timeout") else None,
        workflow_run_timeout=a.workflow_run_timeout if a.HasField("workflow_run_timeout") else None,
        workflow_task_timeout=a.workflow_task_timeout if a.HasField("workflow_task_timeout") else None,
    )
    try:
        workflow_ops.validate_start(req)
        if a.HasField("retry_policy"):
            default_retry_policy(a.retry_policy)
    except InvalidArgument as e:
        raise CommandError(BAD_ATTRS, e.message) from None
    except ValueError as e:
        raise CommandError(BAD_ATTRS, str(e)) from None


def child_started(ms: MutableState, initiated_id: int, run_id: str, header: common_pb2.Header | None) -> bool:
    """Record ChildWorkflowExecutionStarted (buffered while a WFT runs). False if already recorded or gone."""
    child = ms.record.children.get(initiated_id)
    if not ms.running or child is None or child.started_event_id != 0:
        return False
    child.run_id = run_id
    ev = ms.append_or_buffer(
        history_pb2.ChildWorkflowExecutionStartedEventAttributes(
            namespace=child.namespace,
            namespace_id=child.namespace_id,
            initiated_event_id=initiated_id,
            workflow_execution=common_pb2.WorkflowExecution(workflow_id=child.workflow_id, run_id=run_id),
            workflow_type=common_pb2.WorkflowType(name=child.workflow_type),
            header=header,
        )
    )
    child.started_event_id = ev.event_id if ev is not None else -1
    ms.dirty = True
    ms.ensure_workflow_task()
    return True


def child_start_failed(ms: MutableState, initiated_id: int, cause: int) -> None:
    child = ms.record.children.get(initiated_id)
    if not ms.running or child is None or child.started_event_id != 0:
        return
    ms.append_or_buffer(
        history_pb2.StartChildWorkflowExecutionFailedEventAttributes(
            namespace=child.namespace,
            namespace_id=child.namespace_id,
            workflow_id=child.workflow_id,
            workflow_type=common_pb2.WorkflowType(name=child.workflow_type),
            cause=cause,  # type: ignore[arg-type]
            initiated_event_id=initiated_id,
        )
    )
    del ms.record.children[initiated_id]
    ms.dirty = True
    ms.ensure_workflow_task()


class ChildNotStarted(Exception):
    """The child closed before its parent recorded it as started: retry the notification later."""


def child_closed(
    ms: MutableState, initiated_id: int, child_execution: common_pb2.WorkflowExecution, close: history_pb2.HistoryEvent
) -> None:
    """The child's chain finished: record the matching ChildWorkflowExecution* event in the parent."""
    child = ms.record.children.get(initiated_id)
    if not ms.running or child is None or child.workflow_id != child_execution.workflow_id:
        return
    if child.started_event_id == 0:
        raise ChildNotStarted(f"child {child.workflow_id} not yet recorded as started")
    common = dict(
        namespace=child.namespace,
        namespace_id=child.namespace_id,
        workflow_execution=child_execution,
        workflow_type=common_pb2.WorkflowType(name=child.workflow_type),
        initiated_event_id=initiated_id,
        started_event_id=child.started_event_id,
    )
    t = close.event_type
    attrs: object
    if t == et.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
        c = close.workflow_execution_completed_event_attributes
        attrs = history_pb2.ChildWorkflowExecutionCompletedEventAttributes(
            result=c.result if c.HasField("result") else None, **common  # type: ignore[arg-type]
        )
    elif t == et.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
        f = close.workflow_execution_failed_event_attributes
        attrs = history_pb2.ChildWorkflowExecutionFailedEventAttributes(
            failure=f.failure, retry_state=f.retry_state, **common  # type: ignore[arg-type]
        )
    elif t == et.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED:
        x = close.workflow_execution_canceled_event_attributes
        attrs = history_pb2.ChildWorkflowExecutionCanceledEventAttributes(
            details=x.details if x.HasField("details") else None, **common  # type: ignore[arg-type]
        )
    elif t == et.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT:
        attrs = history_pb2.ChildWorkflowExecutionTimedOutEventAttributes(
            retry_state=close.workflow_execution_timed_out_event_attributes.retry_state, **common  # type: ignore[arg-type]
        )
    elif t == et.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
        attrs = history_pb2.ChildWorkflowExecutionTerminatedEventAttributes(**common)  # type: ignore[arg-type]
    else:
        return  # continued-as-new is never a chain's final close
    ms.append_or_buffer(attrs)  # type: ignore[arg-type]
    del ms.record.children[initiated_id]
    ms.dirty = True
    ms.ensure_workflow_task()


def describe_pending_children(ms: MutableState, out: object) -> None:
    """Fill DescribeWorkflowExecutionResponse.pending_children."""
    for c in sorted(ms.record.children.values(), key=lambda x: x.initiated_event_id):
        out.pending_children.add(  # type: ignore[attr-defined]
            workflow_id=c.workflow_id,
            run_id=c.run_id,
            workflow_type_name=c.workflow_type,
            initiated_id=c.initiated_event_id,
            parent_close_policy=c.parent_close_policy,
        )
