"""One batch operation applied to one run: the public RPC it becomes, with request ids derived from the job so a
retried call is a duplicate the server collapses, and how each failure counts (NotFound: nothing left to do)."""

from __future__ import annotations

import uuid
from typing import Any

from temporalio.api.common.v1 import message_pb2 as common
from temporalio.api.enums.v1 import event_type_pb2
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv

from server.common.errors import FailedPrecondition, InvalidArgument, NotFound, ServiceError
from server.gen.durata.internal.batch.v1 import batch_pb2

ET = event_type_pb2.EventType
# Operations on open runs only: the query is narrowed to them, as Temporal narrows it.
OPEN_ONLY = {
    "termination_operation", "cancellation_operation", "signal_operation", "update_workflow_options_operation",
    "unpause_activities_operation",
}  # fmt: skip
_OPEN = "ExecutionStatus = 'Running' OR ExecutionStatus = 'Paused'"


class Skip(Exception):
    """The run cannot take the operation (e.g. no workflow task to reset to): counted as a failure, not retried."""


def operation_name(request: wsv.StartBatchOperationRequest) -> str:
    return request.WhichOneof("operation") or ""


def adjusted_query(request: wsv.StartBatchOperationRequest) -> str:
    query = request.visibility_query
    op = operation_name(request)
    if op == "unpause_activities_operation":
        unpause = request.unpause_activities_operation
        if unpause.WhichOneof("activity") == "type":
            escaped = unpause.type.replace("'", "''")
            query = f"TemporalPauseInfo = 'property:activityType={escaped}'"
    if query and op in OPEN_ONLY:
        return f"({query}) AND ({_OPEN})"
    return query


