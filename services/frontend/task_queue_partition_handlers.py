"""ListTaskQueuePartitions: which partitions a task queue has and which matching host owns each."""

from __future__ import annotations

from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv1

from server.common.errors import InvalidArgument
from server.gen.durata.internal.matching.v1 import service_pb2 as ms
from services.frontend.base import HandlerBase
from services.frontend.validation import RESERVED_TASK_QUEUE_PREFIX


class TaskQueuePartitionHandlers(HandlerBase):
    async def ListTaskQueuePartitions(
        self, request: wsv1.ListTaskQueuePartitionsRequest, *, deadline: float | None = None
    ) -> wsv1.ListTaskQueuePartitionsResponse:
        # Temporal checks the queue before the namespace, with its task-queue validator's own texts.
        if not request.HasField("task_queue"):
            raise InvalidArgument("taskQueue is not set")
        name = request.task_queue.name
        if not name:
            raise InvalidArgument("missing task queue name")
        if len(name) > self._ctx.config.max_id_length:
            raise InvalidArgument("taskQueue length exceeds limit")
        if name.startswith(RESERVED_TASK_QUEUE_PREFIX):
            raise InvalidArgument(f"task queue name cannot start with reserved prefix {RESERVED_TASK_QUEUE_PREFIX}")
        entry = await self._ctx.namespaces.by_name(request.namespace)
        internal = ms.ListTaskQueuePartitionsRequest(namespace_id=entry.id, task_queue=request.task_queue)
        return await self._ctx.matching.ListTaskQueuePartitions(internal, deadline=deadline)
