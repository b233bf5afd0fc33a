"""The internal worker service: runs the system jobs against the frontend's public WorkflowService.

It is a client like any other worker. In start-dev ``workflow_service_client`` is the frontend handler object
(in-process calls); in a cluster it is a ``GrpcClient`` over a channel to the frontend address.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import structlog

from server.common.clock import Clock, RealClock
from server.common.errors import ServiceError
from services.internal_worker.batch.workflow import BatchActivities, BatchWorkflow
from services.internal_worker.config import InternalWorkerConfig
from services.internal_worker.delete_namespace import DeleteNamespaceJob
from services.internal_worker.retention import RetentionJob
from services.internal_worker.schedules.activities import SchedulerActivities
from services.internal_worker.schedules.workflow import SchedulerWorkflow
from services.internal_worker.system_workers import SystemWorkers

log = structlog.get_logger("durata.internal_worker")


class InternalWorkerService:
    def __init__(
        self, config: InternalWorkerConfig, workflow_service_client: Any, clock: Clock | None = None,
        operator_client: Any = None, frontend_address: Callable[[], str] | None = None,
    ) -> None:
        """``operator_client``: the frontend's OperatorService (namespace deletion); None disables that job.
        ``frontend_address``: where system-workflow workers dial the public API; None runs no system workflows."""
        self.config = config
        self.client = workflow_service_client
        self.clock: Clock = clock if clock is not None else RealClock()
        self.retention = RetentionJob(config, workflow_service_client, self.clock)
        self.delete_namespace = (
            DeleteNamespaceJob(config, workflow_service_client, operator_client) if operator_client is not None
            else None
        )
        self.frontend_address = frontend_address
        self.system_workers: SystemWorkers | None = None
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._stopping.clear()
        if self.config.retention_enabled:
            self._tasks.append(asyncio.create_task(self._every(self.config.retention_interval_seconds,
                                                               self.retention.sweep, "retention")))
        if self.config.delete_namespace_enabled and self.delete_namespace is not None:
            self._tasks.append(asyncio.create_task(self._every(self.config.delete_namespace_interval_seconds,
                                                               self.delete_namespace.sweep, "delete_namespace")))
        if self.config.system_workers_enabled and self.frontend_address is not None:
            batch = BatchActivities(self.client, self.config.rpc_timeout_seconds)
            sched = SchedulerActivities(self.client, self.config.rpc_timeout_seconds)
            activities = [batch.run_batch, sched.start_workflow, sched.watch_workflow, sched.refresh_workflows,
                          sched.cancel_workflow, sched.terminate_workflow]  # fmt: skip
            self.system_workers = SystemWorkers(
                self.frontend_address(), [BatchWorkflow, SchedulerWorkflow], lambda _namespace: activities,
                identity=self.config.identity, rpc_timeout_seconds=self.config.rpc_timeout_seconds,
            )
            self._tasks.append(asyncio.create_task(self._every(
                self.config.system_workers_refresh_seconds, self.system_workers.refresh, "system_workers"
            )))  # fmt: skip
        log.info("internal worker started", retention_interval_seconds=self.config.retention_interval_seconds,
                 retention_enabled=self.config.retention_enabled)

    async def stop(self) -> None:
        self._stopping.set()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
        if self.system_workers is not None:
            await self.system_workers.close()
            self.system_workers = None
        log.info("internal worker stopped")

    async def _every(self, interval: float, job: Any, name: str) -> None:
        """Run ``job`` now and then every ``interval`` seconds until stopped; errors are logged, never fatal."""
        while not self._stopping.is_set():
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except ServiceError as err:  # e.g. the frontend is not up yet: expected, no traceback needed
                log.warning("system job failed; will retry next interval", job=name, error=repr(err))
            except Exception:
                log.exception("system job failed; will retry next interval", job=name)
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=interval)
            except TimeoutError:
                pass
