"""Client RPCs about one workflow execution: validate, resolve the namespace, hand to History.

History owns every decision that depends on the run; these methods only reject what is malformed on its face and
wrap the public request with the namespace id (the internal request messages).
"""

from __future__ import annotations

import uuid

from temporalio.api.enums.v1 import query_pb2 as query_enums
from temporalio.api.enums.v1 import update_pb2 as update_enums
from temporalio.api.enums.v1 import workflow_pb2 as wf_enums
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv1

from server.common.errors import InvalidArgument
from server.gen.durata.internal.history.v1 import service_pb2 as hs
from server.rpc.adapters import request_header
from services.frontend.base import HandlerBase, log_context
from services.frontend.search_attributes import apply_types, check_search_attributes
from services.frontend.validation import (
    check_blob_size,
    check_execution,
    check_id,
    check_links,
    check_optional_ids,
    check_run_id,
    payloads_size,
    validate_start,
    validate_update,
)

_FILTER_TYPES = set(wf_enums.HistoryEventFilterType.values())
_REJECT_CONDITIONS = set(query_enums.QueryRejectCondition.values())
_UPDATE_STAGES = set(update_enums.UpdateWorkflowExecutionLifecycleStage.values())


class WorkflowHandlers(HandlerBase):
    async def StartWorkflowExecution(
        self, request: wsv1.StartWorkflowExecutionRequest, *, deadline: float | None = None
    ) -> wsv1.StartWorkflowExecutionResponse:
        entry = await self._namespace(request.namespace)
        validate_start(request, self._ctx.config)
        await check_search_attributes(self._ctx.namespaces, entry, request.search_attributes)
        internal = hs.StartWorkflowExecutionRequest(namespace_id=entry.id, request=request)
        if not internal.request.request_id:
            # Direct API users may omit it; SDKs always send one so their retries stay idempotent.
            internal.request.request_id = str(uuid.uuid4())
        with log_context(namespace=entry.name, workflow_id=request.workflow_id):
            return await self._ctx.history.StartWorkflowExecution(internal, deadline=deadline)

    async def SignalWithStartWorkflowExecution(
        self, request: wsv1.SignalWithStartWorkflowExecutionRequest, *, deadline: float | None = None
    ) -> wsv1.SignalWithStartWorkflowExecutionResponse:
        entry = await self._namespace(request.namespace)
        validate_start(request, self._ctx.config)
        await check_search_attributes(self._ctx.namespaces, entry, request.search_attributes)
        internal = hs.SignalWithStartWorkflowExecutionRequest(namespace_id=entry.id, request=request)
        if not internal.request.request_id:
            internal.request.request_id = str(uuid.uuid4())
        with log_context(namespace=entry.name, workflow_id=request.workflow_id):
            return await self._ctx.history.SignalWithStartWorkflowExecution(internal, deadline=deadline)

    async def SignalWorkflowExecution(
        self, request: wsv1.SignalWorkflowExecutionRequest, *, deadline: float | None = None
    ) -> wsv1.SignalWorkflowExecutionResponse:
        entry = await self._namespace(request.namespace)
        cfg = self._ctx.config
        check_execution(request.workflow_execution, cfg, present=request.HasField("workflow_execution"))
        check_id(request.signal_name, "SignalName", cfg)
        check_optional_ids(cfg, Identity=request.identity, RequestId=request.request_id)
        check_blob_size(payloads_size(request.input.payloads), "Input", cfg)
        check_links(request.links)
        internal = hs.SignalWorkflowExecutionRequest(namespace_id=entry.id, request=request)
        with log_context(namespace=entry.name, workflow_id=request.workflow_execution.workflow_id):
            return await self._ctx.history.SignalWorkflowExecution(internal, deadline=deadline)

    async def RequestCancelWorkflowExecution(
        self, request: wsv1.RequestCancelWorkflowExecutionRequest, *, deadline: float | None = None
    ) -> wsv1.RequestCancelWorkflowExecutionResponse:
        entry = await self._namespace(request.namespace)
        cfg = self._ctx.config
        check_execution(request.workflow_execution, cfg, present=request.HasField("workflow_execution"))
        check_optional_ids(cfg, Identity=request.identity, RequestId=request.request_id)
        check_run_id(request.first_execution_run_id)
        check_links(request.links)
        internal = hs.RequestCancelWorkflowExecutionRequest(namespace_id=entry.id, request=request)
        with log_context(namespace=entry.name, workflow_id=request.workflow_execution.workflow_id):
            return await self._ctx.history.RequestCancelWorkflowExecution(internal, deadline=deadline)

    async def TerminateWorkflowExecution(
        self, request: wsv1.TerminateWorkflowExecutionRequest, *, deadline: float | None = None
    ) -> wsv1.TerminateWorkflowExecutionResponse:
        entry = await self._namespace(request.namespace)
        cfg = self._ctx.config
        check_execution(request.workflow_execution, cfg, present=request.HasField("workflow_execution"))
        check_optional_ids(cfg, Identity=request.identity)
        check_run_id(request.first_execution_run_id)
        check_blob_size(payloads_size(request.details.payloads), "Details", cfg)
        check_links(request.links)
        internal = hs.TerminateWorkflowExecutionRequest(namespace_id=entry.id, request=request)
        with log_context(namespace=entry.name, workflow_id=request.workflow_execution.workflow_id):
            return await self._ctx.history.TerminateWorkflowExecution(internal, deadline=deadline)

    async def DeleteWorkflowExecution(
        self, request: wsv1.DeleteWorkflowExecutionRequest, *, deadline: float | None = None
    ) -> wsv1.DeleteWorkflowExecutionResponse:
        entry = await self._namespace(request.namespace)
        check_execution(
            request.workflow_execution, self._ctx.config, present=request.HasField("workflow_execution")
        )
        internal = hs.DeleteWorkflowExecutionRequest(namespace_id=entry.id, request=request)
        with log_context(namespace=entry.name, workflow_id=request.workflow_execution.workflow_id):
            return await self._ctx.history.DeleteWorkflowExecution(internal, deadline=deadline)

    async def DescribeWorkflowExecution(
        self, request: wsv1.DescribeWorkflowExecutionRequest, *, deadline: float | None = None
    ) -> wsv1.DescribeWorkflowExecutionResponse:
        entry = await self._namespace(request.namespace)
        check_execution(request.execution, self._ctx.config, present=request.HasField("execution"))
        internal = hs.DescribeWorkflowExecutionRequest(namespace_id=entry.id, request=request)
        with log_context(namespace=entry.name, workflow_id=request.execution.workflow_id):
            resp = await self._ctx.history.DescribeWorkflowExecution(internal, deadline=deadline)
        aliases = dict(entry.description.config.custom_search_attribute_aliases)
        apply_types(resp.workflow_execution_info.search_attributes, aliases)  # Temporal's ApplyTypeMap
        return resp

    async def ResetStickyTaskQueue(
        self, request: wsv1.ResetStickyTaskQueueRequest, *, deadline: float | None = None
    ) -> wsv1.ResetStickyTaskQueueResponse:
        entry = await self._namespace(request.namespace)
        check_execution(request.execution, self._ctx.config, present=request.HasField("execution"))
        internal = hs.ResetStickyTaskQueueRequest(namespace_id=entry.id, request=request)
        with log_context(namespace=entry.name, workflow_id=request.execution.workflow_id):
            return await self._ctx.history.ResetStickyTaskQueue(internal, deadline=deadline)

    async def GetWorkflowExecutionHistory(
        self, request: wsv1.GetWorkflowExecutionHistoryRequest, *, deadline: float | None = None
    ) -> wsv1.GetWorkflowExecutionHistoryResponse:
        entry = await self._namespace(request.namespace)
        check_execution(request.execution, self._ctx.config, present=request.HasField("execution"))
        if request.maximum_page_size < 0:
            raise InvalidArgument("MaximumPageSize cannot be negative.")
        if request.history_event_filter_type not in _FILTER_TYPES:
            raise InvalidArgument(f"Unknown HistoryEventFilterType {request.history_event_filter_type}.")
        internal = hs.GetWorkflowExecutionHistoryRequest(
            namespace_id=entry.id, request=request, client_name=request_header("client-name")
        )
        if request.wait_new_event:
            # Long poll: answer within our budget and before the client's deadline.
            deadline = self._ctx.long_poll_deadline(
                deadline, self._ctx.config.history_long_poll_budget_seconds
            )
        with log_context(namespace=entry.name, workflow_id=request.execution.workflow_id):
            return await self._ctx.history.GetWorkflowExecutionHistory(internal, deadline=deadline)

    async def QueryWorkflow(
        self, request: wsv1.QueryWorkflowRequest, *, deadline: float | None = None
    ) -> wsv1.QueryWorkflowResponse:
        entry = await self._namespace(request.namespace)
        cfg = self._ctx.config
        check_execution(request.execution, cfg, present=request.HasField("execution"))
        if not request.HasField("query"):
            raise InvalidArgument("WorkflowQuery is not set on request.")
        check_id(request.query.query_type, "QueryType", cfg)
        check_blob_size(payloads_size(request.query.query_args.payloads), "QueryArgs", cfg)
        if request.query_reject_condition not in _REJECT_CONDITIONS:
            raise InvalidArgument(f"Unknown QueryRejectCondition {request.query_reject_condition}.")
        internal = hs.QueryWorkflowRequest(namespace_id=entry.id, request=request)
        with log_context(namespace=entry.name, workflow_id=request.execution.workflow_id):
            return await self._ctx.history.QueryWorkflow(internal, deadline=deadline)

    async def UpdateWorkflowExecution(
        self, request: wsv1.UpdateWorkflowExecutionRequest, *, deadline: float | None = None
    ) -> wsv1.UpdateWorkflowExecutionResponse:
        entry = await self._namespace(request.namespace)
        cfg = self._ctx.config
        validate_update(request, cfg)
        if request.wait_policy.lifecycle_stage not in _UPDATE_STAGES:
            raise InvalidArgument(f"Unknown UpdateWorkflowExecutionLifecycleStage {request.wait_policy.lifecycle_stage}.")
        internal = hs.UpdateWorkflowExecutionRequest(namespace_id=entry.id, request=request)
        with log_context(namespace=entry.name, workflow_id=request.workflow_execution.workflow_id):
            return await self._ctx.history.UpdateWorkflowExecution(internal, deadline=deadline)

    async def PollWorkflowExecutionUpdate(
        self, request: wsv1.PollWorkflowExecutionUpdateRequest, *, deadline: float | None = None
    ) -> wsv1.PollWorkflowExecutionUpdateResponse:
        entry = await self._namespace(request.namespace)
        cfg = self._ctx.config
        ref = request.update_ref
        if not request.HasField("update_ref"):
            raise InvalidArgument("UpdateRef is not set on request.")
        check_execution(ref.workflow_execution, cfg, present=ref.HasField("workflow_execution"))
        check_id(ref.update_id, "UpdateId", cfg)
        check_optional_ids(cfg, Identity=request.identity)
        if request.wait_policy.lifecycle_stage not in _UPDATE_STAGES:
            raise InvalidArgument(f"Unknown UpdateWorkflowExecutionLifecycleStage {request.wait_policy.lifecycle_stage}.")
        internal = hs.PollWorkflowExecutionUpdateRequest(namespace_id=entry.id, request=request)
        with log_context(namespace=entry.name, workflow_id=ref.workflow_execution.workflow_id):
            return await self._ctx.history.PollWorkflowExecutionUpdate(internal, deadline=deadline)
