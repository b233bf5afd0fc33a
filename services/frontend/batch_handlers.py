"""StartBatchOperation / StopBatchOperation / DescribeBatchOperation / ListBatchOperations: a batch job is a
system workflow in the caller's namespace (workflow id = job id, on the per-namespace system task queue, hidden
from ordinary lists by its TemporalNamespaceDivision), so these RPCs are thin layers over the public start,
terminate, describe and list, with Temporal's checks and messages in Temporal's order."""

from __future__ import annotations

import json
import uuid
from typing import Any

from temporalio.api.batch.v1 import message_pb2 as batch_pb
from temporalio.api.common.v1 import message_pb2 as common
from temporalio.api.enums.v1 import batch_operation_pb2 as batch_enums
from temporalio.api.enums.v1 import failed_cause_pb2 as fc
from temporalio.api.enums.v1 import workflow_pb2 as wf_enums
from temporalio.api.errordetails.v1 import message_pb2 as errordetails
from temporalio.api.taskqueue.v1 import message_pb2 as tq
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv

from server.common.errors import InvalidArgument, ResourceExhausted
from server.common.payloads import json_payload, proto_payloads
from server.common.system_workflows import (
    BATCH_EXECUTIONS_MEMO,
    BATCH_NAMESPACE_DIVISION,
    BATCH_QUERY_MEMO,
    BATCH_REASON_MEMO,
    BATCH_STATS_MEMO,
    BATCH_TYPE_BY_MEMO,
    BATCH_TYPE_MEMO,
    BATCH_TYPES,
    BATCH_WORKFLOW_TYPE,
    PER_NAMESPACE_TASK_QUEUE,
)
from server.gen.durata.internal.batch.v1 import batch_pb2
from server.persistence.visibility_query import custom_fields, parse_query
from services.frontend.base import HandlerBase

BS = batch_enums.BatchOperationState
WS = wf_enums.WorkflowExecutionStatus
OPEN_BATCHES = f"TemporalNamespaceDivision = '{BATCH_NAMESPACE_DIVISION}' AND ExecutionStatus = 'Running'"
_REQUIRED = (
    "must provide required parameters: BatchType,Reason,Namespace, AND one of (Query OR Executions OR "
    "TargetExecutions)"
)
# Go's %T of the request's oneof wrapper, as Temporal's "not supported" message prints it.
_GO_ONEOF = {
    "reset_activities_operation": "ResetActivitiesOperation",
    "update_activity_options_operation": "UpdateActivityOptionsOperation",
    "cancel_activities_operation": "CancelActivitiesOperation",
    "terminate_activities_operation": "TerminateActivitiesOperation",
    "delete_activities_operation": "DeleteActivitiesOperation",
}


def _decode(payload: common.Payload | None, default: Any) -> Any:
    if payload is None or not payload.data:
        return default
    try:
        return json.loads(payload.data)
    except ValueError:
        return default


def validate_batch_request(request: wsv.StartBatchOperationRequest) -> str:
    """Temporal's ValidateBatchOperation; returns the operation's oneof name."""
    selectors = sum(bool(x) for x in (request.visibility_query, request.executions, request.target_executions))
    op = request.WhichOneof("operation")
    if op is None or not request.reason or not request.namespace or selectors == 0:
        raise InvalidArgument(_REQUIRED)
    if not request.job_id:
        raise InvalidArgument("JobId is not set on request.")
    if selectors > 1:
        raise InvalidArgument("visibility query, executions, and target executions are mutually exclusive")
    if op in _GO_ONEOF:
        raise InvalidArgument(
            f"The operation type *workflowservice.StartBatchOperationRequest_{_GO_ONEOF[op]} is not supported"
        )
    for i, execution in enumerate(request.target_executions):
        if execution.type not in (0, 1):  # EXECUTION_TYPE_UNSPECIFIED / WORKFLOW
            raise InvalidArgument(f"target_executions[{i}] must be a workflow execution for this operation")
    if op == "signal_operation" and not request.signal_operation.signal:
        raise InvalidArgument("must provide signal name")
    if op == "update_workflow_options_operation":
        u = request.update_workflow_options_operation
        if not u.HasField("workflow_execution_options"):
            raise InvalidArgument("must provide UpdateOptions")
        if not u.HasField("update_mask"):
            raise InvalidArgument("must provide UpdateMask")
    if op == "reset_operation":
        reset = request.reset_operation
        if reset.HasField("options"):
            if reset.options.WhichOneof("target") is None:
                raise InvalidArgument("batch reset missing target")
        elif reset.reset_type not in (1, 2):  # RESET_TYPE_FIRST_WORKFLOW_TASK / LAST_WORKFLOW_TASK
            raise InvalidArgument(f"unknown batch reset type {_reset_type_name(reset.reset_type)}")
    if op == "unpause_activities_operation":
        unpause = request.unpause_activities_operation
        which = unpause.WhichOneof("activity")
        if which is None:
            raise InvalidArgument("activity filter must be set")
        if (which == "type" and not unpause.type) or (which == "match_all" and not unpause.match_all):
            raise InvalidArgument("Either activity type must be set, or match all should be set to true")
    return op


