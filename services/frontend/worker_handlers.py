"""Worker registry RPCs: RecordWorkerHeartbeat, ListWorkers, CountWorkers, DescribeWorker (-> Matching, which keeps
the registry in memory on the host owning the namespace; see services/matching/workers.py).

ShutdownWorker (task_handlers.py) records the worker's final heartbeat through the same path.
"""

from __future__ import annotations

from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv1

from server.gen.durata.internal.matching.v1 import service_pb2 as ms
from services.frontend.base import HandlerBase


class WorkerHandlers(HandlerBase):
    async def RecordWorkerHeartbeat(
        self, request: wsv1.RecordWorkerHeartbeatRequest, *, deadline: float | None = None
    ) -> wsv1.RecordWorkerHeartbeatResponse:
        entry = await self._namespace(request.namespace)
        internal = ms.RecordWorkerHeartbeatRequest(namespace_id=entry.id, request=request)
        await self._ctx.matching.RecordWorkerHeartbeat(internal, deadline=deadline)
        return wsv1.RecordWorkerHeartbeatResponse()

    async def ListWorkers(
        self, request: wsv1.ListWorkersRequest, *, deadline: float | None = None
    ) -> wsv1.ListWorkersResponse:
        entry = await self._namespace(request.namespace)
        internal = ms.ListWorkersRequest(namespace_id=entry.id, request=request)
        resp: wsv1.ListWorkersResponse = await self._ctx.matching.ListWorkers(internal, deadline=deadline)
        return resp

    async def CountWorkers(
        self, request: wsv1.CountWorkersRequest, *, deadline: float | None = None
    ) -> wsv1.CountWorkersResponse:
        entry = await self._namespace(request.namespace)
        internal = ms.CountWorkersRequest(namespace_id=entry.id, request=request)
        resp: wsv1.CountWorkersResponse = await self._ctx.matching.CountWorkers(internal, deadline=deadline)
        return resp

    async def DescribeWorker(
        self, request: wsv1.DescribeWorkerRequest, *, deadline: float | None = None
    ) -> wsv1.DescribeWorkerResponse:
        entry = await self._namespace(request.namespace)
        internal = ms.DescribeWorkerRequest(namespace_id=entry.id, request=request)
        resp: wsv1.DescribeWorkerResponse = await self._ctx.matching.DescribeWorker(internal, deadline=deadline)
        return resp
