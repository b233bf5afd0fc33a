"""Worker RPCs: task polls (-> Matching), task completions and heartbeats (-> History, routed by the task token),
query answers, ShutdownWorker and DescribeTaskQueue.
"""

from __future__ import annotations

import asyncio
import uuid

from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv1

from server.common.errors import DeadlineExceeded, ServiceError
from server.gen.durata.internal.history.v1 import service_pb2 as hs
from server.gen.durata.internal.matching.v1 import service_pb2 as ms
from services.frontend.base import HandlerBase, log, log_context
from services.frontend.namespace_registry import NamespaceEntry
from services.frontend.tokens import ACTIVITY_TASK, WORKFLOW_TASK, decode_query_task_token, decode_task_token
from services.frontend.validation import (
    check_blob_size,
    check_id,
    check_optional_ids,
    check_poll_deadline,
    check_run_id,
    check_task_queue,
    payloads_size,
)


class TaskHandlers(HandlerBase):
    async def _token_namespace(self, request_namespace: str, task_token: bytes, kind: int) -> NamespaceEntry:
        token = decode_task_token(task_token, kind=kind)
        return await self._namespace_for_token(request_namespace, token.namespace_id)

    async def _by_id_namespace(self, request) -> NamespaceEntry:  # noqa: ANN001 - any ...ById request
        entry = await self._namespace(request.namespace)
        cfg = self._ctx.config
        check_id(request.workflow_id, "WorkflowId", cfg)
        check_run_id(request.run_id)
        check_id(request.activity_id, "ActivityId", cfg)
        check_optional_ids(cfg, Identity=request.identity)
        return entry

    # ------------------------------------------------------------------ polls

    async def PollWorkflowTaskQueue(
        self, request: wsv1.PollWorkflowTaskQueueRequest, *, deadline: float | None = None
    ) -> wsv1.PollWorkflowTaskQueueResponse:
        check_poll_deadline(deadline)
        entry = await self._namespace(request.namespace)
        check_task_queue(request.task_queue, request.HasField("task_queue"), self._ctx.config)
        check_optional_ids(self._ctx.config, Identity=request.identity)
        internal = ms.PollWorkflowTaskQueueRequest(
            namespace_id=entry.id, poller_id=uuid.uuid4().hex, poll_request=request
        )
        poll_deadline = self._ctx.long_poll_deadline(deadline, self._ctx.config.task_poll_budget_seconds)
        try:
            return await self._ctx.matching.PollWorkflowTaskQueue(internal, deadline=poll_deadline)
        except DeadlineExceeded:
            # An all-default response is how a poll says "nothing this time"; core re-polls quietly.
            return wsv1.PollWorkflowTaskQueueResponse()

    async def PollActivityTaskQueue(
        self, request: wsv1.PollActivityTaskQueueRequest, *, deadline: float | None = None
    ) -> wsv1.PollActivityTaskQueueResponse:
        check_poll_deadline(deadline)
        entry = await self._namespace(request.namespace)
        check_task_queue(request.task_queue, request.HasField("task_queue"), self._ctx.config)
        check_optional_ids(self._ctx.config, Identity=request.identity)
        internal = ms.PollActivityTaskQueueRequest(
            namespace_id=entry.id, poller_id=uuid.uuid4().hex, poll_request=request
        )
        poll_deadline = self._ctx.long_poll_deadline(deadline, self._ctx.config.task_poll_budget_seconds)
        try:
            return await self._ctx.matching.PollActivityTaskQueue(internal, deadline=poll_deadline)
        except DeadlineExceeded:
            return wsv1.PollActivityTaskQueueResponse()

    # ------------------------------------------------------------------ workflow task completions

    async def RespondWorkflowTaskCompleted(
        self, request: wsv1.RespondWorkflowTaskCompletedRequest, *, deadline: float | None = None
    ) -> wsv1.RespondWorkflowTaskCompletedResponse:
        token = decode_task_token(request.task_token, kind=WORKFLOW_TASK)
        entry = await self._namespace_for_token(request.namespace, token.namespace_id)
        cfg = self._ctx.config
        check_optional_ids(cfg, Identity=request.identity)
        if request.HasField("sticky_attributes"):
            check_id(request.sticky_attributes.worker_task_queue.name, "StickyTaskQueue", cfg, required=False)
        internal = hs.RespondWorkflowTaskCompletedRequest(namespace_id=entry.id, request=request)
        with log_context(namespace=entry.name, workflow_id=token.workflow_id, run_id=token.run_id):
            return await self._ctx.history.RespondWorkflowTaskCompleted(internal, deadline=deadline)

    async def RespondWorkflowTaskFailed(
        self, request: wsv1.RespondWorkflowTaskFailedRequest, *, deadline: float | None = None
    ) -> wsv1.RespondWorkflowTaskFailedResponse:
        token = decode_task_token(request.task_token, kind=WORKFLOW_TASK)
        entry = await self._namespace_for_token(request.namespace, token.namespace_id)
        check_optional_ids(self._ctx.config, Identity=request.identity)
        internal = hs.RespondWorkflowTaskFailedRequest(namespace_id=entry.id, request=request)
        with log_context(namespace=entry.name, workflow_id=token.workflow_id, run_id=token.run_id):
            return await self._ctx.history.RespondWorkflowTaskFailed(internal, deadline=deadline)

    # ------------------------------------------------------------------ activity completions (token and ById)

    async def RespondActivityTaskCompleted(
        self, request: wsv1.RespondActivityTaskCompletedRequest, *, deadline: float | None = None
    ) -> wsv1.RespondActivityTaskCompletedResponse:
        entry = await self._token_namespace(request.namespace, request.task_token, ACTIVITY_TASK)
        check_optional_ids(self._ctx.config, Identity=request.identity)
        check_blob_size(payloads_size(request.result.payloads), "Result", self._ctx.config)
        internal = hs.RespondActivityTaskCompletedRequest(namespace_id=entry.id, request=request)
        return await self._ctx.history.RespondActivityTaskCompleted(internal, deadline=deadline)

    async def RespondActivityTaskCompletedById(
        self, request: wsv1.RespondActivityTaskCompletedByIdRequest, *, deadline: float | None = None
    ) -> wsv1.RespondActivityTaskCompletedByIdResponse:
        entry = await self._by_id_namespace(request)
        check_blob_size(payloads_size(request.result.payloads), "Result", self._ctx.config)
        internal = hs.RespondActivityTaskCompletedRequest(namespace_id=entry.id, by_id_request=request)
        with log_context(namespace=entry.name, workflow_id=request.workflow_id):
            await self._ctx.history.RespondActivityTaskCompleted(internal, deadline=deadline)
        return wsv1.RespondActivityTaskCompletedByIdResponse()

    async def RespondActivityTaskFailed(
        self, request: wsv1.RespondActivityTaskFailedRequest, *, deadline: float | None = None
    ) -> wsv1.RespondActivityTaskFailedResponse:
        entry = await self._token_namespace(request.namespace, request.task_token, ACTIVITY_TASK)
        check_optional_ids(self._ctx.config, Identity=request.identity)
        check_blob_size(
            payloads_size(request.last_heartbeat_details.payloads), "LastHeartbeatDetails", self._ctx.config
        )
        internal = hs.RespondActivityTaskFailedRequest(namespace_id=entry.id, request=request)
        return await self._ctx.history.RespondActivityTaskFailed(internal, deadline=deadline)

    async def RespondActivityTaskFailedById(
        self, request: wsv1.RespondActivityTaskFailedByIdRequest, *, deadline: float | None = None
    ) -> wsv1.RespondActivityTaskFailedByIdResponse:
        entry = await self._by_id_namespace(request)
        check_blob_size(
            payloads_size(request.last_heartbeat_details.payloads), "LastHeartbeatDetails", self._ctx.config
        )
        internal = hs.RespondActivityTaskFailedRequest(namespace_id=entry.id, by_id_request=request)
        with log_context(namespace=entry.name, workflow_id=request.workflow_id):
            resp = await self._ctx.history.RespondActivityTaskFailed(internal, deadline=deadline)
        return wsv1.RespondActivityTaskFailedByIdResponse(failures=resp.failures)

    async def RespondActivityTaskCanceled(
        self, request: wsv1.RespondActivityTaskCanceledRequest, *, deadline: float | None = None
    ) -> wsv1.RespondActivityTaskCanceledResponse:
        entry = await self._token_namespace(request.namespace, request.task_token, ACTIVITY_TASK)
        check_optional_ids(self._ctx.config, Identity=request.identity)
        check_blob_size(payloads_size(request.details.payloads), "Details", self._ctx.config)
        internal = hs.RespondActivityTaskCanceledRequest(namespace_id=entry.id, request=request)
        return await self._ctx.history.RespondActivityTaskCanceled(internal, deadline=deadline)

    async def RespondActivityTaskCanceledById(
        self, request: wsv1.RespondActivityTaskCanceledByIdRequest, *, deadline: float | None = None
    ) -> wsv1.RespondActivityTaskCanceledByIdResponse:
        entry = await self._by_id_namespace(request)
        check_blob_size(payloads_size(request.details.payloads), "Details", self._ctx.config)
        internal = hs.RespondActivityTaskCanceledRequest(namespace_id=entry.id, by_id_request=request)
        with log_context(namespace=entry.name, workflow_id=request.workflow_id):
            await self._ctx.history.RespondActivityTaskCanceled(internal, deadline=deadline)
        return wsv1.RespondActivityTaskCanceledByIdResponse()

    async def RecordActivityTaskHeartbeat(
        self, request: wsv1.RecordActivityTaskHeartbeatRequest, *, deadline: float | None = None
    ) -> wsv1.RecordActivityTaskHeartbeatResponse:
        entry = await self._token_namespace(request.namespace, request.task_token, ACTIVITY_TASK)
        check_optional_ids(self._ctx.config, Identity=request.identity)
        check_blob_size(payloads_size(request.details.payloads), "Details", self._ctx.config)
        internal = hs.RecordActivityTaskHeartbeatRequest(namespace_id=entry.id, request=request)
        return await self._ctx.history.RecordActivityTaskHeartbeat(internal, deadline=deadline)

    async def RecordActivityTaskHeartbeatById(
        self, request: wsv1.RecordActivityTaskHeartbeatByIdRequest, *, deadline: float | None = None
    ) -> wsv1.RecordActivityTaskHeartbeatByIdResponse:
        entry = await self._by_id_namespace(request)
        check_blob_size(payloads_size(request.details.payloads), "Details", self._ctx.config)
        internal = hs.RecordActivityTaskHeartbeatRequest(namespace_id=entry.id, by_id_request=request)
        with log_context(namespace=entry.name, workflow_id=request.workflow_id):
            resp = await self._ctx.history.RecordActivityTaskHeartbeat(internal, deadline=deadline)
        return wsv1.RecordActivityTaskHeartbeatByIdResponse(
            cancel_requested=resp.cancel_requested,
            activity_paused=resp.activity_paused,
            activity_reset=resp.activity_reset,
        )

    # ------------------------------------------------------------------ queries, worker lifecycle, task queues

    async def RespondQueryTaskCompleted(
        self, request: wsv1.RespondQueryTaskCompletedRequest, *, deadline: float | None = None
    ) -> wsv1.RespondQueryTaskCompletedResponse:
        token = decode_query_task_token(request.task_token)
        entry = await self._namespace_for_token(request.namespace, token.namespace_id)
        check_blob_size(payloads_size(request.query_result.payloads), "QueryResult", self._ctx.config)
        internal = ms.RespondQueryTaskCompletedRequest(namespace_id=entry.id, request=request)
        await self._ctx.matching.RespondQueryTaskCompleted(internal, deadline=deadline)
        return wsv1.RespondQueryTaskCompletedResponse()

    async def ShutdownWorker(
        self, request: wsv1.ShutdownWorkerRequest, *, deadline: float | None = None
    ) -> wsv1.ShutdownWorkerResponse:
        """Best effort: a worker shutting down must never fail because of this call. Ends the worker's parked
        polls (by worker_instance_key, else identity), forgets its sticky queue, records its final heartbeat."""
        try:
            entry = await self._namespace(request.namespace)
            internal = ms.CancelOutstandingPollsRequest(
                namespace_id=entry.id,
                identity=request.identity,
                sticky_task_queue=request.sticky_task_queue,
                worker_instance_key=request.worker_instance_key,
            )
            if request.HasField("worker_heartbeat"):
                final = wsv1.RecordWorkerHeartbeatRequest(
                    namespace=request.namespace, identity=request.identity, worker_heartbeat=[request.worker_heartbeat]
                )
                heartbeat = ms.RecordWorkerHeartbeatRequest(namespace_id=entry.id, request=final)
                results = await asyncio.gather(
                    self._ctx.matching.CancelOutstandingPolls(internal, deadline=deadline),
                    self._ctx.matching.RecordWorkerHeartbeat(heartbeat, deadline=deadline),
                    return_exceptions=True,
                )
                for result in results:
                    if isinstance(result, BaseException):
                        raise result
            else:
                await self._ctx.matching.CancelOutstandingPolls(internal, deadline=deadline)
        except ServiceError as err:
            log.warning(
                "ShutdownWorker could not cancel polls", namespace=request.namespace, error=err.message
            )
        except Exception:
            log.exception("ShutdownWorker could not cancel polls", namespace=request.namespace)
        return wsv1.ShutdownWorkerResponse()

    async def DescribeTaskQueue(
        self, request: wsv1.DescribeTaskQueueRequest, *, deadline: float | None = None
    ) -> wsv1.DescribeTaskQueueResponse:
        entry = await self._namespace(request.namespace)
        check_task_queue(request.task_queue, request.HasField("task_queue"), self._ctx.config)
        internal = ms.DescribeTaskQueueRequest(namespace_id=entry.id, request=request)
        return await self._ctx.matching.DescribeTaskQueue(internal, deadline=deadline)
