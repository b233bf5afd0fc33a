"""UpdateActivityOptions / UpdateWorkflowExecutionOptions at the edge: Temporal's request checks, then History,
which owns the run's state. UpdateActivityExecutionOptions (what ``temporal activity update-options`` sends) is
served for a workflow's activity (workflow_id set) as Temporal does, through UpdateActivityOptions; for a
standalone activity it answers as Temporal with standalone activities disabled."""

from __future__ import annotations

import uuid

from temporalio.api.common.v1 import message_pb2 as common_pb2
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv1

from server.common.errors import InvalidArgument, Unimplemented
from server.gen.durata.internal.history.v1 import service_pb2 as hs
from services.frontend.base import HandlerBase, log_context
from services.frontend.config import FrontendConfig
from services.frontend.validation import check_versioning_override
from services.history.api import activity_options, workflow_options


class OptionsHandlers(HandlerBase):
    async def UpdateActivityOptions(
        self, request: wsv1.UpdateActivityOptionsRequest, *, deadline: float | None = None
    ) -> wsv1.UpdateActivityOptionsResponse:
        activity_options.validate_request(request)
        entry = await self._namespace(request.namespace)
        with log_context(namespace=entry.name, workflow_id=request.execution.workflow_id):
            internal = hs.UpdateActivityOptionsRequest(namespace_id=entry.id, request=request)
            resp: wsv1.UpdateActivityOptionsResponse = await self._ctx.history.UpdateActivityOptions(internal, deadline=deadline)
            return resp

    async def UpdateWorkflowExecutionOptions(
        self, request: wsv1.UpdateWorkflowExecutionOptionsRequest, *, deadline: float | None = None
    ) -> wsv1.UpdateWorkflowExecutionOptionsResponse:
        workflow_options.validate_request(request)
        override = request.workflow_execution_options.versioning_override
        if request.workflow_execution_options.HasField("versioning_override") and not (
            override.HasField("pinned") and not override.pinned.HasField("version")  # History answers that one
        ):
            check_versioning_override(override)
        entry = await self._namespace(request.namespace)
        with log_context(namespace=entry.name, workflow_id=request.workflow_execution.workflow_id):
            internal = hs.UpdateWorkflowExecutionOptionsRequest(namespace_id=entry.id, request=request)
            resp: wsv1.UpdateWorkflowExecutionOptionsResponse = await self._ctx.history.UpdateWorkflowExecutionOptions(
                internal, deadline=deadline
            )
            return resp

    async def UpdateActivityExecutionOptions(
        self, request: wsv1.UpdateActivityExecutionOptionsRequest, *, deadline: float | None = None
    ) -> wsv1.UpdateActivityExecutionOptionsResponse:
        if not request.workflow_id:
            raise Unimplemented("Standalone activity is disabled")
        validate_execution_options_request(request, self._ctx.config)
        inner = wsv1.UpdateActivityOptionsRequest(
            namespace=request.namespace,
            execution=common_pb2.WorkflowExecution(workflow_id=request.workflow_id, run_id=request.run_id),
            identity=request.identity,
            id=request.activity_id,
            restore_original=request.restore_original,
            activity_options=request.activity_options if request.HasField("activity_options") else None,
            update_mask=request.update_mask if request.HasField("update_mask") else None,
        )
        resp = await self.UpdateActivityOptions(inner, deadline=deadline)
        return wsv1.UpdateActivityExecutionOptionsResponse(activity_options=resp.activity_options)


_SUPPORTED_PATHS = {
    "taskQueue.name", "scheduleToCloseTimeout", "scheduleToStartTimeout", "startToCloseTimeout", "heartbeatTimeout",
    "priority", "priority.priorityKey", "priority.fairnessKey", "priority.fairnessWeight", "retryPolicy",
    "retryPolicy.initialInterval", "retryPolicy.backoffCoefficient", "retryPolicy.maximumInterval",
    "retryPolicy.maximumAttempts", "startDelay",
}


def validate_execution_options_request(req: wsv1.UpdateActivityExecutionOptionsRequest, config: FrontendConfig) -> None:
    """Temporal's checks of an UpdateActivityExecutionOptions request, before it becomes UpdateActivityOptions
    (the values themselves are checked again, merged, by History)."""
    limit = config.max_id_length
    if len(req.request_id) > limit:
        raise InvalidArgument(f"request ID exceeds length limit. Length={len(req.request_id)} Limit={limit}")
    if not req.activity_id:
        raise InvalidArgument("activity ID is required")
    if len(req.activity_id) > limit:
        raise InvalidArgument(f"activity ID exceeds length limit. Length={len(req.activity_id)} Limit={limit}")
    if len(req.identity) > limit:
        raise InvalidArgument(f"identity exceeds length limit. Length={len(req.identity)} Limit={limit}")
    if req.run_id:
        try:
            uuid.UUID(req.run_id)
        except ValueError:
            raise InvalidArgument("invalid run id: must be a valid UUID") from None
    if req.update_mask.paths and req.restore_original:
        raise InvalidArgument(activity_options.BOTH_MASK_AND_RESTORE)
    if req.restore_original:
        return
    if not req.HasField("activity_options"):
        raise InvalidArgument("ActivityOptions are not provided")
    if not req.HasField("update_mask"):
        raise InvalidArgument("UpdateMask is not provided")
    if not req.update_mask.paths:
        raise InvalidArgument("UpdateMask must specify at least one path")
    for path in req.update_mask.paths:
        if not activity_options.parse_mask([path]) <= _SUPPORTED_PATHS:
            raise InvalidArgument(f'unsupported update_mask path: "{path}"')
