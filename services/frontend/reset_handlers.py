"""ResetWorkflowExecution at the edge: reject what is malformed on its face, then hand to History, which owns
every decision about the run (event id rules, request-id dedup, termination of the current run)."""

from __future__ import annotations

from temporalio.api.enums.v1 import reset_pb2 as reset_enums
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv1

from server.common.errors import InvalidArgument
from server.gen.durata.internal.history.v1 import service_pb2 as hs
from services.frontend.base import HandlerBase, log_context
from services.frontend.config import FrontendConfig
from services.frontend.validation import check_execution, check_optional_ids


def validate_reset(request: wsv1.ResetWorkflowExecutionRequest, cfg: FrontendConfig) -> None:
    """Temporal's frontend checks, in its order and with its messages."""
    if not request.request_id:
        raise InvalidArgument("RequestId is not set on request.")
    if len(request.request_id) > cfg.max_id_length:
        raise InvalidArgument("RequestId length exceeds limit.")
    check_execution(request.workflow_execution, cfg, present=request.HasField("workflow_execution"))
    if request.reset_reapply_type not in reset_enums.ResetReapplyType.values():
        # Temporal answers INTERNAL here; a client's bad enum is its mistake, so Durata says INVALID_ARGUMENT.
        raise InvalidArgument(f"unknown reset reapply type: {request.reset_reapply_type}")
    for x in request.reset_reapply_exclude_types:
        if x not in reset_enums.ResetReapplyExcludeType.values():
            raise InvalidArgument(f"Invalid reset reapply exclude type: {x}")
    check_optional_ids(cfg, Identity=request.identity)


class ResetHandlers(HandlerBase):
    async def ResetWorkflowExecution(
        self, request: wsv1.ResetWorkflowExecutionRequest, *, deadline: float | None = None
    ) -> wsv1.ResetWorkflowExecutionResponse:
        entry = await self._namespace(request.namespace)
        cfg = self._ctx.config
        validate_reset(request, cfg)
        internal = hs.ResetWorkflowExecutionRequest(namespace_id=entry.id, request=request)
        with log_context(namespace=entry.name, workflow_id=request.workflow_execution.workflow_id):
            resp: wsv1.ResetWorkflowExecutionResponse = await self._ctx.history.ResetWorkflowExecution(internal, deadline=deadline)
            return resp
