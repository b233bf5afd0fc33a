"""Legacy query tasks waiting for the worker's answer (in memory only, like the real server)."""

from __future__ import annotations

import asyncio

from temporalio.api.query.v1 import message_pb2 as query_pb

from server.cluster.routing import query_id_for_partition
from server.common.errors import InvalidArgument, NotFound
from server.gen.durata.internal.common.v1 import tokens_pb2
from server.gen.durata.internal.matching.v1 import service_pb2 as mpb
from services.matching.tasks import PendingQuery


class QueryRegistry:
    def __init__(self) -> None:
        self._pending: dict[str, PendingQuery] = {}

    def register(self, query: query_pb.WorkflowQuery, partition: int = 0) -> PendingQuery:
        """The query id names the partition (see server.cluster.routing) so the answer finds this host."""
        pending = PendingQuery(
            query_id=query_id_for_partition(partition), query=query, result=asyncio.get_running_loop().create_future()
        )
        self._pending[pending.query_id] = pending
        return pending

    def unregister(self, pending: PendingQuery) -> None:
        self._pending.pop(pending.query_id, None)
        if not pending.result.done():
            pending.result.cancel()

    def answer(self, task_token: bytes, request: mpb.RespondQueryTaskCompletedRequest) -> None:
        """Deliver the worker's answer to the waiting QueryWorkflow call."""
        token = tokens_pb2.QueryTaskToken()
        try:
            token.ParseFromString(task_token)
        except Exception:  # noqa: BLE001 - garbage from a client
            raise InvalidArgument("invalid query task token") from None
        if not token.query_id:
            raise InvalidArgument("invalid query task token")
        pending = self._pending.get(token.query_id)
        if pending is None or pending.result.done():
            raise NotFound(f"query {token.query_id} not found (it may have timed out)")
        public = request.request
        response = mpb.QueryWorkflowResponse(error_message=public.error_message)
        response.completed_type = public.completed_type  # type: ignore[assignment]  # same enum, two stub paths
        if public.HasField("query_result"):
            response.query_result.CopyFrom(public.query_result)
        if public.HasField("failure"):
            response.failure.CopyFrom(public.failure)
        pending.result.set_result(response)

    def fail_all(self, err: Exception) -> None:
        for pending in list(self._pending.values()):
            if not pending.result.done():
                pending.result.set_exception(err)
        self._pending.clear()

    def __len__(self) -> int:
        return len(self._pending)
