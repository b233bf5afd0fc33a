"""PauseWorkflowExecution / UnpauseWorkflowExecution at the edge: Temporal's request checks (in its order: pause
looks the namespace up first, unpause checks the request first), then History, which owns the run's state.
Temporal gates pausing behind frontend.WorkflowPauseEnabled (off by default); Durata serves it always."""

from __future__ import annotations

from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv1

from server.gen.durata.internal.history.v1 import service_pb2 as hs
from services.frontend.base import HandlerBase, log_context
from services.history.api.workflow_pause import validate_execution, validate_lengths, validate_request


class WorkflowPauseHandlers(HandlerBase):
    async def PauseWorkflowExecution(
        self, request: wsv1.PauseWorkflowExecutionRequest, *, deadline: float | None = None
    ) -> wsv1.PauseWorkflowExecutionResponse:
        entry = await self._namespace(request.namespace)
        validate_request(request, self._ctx.config.max_id_length)
        with log_context(namespace=entry.name, workflow_id=request.workflow_id):
            internal = hs.PauseWorkflowExecutionRequest(namespace_id=entry.id, request=request)
            resp: wsv1.PauseWorkflowExecutionResponse = await self._ctx.history.PauseWorkflowExecution(
                internal, deadline=deadline
            )
            return resp

    async def UnpauseWorkflowExecution(
        self, request: wsv1.UnpauseWorkflowExecutionRequest, *, deadline: float | None = None
    ) -> wsv1.UnpauseWorkflowExecutionResponse:
        validate_lengths(request, self._ctx.config.max_id_length)
        entry = await self._namespace(request.namespace)
        validate_execution(request)
        with log_context(namespace=entry.name, workflow_id=request.workflow_id):
            internal = hs.UnpauseWorkflowExecutionRequest(namespace_id=entry.id, request=request)
            resp: wsv1.UnpauseWorkflowExecutionResponse = await self._ctx.history.UnpauseWorkflowExecution(
                internal, deadline=deadline
            )
            return resp