def request_id(job_id: str, *parts: str) -> str:
    """Stable per (job, call): a retry after a crash sends the same id and the server deduplicates it."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, ":".join([job_id, *parts])))


def is_done(err: ServiceError) -> bool:
    """NotFound: the run is gone or closed, so there is nothing left to do (Temporal counts it as done)."""
    return isinstance(err, NotFound)


def is_retryable(err: ServiceError) -> bool:
    """Bad input and refused preconditions will not change by retrying; the rest (unavailable, busy) may."""
    return not isinstance(err, InvalidArgument | FailedPrecondition)


async def apply(client: Any, deadline: float, job: batch_pb2.BatchOperationInput, workflow_id: str,
                run_id: str) -> None:
    """Apply the job's operation to one run through the frontend's public API."""
    req = job.request
    ns = req.namespace
    execution = common.WorkflowExecution(workflow_id=workflow_id, run_id=run_id)
    op = operation_name(req)
    rid = request_id(req.job_id, op, workflow_id, run_id)
    if op == "termination_operation":
        t = req.termination_operation
        await client.TerminateWorkflowExecution(wsv.TerminateWorkflowExecutionRequest(
            namespace=ns, workflow_execution=execution, reason=req.reason, details=t.details, identity=t.identity,
        ), deadline=deadline)  # fmt: skip
    elif op == "cancellation_operation":
        c = req.cancellation_operation
        await client.RequestCancelWorkflowExecution(wsv.RequestCancelWorkflowExecutionRequest(
            namespace=ns, workflow_execution=execution, identity=c.identity, request_id=rid, reason=req.reason,
        ), deadline=deadline)  # fmt: skip
    elif op == "signal_operation":
        s = req.signal_operation
        await client.SignalWorkflowExecution(wsv.SignalWorkflowExecutionRequest(
            namespace=ns, workflow_execution=execution, signal_name=s.signal, input=s.input, header=s.header,
            identity=s.identity, request_id=rid,
        ), deadline=deadline)  # fmt: skip
    elif op == "deletion_operation":
        await client.DeleteWorkflowExecution(
            wsv.DeleteWorkflowExecutionRequest(namespace=ns, workflow_execution=execution), deadline=deadline
        )
    elif op == "reset_operation":
        await _reset(client, deadline, job, execution, rid)
    elif op == "update_workflow_options_operation":
        u = req.update_workflow_options_operation
        await client.UpdateWorkflowExecutionOptions(wsv.UpdateWorkflowExecutionOptionsRequest(
            namespace=ns, workflow_execution=execution, workflow_execution_options=u.workflow_execution_options,
            update_mask=u.update_mask, identity=u.identity,
        ), deadline=deadline)  # fmt: skip
    elif op == "unpause_activities_operation":
        p = req.unpause_activities_operation
        unpause = wsv.UnpauseActivityRequest(
            namespace=ns, execution=execution, identity=p.identity, reset_attempts=p.reset_attempts,
            reset_heartbeat=p.reset_heartbeat, jitter=p.jitter,
        )  # fmt: skip
        if p.WhichOneof("activity") == "type":
            unpause.type = p.type
        else:
            unpause.unpause_all = True
        await client.UnpauseActivity(unpause, deadline=deadline)
    else:
        raise InvalidArgument(f"The operation type {op or 'unset'} is not supported")


async def _reset(client: Any, deadline: float, job: batch_pb2.BatchOperationInput,
                 execution: common.WorkflowExecution, rid: str) -> None:
    req = job.request
    r = req.reset_operation
    options = r.options
    target = options.WhichOneof("target")
    if target is None:  # the deprecated reset_type: 1 first, 2 last workflow task
        target = "last_workflow_task" if r.reset_type == 2 else "first_workflow_task"
    if target == "workflow_task_id":
        event_id = options.workflow_task_id
    elif target == "build_id":
        event_id = await _reset_point(client, deadline, req.namespace, execution, options.build_id,
                                      options.current_run_only)
    else:
        event_id = await _workflow_task_event(client, deadline, req.namespace, execution,
                                              last=target == "last_workflow_task")
    await client.ResetWorkflowExecution(wsv.ResetWorkflowExecutionRequest(
        namespace=req.namespace, workflow_execution=execution, reason=req.reason,
        workflow_task_finish_event_id=event_id, request_id=rid,
        reset_reapply_type=options.reset_reapply_type or r.reset_reapply_type,
        reset_reapply_exclude_types=list(options.reset_reapply_exclude_types), identity=r.identity,
        post_reset_operations=list(r.post_reset_operations),
    ), deadline=deadline)  # fmt: skip


async def _workflow_task_event(client: Any, deadline: float, namespace: str, execution: common.WorkflowExecution,
                               *, last: bool) -> int:
    """The first (or last) completed workflow task's event id, else the one after the first (last) scheduled."""
    found = 0
    token = b""
    while True:
        if last:
            page: Any = await client.GetWorkflowExecutionHistoryReverse(
                wsv.GetWorkflowExecutionHistoryReverseRequest(
                    namespace=namespace, execution=execution, maximum_page_size=1000, next_page_token=token,
                ), deadline=deadline)  # fmt: skip
        else:
            page = await client.GetWorkflowExecutionHistory(
                wsv.GetWorkflowExecutionHistoryRequest(
                    namespace=namespace, execution=execution, maximum_page_size=1000, next_page_token=token,
                ), deadline=deadline)  # fmt: skip
        for event in page.history.events:
            if event.event_type == ET.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
                return int(event.event_id)
            if event.event_type == ET.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED and (last or not found):
                found = event.event_id + 1
        token = page.next_page_token
        if not token:
            break
    if not found:
        raise Skip("unable to find any scheduled or completed task")
    return found


async def _reset_point(client: Any, deadline: float, namespace: str, execution: common.WorkflowExecution,
                       build_id: str, current_run_only: bool) -> int:
    desc = await client.DescribeWorkflowExecution(
        wsv.DescribeWorkflowExecutionRequest(namespace=namespace, execution=execution), deadline=deadline
    )
    for point in desc.workflow_execution_info.auto_reset_points.points:
        if point.build_id != build_id:
            continue
        if not point.resettable:
            raise Skip(f"Reset point for {build_id} is not resettable")
        if current_run_only and point.run_id != execution.run_id:
            raise Skip(f"Reset point for {build_id} points to previous run and CurrentRunOnly is set")
        execution.run_id = point.run_id
        return int(point.first_workflow_task_completed_id)
    raise Skip(f"Can't find reset point for {build_id}")
