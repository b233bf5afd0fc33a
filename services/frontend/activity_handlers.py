"""PauseActivity / UnpauseActivity / ResetActivity at the edge: Temporal's request checks, then History, which
owns the activity state."""

from __future__ import annotations

from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv1

from server.gen.durata.internal.history.v1 import service_pb2 as hs
from services.frontend.base import HandlerBase, log_context
from services.history.api.activity_pause import validate_activity_request


class ActivityHandlers(HandlerBase):
    async def PauseActivity(self, request: wsv1.PauseActivityRequest, *, deadline: float | None = None) -> wsv1.PauseActivityResponse:
        validate_activity_request(request)
        entry = await self._namespace(request.namespace)
        with log_context(namespace=entry.name, workflow_id=request.execution.workflow_id):
            internal = hs.PauseActivityRequest(namespace_id=entry.id, request=request)
            resp: wsv1.PauseActivityResponse = await self._ctx.history.PauseActivity(internal, deadline=deadline)
            return resp

    async def UnpauseActivity(
        self, request: wsv1.UnpauseActivityRequest, *, deadline: float | None = None
    ) -> wsv1.UnpauseActivityResponse:
        validate_activity_request(request)
        entry = await self._namespace(request.namespace)
        with log_context(namespace=entry.name, workflow_id=request.execution.workflow_id):
            internal = hs.UnpauseActivityRequest(namespace_id=entry.id, request=request)
            resp: wsv1.UnpauseActivityResponse = await self._ctx.history.UnpauseActivity(internal, deadline=deadline)
            return resp

    async def ResetActivity(self, request: wsv1.ResetActivityRequest, *, deadline: float | None = None) -> wsv1.ResetActivityResponse:
        validate_activity_request(request)
        entry = await self._namespace(request.namespace)
        with log_context(namespace=entry.name, workflow_id=request.execution.workflow_id):
            internal = hs.ResetActivityRequest(namespace_id=entry.id, request=request)
            resp: wsv1.ResetActivityResponse = await self._ctx.history.ResetActivity(internal, deadline=deadline)
            return resp