def _reset_type_name(value: int) -> str:
    from temporalio.api.enums.v1 import reset_pb2

    try:
        return reset_pb2.ResetType.Name(value)  # type: ignore[arg-type]
    except ValueError:
        return str(value)


def _state(status: int) -> int:
    if status == WS.WORKFLOW_EXECUTION_STATUS_RUNNING:
        return BS.BATCH_OPERATION_STATE_RUNNING
    if status == WS.WORKFLOW_EXECUTION_STATUS_COMPLETED:
        return BS.BATCH_OPERATION_STATE_COMPLETED
    return BS.BATCH_OPERATION_STATE_FAILED


class BatchHandlers(HandlerBase):
    async def StartBatchOperation(
        self, request: wsv.StartBatchOperationRequest, *, deadline: float | None = None
    ) -> wsv.StartBatchOperationResponse:
        op = validate_batch_request(request)
        entry = await self._namespace(request.namespace)
        if request.visibility_query:
            aliases = dict(entry.description.config.custom_search_attribute_aliases)
            try:
                parse_query(request.visibility_query, custom_fields(aliases))
            except InvalidArgument as err:
                raise InvalidArgument(f"invalid visibility query: {err.message}") from None
        running = await self.CountWorkflowExecutions(  # type: ignore[attr-defined]
            wsv.CountWorkflowExecutionsRequest(namespace=request.namespace, query=OPEN_BATCHES), deadline=deadline
        )
        if running.count >= self._ctx.config.max_concurrent_batch_operations:
            raise ResourceExhausted(
                "Max concurrent batch operations is reached",
                errordetails.ResourceExhaustedFailure(
                    cause=fc.RESOURCE_EXHAUSTED_CAUSE_CONCURRENT_LIMIT, scope=fc.RESOURCE_EXHAUSTED_SCOPE_NAMESPACE
                ),
            )
        batch_type, memo_type = BATCH_TYPES[op]
        job = batch_pb2.BatchOperationInput(request=request, namespace_id=entry.id, batch_type=batch_type)  # type: ignore[arg-type]
        identity = getattr(request, op).identity
        memo = common.Memo(fields={BATCH_TYPE_MEMO: json_payload(memo_type), BATCH_REASON_MEMO: json_payload(request.reason)})
        if request.visibility_query:
            memo.fields[BATCH_QUERY_MEMO].CopyFrom(json_payload(request.visibility_query))
        targets = [{"type": "EXECUTION_TYPE_WORKFLOW", "businessId": e.workflow_id, "runId": e.run_id}
                   for e in request.executions]  # fmt: skip
        targets += [{"type": "EXECUTION_TYPE_WORKFLOW", "businessId": e.business_id, "runId": e.run_id}
                    for e in request.target_executions]  # fmt: skip
        if targets:
            memo.fields[BATCH_EXECUTIONS_MEMO].CopyFrom(json_payload(targets))
        attributes = common.SearchAttributes(indexed_fields={
            "BatcherUser": json_payload(identity), "TemporalNamespaceDivision": json_payload(BATCH_NAMESPACE_DIVISION),
        })  # fmt: skip
        await self.StartWorkflowExecution(  # type: ignore[attr-defined]
            wsv.StartWorkflowExecutionRequest(
                namespace=request.namespace, workflow_id=request.job_id,
                workflow_type=common.WorkflowType(name=BATCH_WORKFLOW_TYPE),
                task_queue=tq.TaskQueue(name=PER_NAMESPACE_TASK_QUEUE), input=proto_payloads(job),
                identity=identity, request_id=str(uuid.uuid4()),
                workflow_id_conflict_policy=wf_enums.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
                workflow_id_reuse_policy=wf_enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
                memo=memo, search_attributes=attributes,
            ),
            deadline=deadline,
        )  # fmt: skip
        return wsv.StartBatchOperationResponse()

    async def StopBatchOperation(
        self, request: wsv.StopBatchOperationRequest, *, deadline: float | None = None
    ) -> wsv.StopBatchOperationResponse:
        if not request.job_id:
            raise InvalidArgument("JobId is not set on request.")
        if not request.namespace:
            raise InvalidArgument("Namespace is not set on request.")
        if not request.reason:
            raise InvalidArgument("Reason is not set on request.")
        await self.TerminateWorkflowExecution(  # type: ignore[attr-defined]
            wsv.TerminateWorkflowExecutionRequest(
                namespace=request.namespace, workflow_execution=common.WorkflowExecution(workflow_id=request.job_id),
                reason=request.reason, identity=request.identity,
            ),
            deadline=deadline,
        )
        return wsv.StopBatchOperationResponse()

    async def DescribeBatchOperation(
        self, request: wsv.DescribeBatchOperationRequest, *, deadline: float | None = None
    ) -> wsv.DescribeBatchOperationResponse:
        if not request.job_id:
            raise InvalidArgument("JobId is not set on request.")
        if not request.namespace:
            raise InvalidArgument("Namespace is not set on request.")
        desc = await self.DescribeWorkflowExecution(  # type: ignore[attr-defined]
            wsv.DescribeWorkflowExecutionRequest(
                namespace=request.namespace, execution=common.WorkflowExecution(workflow_id=request.job_id)
            ),
            deadline=deadline,
        )
        info = desc.workflow_execution_info
        memo = info.memo.fields
        sas = info.search_attributes.indexed_fields
        resp = wsv.DescribeBatchOperationResponse(
            operation_type=BATCH_TYPE_BY_MEMO.get(_decode(memo.get(BATCH_TYPE_MEMO), ""), 0),  # type: ignore[arg-type]
            job_id=info.execution.workflow_id, state=_state(info.status),  # type: ignore[arg-type]
            start_time=info.start_time, close_time=info.close_time if info.HasField("close_time") else None,
            identity=_decode(sas.get("BatcherUser"), ""), reason=_decode(memo.get(BATCH_REASON_MEMO), ""),
            query=_decode(memo.get(BATCH_QUERY_MEMO), ""),
        )  # fmt: skip
        for target in _decode(memo.get(BATCH_EXECUTIONS_MEMO), []):
            resp.executions.add(business_id=target.get("businessId", ""), run_id=target.get("runId", ""), type=1)
        if info.status == WS.WORKFLOW_EXECUTION_STATUS_COMPLETED:
            stats = _decode(memo.get(BATCH_STATS_MEMO), {})
            success, failure = int(stats.get("NumSuccess", 0)), int(stats.get("NumFailure", 0))
            resp.total_operation_count, resp.complete_operation_count = success + failure, success
            resp.failure_operation_count = failure
        elif desc.pending_activities and desc.pending_activities[0].heartbeat_details.payloads:
            progress = _decode(desc.pending_activities[0].heartbeat_details.payloads[0], {})
            resp.total_operation_count = int(progress.get("TotalEstimate", 0))
            resp.complete_operation_count = int(progress.get("SuccessCount", 0))
            resp.failure_operation_count = int(progress.get("ErrorCount", 0))
        return resp

    async def ListBatchOperations(
        self, request: wsv.ListBatchOperationsRequest, *, deadline: float | None = None
    ) -> wsv.ListBatchOperationsResponse:
        if not request.namespace:
            raise InvalidArgument("Namespace is not set on request.")
        cfg = self._ctx.config
        size = request.page_size if 0 < request.page_size <= cfg.max_visibility_page_size else cfg.max_visibility_page_size
        page = await self.ListWorkflowExecutions(  # type: ignore[attr-defined]
            wsv.ListWorkflowExecutionsRequest(
                namespace=request.namespace, page_size=size, next_page_token=request.next_page_token,
                query=f"TemporalNamespaceDivision = '{BATCH_NAMESPACE_DIVISION}'",
            ),
            deadline=deadline,
        )
        resp = wsv.ListBatchOperationsResponse(next_page_token=page.next_page_token)
        for e in page.executions:
            resp.operation_info.append(batch_pb.BatchOperationInfo(
                job_id=e.execution.workflow_id, state=_state(e.status),  # type: ignore[arg-type]
                start_time=e.start_time, close_time=e.close_time if e.HasField("close_time") else None,
                operation_type=BATCH_TYPE_BY_MEMO.get(_decode(e.memo.fields.get(BATCH_TYPE_MEMO), ""), 0),  # type: ignore[arg-type]
            ))  # fmt: skip
        return resp

