"""Worker: hosts workflows and activities for one task queue (same public names as temporalio.worker)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import socket
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ..exceptions import RPCError, RPCStatusCode
from ._activity_worker import ActivityWorker
from ._replayer import Replayer, WorkflowReplayResult
from ._workflow_worker import WorkflowWorker

if TYPE_CHECKING:
    from ..client import Client

__all__ = ["Worker", "Replayer", "WorkflowReplayResult"]
logger = logging.getLogger("durata.worker")


class Worker:
    """Polls ``task_queue`` for workflow and activity tasks until shut down."""

    def __init__(self, client: Client, *, task_queue: str, activities: Sequence[Any] = (),
                 workflows: Sequence[type] = (), activity_executor: concurrent.futures.Executor | None = None,
                 max_concurrent_workflow_tasks: int = 100, max_concurrent_activities: int = 100,
                 max_cached_workflows: int = 1000, max_concurrent_workflow_task_polls: int = 2,
                 max_concurrent_activity_task_polls: int = 2,
                 sticky_queue_schedule_to_start_timeout: timedelta = timedelta(seconds=10),
                 max_heartbeat_throttle_interval: timedelta = timedelta(seconds=60),
                 default_heartbeat_throttle_interval: timedelta = timedelta(seconds=30),
                 graceful_shutdown_timeout: timedelta = timedelta(), identity: str | None = None,
                 workflow_task_executor: concurrent.futures.ThreadPoolExecutor | None = None,
                 debug_mode: bool = False, disable_eager_activity_execution: bool = False,
                 **_ignored: Any) -> None:
        if not activities and not workflows:
            raise ValueError("At least one activity or workflow must be specified")
        self.client = client
        self.task_queue = task_queue
        self.identity = identity or client.identity or f"{os.getpid()}@{socket.gethostname()}"
        self._graceful = graceful_shutdown_timeout
        # Workflow code runs on these threads so that a workflow that does not yield is detected (deadlock).
        debug_mode = debug_mode or bool(os.environ.get("TEMPORAL_DEBUG"))
        self._own_task_executor = workflow_task_executor is None and bool(workflows) and not debug_mode
        if self._own_task_executor:
            workflow_task_executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=max(os.cpu_count() or 4, 4), thread_name_prefix="durata_workflow")
        self._task_executor = workflow_task_executor
        self._wf = WorkflowWorker(
            client, task_queue, workflows, identity=self.identity, max_concurrent=max_concurrent_workflow_tasks,
            max_cached=max_cached_workflows, sticky_timeout=sticky_queue_schedule_to_start_timeout,
            pollers=max_concurrent_workflow_task_polls, activities=activities,
            executor=activity_executor, task_executor=workflow_task_executor,
            debug_mode=debug_mode) if workflows else None
        self._act = ActivityWorker(
            client, task_queue, activities, identity=self.identity, max_concurrent=max_concurrent_activities,
            executor=activity_executor, pollers=max_concurrent_activity_task_polls,
            max_heartbeat_throttle=max_heartbeat_throttle_interval,
            default_heartbeat_throttle=default_heartbeat_throttle_interval) if activities else None
        if self._wf and self._act and self._wf.executor is None:
            self._wf.executor = self._act.executor
        if self._wf and self._act and not disable_eager_activity_execution:
            # Activities this worker schedules on its own task queue may come back in the completion response.
            self._wf.eager_activities = self._act
        self._pollers: list[asyncio.Task[Any]] = []
        self._stopped = asyncio.Event()
        self._running = False

    @property
    def is_running(self) -> bool:
        return self._running

    @property
    def is_shutdown(self) -> bool:
        return self._stopped.is_set()

    async def run(self) -> None:
        """Run until ``shutdown()`` is called (or the surrounding task is cancelled)."""
        if self._running:
            raise RuntimeError("Worker already running")
        self._running = True
        try:
            await self._check_namespace()
        except BaseException:
            self._running = False
            raise
        if self._wf:
            self._pollers.append(asyncio.create_task(self._wf.run()))
        if self._act:
            self._pollers.append(asyncio.create_task(self._act.run()))
        try:
            await asyncio.gather(*self._pollers)
        except asyncio.CancelledError:
            if not self._stopped.is_set():
                await asyncio.shield(self._shutdown_now())
                raise
        finally:
            self._running = False

    async def shutdown(self) -> None:
        """Stop polling, finish in-flight workflow tasks, give activities the graceful timeout, then cancel them."""
        await self._shutdown_now()

    async def _shutdown_now(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        if self._wf:
            self._wf.stopping = True
        if self._act:
            self._act.stopping = True
        await self._notify_server()
        for p in self._pollers:
            p.cancel()
        await asyncio.gather(*self._pollers, return_exceptions=True)
        if self._act:
            await self._act.shutdown(self._graceful)
        if self._wf:
            await self._wf.shutdown()
        if self._own_task_executor and self._task_executor is not None:
            self._task_executor.shutdown(wait=False)

    async def _check_namespace(self) -> None:
        """Fail fast (like the official worker) when the namespace does not exist."""
        from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv

        try:
            await self.client._call("DescribeNamespace", wsv.DescribeNamespaceRequest(namespace=self.client.namespace),
                                    timeout=10)
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise RuntimeError(f"Namespace {self.client.namespace!r} not found on {self.client.service.target}") from err
            if err.status != RPCStatusCode.UNIMPLEMENTED:
                raise

    async def _notify_server(self) -> None:
        from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv

        try:
            await self.client._call("ShutdownWorker", wsv.ShutdownWorkerRequest(
                namespace=self.client.namespace, identity=self.identity,
                sticky_task_queue=self._wf.sticky_queue if self._wf else "", reason="graceful shutdown"), timeout=5)
        except RPCError as err:
            logger.debug("ShutdownWorker not accepted: %s", err.message)

    async def __aenter__(self) -> Worker:
        self._run_task = asyncio.create_task(self.run())
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.shutdown()
        try:
            await self._run_task
        except asyncio.CancelledError:
            pass
