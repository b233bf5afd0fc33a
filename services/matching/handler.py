"""MatchingService RPC handler: validates internal requests and drives task queues and History handshakes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
import structlog
from temporalio.api.common.v1 import message_pb2 as common_pb
from temporalio.api.enums.v1 import task_queue_pb2 as tq_enums
from temporalio.api.taskqueue.v1 import message_pb2 as tq_pb
from temporalio.api.worker.v1 import message_pb2 as worker_pb
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv

from server.cluster.ring import partition_rpc_name
from server.common.errors import DeadlineExceeded, FailedPrecondition, InvalidArgument, ServiceError
from server.gen.durata.internal.history.v1 import service_pb2 as hpb
from server.gen.durata.internal.matching.v1 import service_pb2 as mpb
from server.persistence.interface import TaskQueueKey
from services.matching import metrics
from services.matching.describe import describe_task_queue
from services.matching.task_queue import STICKY_UNAVAILABLE, TaskQueueManager, new_task_info
from services.matching.tasks import MatchTask, TaskSource
from services.matching.workers import REGISTRY_QUEUE_NAME, list_info

if TYPE_CHECKING:
    from services.matching.service import MatchingService

log = structlog.get_logger("durata.matching")

WORKFLOW = tq_enums.TASK_QUEUE_TYPE_WORKFLOW
ACTIVITY = tq_enums.TASK_QUEUE_TYPE_ACTIVITY
STICKY = tq_enums.TASK_QUEUE_KIND_STICKY

# History's answers that mean "this task is stale or a duplicate": drop it and keep polling.
STALE_CODES = frozenset(
    {grpc.StatusCode.NOT_FOUND, grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.FAILED_PRECONDITION}
)

R = TypeVar("R")


def _queue_name(task_queue: tq_pb.TaskQueue) -> str:
    if not task_queue.name:
        raise InvalidArgument("Missing task queue name.")
    if len(task_queue.name) > 1000:
        raise InvalidArgument("Task queue name exceeds length limit of 1000.")
    return task_queue.name


def _check_execution(namespace_id: str, execution: common_pb.WorkflowExecution) -> None:
    if not namespace_id:
        raise InvalidArgument("namespace_id is required")
    if not execution.workflow_id or not execution.run_id:
        raise InvalidArgument("workflow execution with workflow_id and run_id is required")


class MatchingHandler:
    def __init__(self, service: MatchingService) -> None:
        self._svc = service

    # ------------------------------------------------------------------ adding tasks

    async def AddWorkflowTask(
        self, request: mpb.AddWorkflowTaskRequest, *, deadline: float | None = None
    ) -> mpb.AddWorkflowTaskResponse:
        await self._add(request, WORKFLOW)
        return mpb.AddWorkflowTaskResponse()

    async def AddActivityTask(
        self, request: mpb.AddActivityTaskRequest, *, deadline: float | None = None
    ) -> mpb.AddActivityTaskResponse:
        await self._add(request, ACTIVITY)
        return mpb.AddActivityTaskResponse()

    async def _add(
        self, request: mpb.AddWorkflowTaskRequest | mpb.AddActivityTaskRequest, task_type: int
    ) -> None:
        _check_execution(request.namespace_id, request.execution)
        name = _queue_name(request.task_queue)
        sticky = request.task_queue.kind == STICKY
        key = TaskQueueKey(request.namespace_id, name, task_type, 0 if sticky else request.partition)
        self._svc.check_owner(key)
        if sticky:
            # A sticky queue nobody polls on this host is not worth queueing on: History falls back to normal.
            mgr = self._svc.loaded(key)
            if mgr is None:
                metrics.TASKS_ADDED.labels(metrics.task_type_label(task_type), "sticky_unavailable").inc()
                raise _sticky_unavailable()
        else:
            mgr = await self._svc.get_manager(key, sticky=False)
            if not mgr.waiting_pollers():
                # A poller parked on another partition of this queue on this host takes it at no cost.
                mgr = next((m for m in self._svc.siblings(key) if m.waiting_pollers()), mgr)
        timeout = request.schedule_to_start_timeout.ToTimedelta().total_seconds()
        info = new_task_info(
            request.namespace_id,
            request.execution.workflow_id,
            request.execution.run_id,
            request.scheduled_event_id,
            request.attempt,
            request.stamp,
            self._svc.clock.now(),
            timeout,
        )
        await mgr.add_task(info)

    # ------------------------------------------------------------------ polling

    async def PollWorkflowTaskQueue(
        self, request: mpb.PollWorkflowTaskQueueRequest, *, deadline: float | None = None
    ) -> wsv.PollWorkflowTaskQueueResponse:
        poll = request.poll_request
        name = _queue_name(poll.task_queue)
        sticky = poll.task_queue.kind == STICKY
        key = TaskQueueKey(request.namespace_id, name, WORKFLOW, 0 if sticky else request.partition)

        async def record_started(task: MatchTask) -> wsv.PollWorkflowTaskQueueResponse:
            req = hpb.RecordWorkflowTaskStartedRequest(
                namespace_id=task.info.namespace_id,
                workflow_execution=common_pb.WorkflowExecution(
                    workflow_id=task.info.workflow_id, run_id=task.info.run_id
                ),
                scheduled_event_id=task.info.scheduled_event_id,
                attempt=task.info.attempt,
                stamp=task.info.stamp,
                request_id=task.request_id,
                poll_request=poll,
            )
            if task.query is not None:
                req.query_id = task.query.query_id
                req.query.CopyFrom(task.query.query)
            return await self._svc.history_client.RecordWorkflowTaskStarted(req, deadline=deadline)

        return await self._poll(
            key,
            sticky,
            request.namespace_id,
            request.poller_id,
            poll,
            deadline,
            record_started,
            wsv.PollWorkflowTaskQueueResponse,
            request.max_wait_seconds,
        )

    async def PollActivityTaskQueue(
        self, request: mpb.PollActivityTaskQueueRequest, *, deadline: float | None = None
    ) -> wsv.PollActivityTaskQueueResponse:
        poll = request.poll_request
        name = _queue_name(poll.task_queue)
        key = TaskQueueKey(request.namespace_id, name, ACTIVITY, request.partition)

        async def record_started(task: MatchTask) -> wsv.PollActivityTaskQueueResponse:
            req = hpb.RecordActivityTaskStartedRequest(
                namespace_id=task.info.namespace_id,
                workflow_execution=common_pb.WorkflowExecution(
                    workflow_id=task.info.workflow_id, run_id=task.info.run_id
                ),
                scheduled_event_id=task.info.scheduled_event_id,
                attempt=task.info.attempt,
                stamp=task.info.stamp,
                request_id=task.request_id,
                poll_request=poll,
            )
            return await self._svc.history_client.RecordActivityTaskStarted(req, deadline=deadline)

        return await self._poll(
            key,
            False,
            request.namespace_id,
            request.poller_id,
            poll,
            deadline,
            record_started,
            wsv.PollActivityTaskQueueResponse,
            request.max_wait_seconds,
        )

    def _poll_end(self, deadline: float | None, max_wait: float = 0.0) -> float:
        budget = self._svc.config.long_poll_timeout
        if max_wait > 0:
            budget = min(budget, max_wait)
        end = time.monotonic() + budget
        if deadline is not None:
            end = min(end, deadline - self._svc.config.poll_deadline_margin)
        return end

    async def _poll(
        self,
        key: TaskQueueKey,
        sticky: bool,
        namespace_id: str,
        poller_id: str,
        poll: Any,
        deadline: float | None,
        record_started: Callable[[MatchTask], Awaitable[R]],
        empty: Callable[[], R],
        max_wait: float = 0.0,
    ) -> R:
        """Long poll: take tasks until History accepts one, or answer all-default at the budget's end."""
        if not namespace_id:
            raise InvalidArgument("namespace_id is required")
        type_label = metrics.task_type_label(key.task_type)
        end = self._poll_end(deadline, max_wait)
        instance_key: str = poll.worker_instance_key
        if self._svc.stopping or end <= time.monotonic() or (
            instance_key and self._svc.shutdown_keys.contains(instance_key, self._now())
        ):
            # (A worker that called ShutdownWorker gets no more tasks: its late polls answer empty at once.)
            metrics.POLL_OUTCOMES.labels(type_label, "empty").inc()
            return empty()
        self._svc.check_owner(key)
        home = await self._svc.get_manager(key, sticky)
        mgr = home
        identity = poll.identity
        rate = self._svc.config.default_poller_rate
        if isinstance(poll, wsv.PollActivityTaskQueueRequest) and poll.task_queue_metadata.HasField(
            "max_tasks_per_second"
        ):
            rate = poll.task_queue_metadata.max_tasks_per_second.value
        caps = poll.worker_version_capabilities if poll.HasField("worker_version_capabilities") else None
        home.record_poll(identity, rate, caps)
        if not sticky:
            self._svc.load_owned_siblings(key)
        try:
            while True:
                mgr, task = home, None
                if not sticky:
                    # Tasks already waiting on any partition of this queue on this host: the oldest first (so
                    # no partition's backlog waits behind newer tasks of the others).
                    oldest: TaskQueueManager | None = None
                    oldest_at = 0.0
                    for candidate in (home, *self._svc.siblings(key)):
                        at = candidate.ready_since()
                        if at is not None and (oldest is None or at < oldest_at):
                            oldest, oldest_at = candidate, at
                    if oldest is not None:
                        task = oldest.take_ready()
                        if task is not None:
                            mgr = oldest
                if task is None:
                    task = await mgr.poll(identity, poller_id, end, instance_key)
                if task is None:
                    metrics.POLL_OUTCOMES.labels(type_label, "empty").inc()
                    return empty()
                if task.owner is not None:
                    mgr = task.owner  # a sibling partition's task handed to this poller: finish it there
                if task.query is None and task.expired(self._svc.clock.now()):
                    mgr.complete(task, delivered=False)
                    metrics.POLL_OUTCOMES.labels(type_label, "expired").inc()
                    continue
                try:
                    response = await record_started(task)
                except asyncio.CancelledError:
                    mgr.requeue(task)
                    raise
                except ServiceError as err:
                    if err.code in STALE_CODES:
                        self._drop_stale(mgr, task, err)
                        metrics.POLL_OUTCOMES.labels(type_label, "stale").inc()
                        continue
                    return await self._after_dispatch_error(mgr, task, err, end, empty, type_label)
                except Exception as err:  # noqa: BLE001 - never lose the task to a History bug
                    return await self._after_dispatch_error(mgr, task, err, end, empty, type_label)
                mgr.complete(task, delivered=True)
                metrics.TASKS_DISPATCHED.labels(type_label, task.source.value).inc()
                metrics.POLL_OUTCOMES.labels(type_label, "task").inc()
                return response
        except asyncio.CancelledError:
            metrics.POLL_OUTCOMES.labels(type_label, "cancelled").inc()
            raise
        finally:
            home.record_poll(identity, rate, caps)

    def _drop_stale(self, mgr: TaskQueueManager, task: MatchTask, err: ServiceError) -> None:
        if task.source is TaskSource.QUERY:
            # The query cannot run (workflow gone, not ready...): its caller learns why.
            if task.query is not None and not task.query.result.done():
                task.query.result.set_exception(err)
            return
        log.debug(
            "dropping stale task",
            task_queue=mgr.key.name,
            workflow_id=task.info.workflow_id,
            scheduled_event_id=task.info.scheduled_event_id,
            code=err.code.name,
        )
        mgr.complete(task, delivered=False)

    async def _after_dispatch_error(
        self,
        mgr: TaskQueueManager,
        task: MatchTask,
        err: Exception,
        end: float,
        empty: Callable[[], R],
        type_label: str,
    ) -> R:
        """History could not record the start (e.g. shard moving): keep the task, back off, answer empty."""
        mgr.requeue(task)
        metrics.POLL_OUTCOMES.labels(type_label, "error").inc()
        log.warning(
            "record-started failed; task requeued",
            task_queue=mgr.key.name,
            workflow_id=task.info.workflow_id,
            error=repr(err),
        )
        await asyncio.sleep(max(0.0, min(self._svc.config.dispatch_error_backoff, end - time.monotonic())))
        return empty()

    # ------------------------------------------------------------------ queries

    async def QueryWorkflow(
        self, request: mpb.QueryWorkflowRequest, *, deadline: float | None = None
    ) -> mpb.QueryWorkflowResponse:
        _check_execution(request.namespace_id, request.execution)
        name = _queue_name(request.task_queue)
        sticky = request.task_queue.kind == STICKY
        key = TaskQueueKey(request.namespace_id, name, WORKFLOW, 0 if sticky else request.partition)
        self._svc.check_owner(key)
        if sticky:
            mgr = self._svc.loaded(key)
            if mgr is None:
                raise _sticky_unavailable()
        else:
            mgr = await self._svc.get_manager(key, sticky=False)
        pending = self._svc.queries.register(request.query, key.partition)
        info = mpb.TaskInfo(
            namespace_id=request.namespace_id,
            workflow_id=request.execution.workflow_id,
            run_id=request.execution.run_id,
        )
        info.create_time.FromDatetime(self._svc.clock.now())
        task = MatchTask(info=info, source=TaskSource.QUERY, query=pending)
        timeout = (
            self._svc.config.default_query_timeout
            if deadline is None
            else max(0.0, deadline - time.monotonic())
        )
        try:
            mgr.add_query(task)
            return await asyncio.wait_for(asyncio.shield(pending.result), timeout=timeout)
        except TimeoutError:
            raise DeadlineExceeded("query timed out before a worker answered it") from None
        finally:
            mgr.remove_query(task)
            self._svc.queries.unregister(pending)

    async def RespondQueryTaskCompleted(
        self, request: mpb.RespondQueryTaskCompletedRequest, *, deadline: float | None = None
    ) -> mpb.RespondQueryTaskCompletedResponse:
        self._svc.queries.answer(request.request.task_token, request)
        return mpb.RespondQueryTaskCompletedResponse()

    # ------------------------------------------------------------------ workers

    async def CancelOutstandingPolls(
        self, request: mpb.CancelOutstandingPollsRequest, *, deadline: float | None = None
    ) -> mpb.CancelOutstandingPollsResponse:
        """ShutdownWorker: answer the worker's parked polls empty and forget its sticky queue."""
        ended = 0
        if request.worker_instance_key:
            self._svc.shutdown_keys.add(request.worker_instance_key, self._now())
        if request.identity or request.worker_instance_key:
            for mgr in self._svc.managers(request.namespace_id):
                ended += mgr.end_polls(request.identity or None, request.worker_instance_key)
        if request.sticky_task_queue:
            key = TaskQueueKey(request.namespace_id, request.sticky_task_queue, WORKFLOW)
            sticky_mgr = self._svc.loaded(key)
            if sticky_mgr is not None and sticky_mgr.sticky:
                # Queued sticky queries go back to History, which retries them on the normal queue.
                sticky_mgr.fail_queries(_sticky_unavailable())
                await self._svc.unload(key)
        log.info(
            "worker shut down",
            identity=request.identity,
            worker_instance_key=request.worker_instance_key,
            sticky_task_queue=request.sticky_task_queue,
            polls_ended=ended,
        )
        return mpb.CancelOutstandingPollsResponse()

    async def DescribeTaskQueue(
        self, request: mpb.DescribeTaskQueueRequest, *, deadline: float | None = None
    ) -> wsv.DescribeTaskQueueResponse:
        return await describe_task_queue(self._svc, request)

    # ------------------------------------------------------------------ worker registry

    def _now(self) -> float:
        """Seconds on the service's (injected) clock: what registry entries and shutdown keys age by."""
        return self._svc.clock.now().timestamp()

    def _registry_owner(self, namespace_id: str) -> None:
        if not namespace_id:
            raise InvalidArgument("namespace_id is required")
        self._svc.check_owner(TaskQueueKey(namespace_id, REGISTRY_QUEUE_NAME, 0, 0))

    async def RecordWorkerHeartbeat(
        self, request: mpb.RecordWorkerHeartbeatRequest, *, deadline: float | None = None
    ) -> mpb.RecordWorkerHeartbeatResponse:
        self._registry_owner(request.namespace_id)
        self._svc.workers.record(request.namespace_id, list(request.request.worker_heartbeat), self._now())
        return mpb.RecordWorkerHeartbeatResponse()

    async def ListWorkers(
        self, request: mpb.ListWorkersRequest, *, deadline: float | None = None
    ) -> wsv.ListWorkersResponse:
        self._registry_owner(request.namespace_id)
        public = request.request
        page = self._svc.workers.list(
            request.namespace_id,
            self._now(),
            query=public.query,
            page_size=public.page_size,
            next_page_token=public.next_page_token,
            include_system=public.include_system_workers,
        )
        return wsv.ListWorkersResponse(
            workers_info=[worker_pb.WorkerInfo(worker_heartbeat=hb) for hb in page.workers],
            workers=[list_info(hb) for hb in page.workers],
            next_page_token=page.next_page_token,
        )

    async def CountWorkers(
        self, request: mpb.CountWorkersRequest, *, deadline: float | None = None
    ) -> wsv.CountWorkersResponse:
        self._registry_owner(request.namespace_id)
        public = request.request
        count = self._svc.workers.count(
            request.namespace_id, self._now(), query=public.query, include_system=public.include_system_workers
        )
        return wsv.CountWorkersResponse(count=count)

    async def DescribeWorker(
        self, request: mpb.DescribeWorkerRequest, *, deadline: float | None = None
    ) -> wsv.DescribeWorkerResponse:
        self._registry_owner(request.namespace_id)
        hb = self._svc.workers.describe(request.namespace_id, request.request.worker_instance_key, self._now())
        return wsv.DescribeWorkerResponse(worker_info=worker_pb.WorkerInfo(worker_heartbeat=hb))

    async def ListTaskQueuePartitions(
        self, request: mpb.ListTaskQueuePartitionsRequest, *, deadline: float | None = None
    ) -> wsv.ListTaskQueuePartitionsResponse:
        """Without a cluster router in front, this host serves every queue as one partition."""
        owned = [tq_pb.TaskQueuePartitionMetadata(
            key=partition_rpc_name(request.task_queue.name, 0), owner_host_name=self._svc.host_identity
        )]
        return wsv.ListTaskQueuePartitionsResponse(
            activity_task_queue_partitions=owned, workflow_task_queue_partitions=owned
        )


def _sticky_unavailable() -> ServiceError:
    return FailedPrecondition(STICKY_UNAVAILABLE)
