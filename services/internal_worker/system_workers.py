"""System workflows on Durata's own SDK: one SDK worker per namespace polls Temporal's per-namespace system task
queue, so batch jobs (and, later, schedulers) run as ordinary workflows whose state lives in their history and
survive any crash. Namespaces are re-read every few seconds: a new one gets its worker, a deleted one loses it.

The workers are clients of the frontend's public gRPC API like any user's worker."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import structlog
from durata.client import Client
from durata.worker import Worker
from temporalio.api.enums.v1 import namespace_pb2 as ns_enums
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv

from server.common.system_workflows import PER_NAMESPACE_TASK_QUEUE

log = structlog.get_logger("durata.internal_worker")


class SystemWorkers:
    """Keeps one worker per registered namespace. ``activities_for(namespace)`` builds that namespace's activity
    callables (they talk to the frontend through the internal worker's own client)."""

    def __init__(self, frontend_address: str, workflows: Sequence[type],
                 activities_for: Callable[[str], Sequence[Any]], *, identity: str,
                 rpc_timeout_seconds: float = 10.0) -> None:
        self.frontend_address = frontend_address
        self.workflows = list(workflows)
        self.activities_for = activities_for
        self.identity = identity
        self.rpc_timeout_seconds = rpc_timeout_seconds
        self._client: Client | None = None
        self._workers: dict[str, tuple[Worker, asyncio.Task[None]]] = {}
        # Shared by every namespace's worker: workflow code of all system workflows runs on these threads.
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="durata_system_wf")

    @property
    def namespaces(self) -> list[str]:
        return sorted(self._workers)

    async def refresh(self) -> None:
        """Start workers for namespaces that appeared, stop those of namespaces that went away."""
        if self._client is None:
            self._client = await Client.connect(self.frontend_address, identity=self.identity)
        wanted = await self._registered_namespaces(self._client)
        for name in sorted(set(self._workers) - wanted):
            await self._stop(name)
        for name in sorted(wanted - set(self._workers)):
            self._start(name)
        for name, (_, task) in list(self._workers.items()):
            if task.done():  # the worker gave up (e.g. its namespace vanished mid-way): start afresh next time
                self._workers.pop(name)
                if not task.cancelled() and task.exception() is not None:
                    log.warning("system worker stopped", namespace=name, error=repr(task.exception()))

    async def _registered_namespaces(self, client: Client) -> set[str]:
        names: set[str] = set()
        token = b""
        while True:
            page = await client.workflow_service.ListNamespaces(
                wsv.ListNamespacesRequest(page_size=100, next_page_token=token), timeout=self.rpc_timeout_seconds
            )
            for ns in page.namespaces:
                if ns.namespace_info.state == ns_enums.NAMESPACE_STATE_REGISTERED:
                    names.add(ns.namespace_info.name)
            token = page.next_page_token
            if not token:
                return names

    def _start(self, namespace: str) -> None:
        assert self._client is not None
        client = Client(self._client.service, namespace=namespace, identity=self.identity)
        worker = Worker(
            client, task_queue=PER_NAMESPACE_TASK_QUEUE, workflows=self.workflows,
            activities=list(self.activities_for(namespace)), workflow_task_executor=self._executor,
            max_concurrent_workflow_task_polls=1, max_concurrent_activity_task_polls=1, max_cached_workflows=100,
            # Progress in heartbeats is what Describe shows (a batch's counts): send it every second.
            max_heartbeat_throttle_interval=timedelta(seconds=1), default_heartbeat_throttle_interval=timedelta(seconds=1),
        )  # fmt: skip
        self._workers[namespace] = (worker, asyncio.create_task(worker.run(), name=f"system-worker-{namespace}"))
        log.info("system worker started", namespace=namespace)

    async def _stop(self, namespace: str) -> None:
        worker, task = self._workers.pop(namespace)
        try:
            await asyncio.wait_for(worker.shutdown(), timeout=5)
        except (TimeoutError, Exception):  # noqa: BLE001 - stopping is best effort; the task is cancelled below
            pass
        task.cancel()
        try:
            await task
        except (asyncio.CancelledError, Exception):  # noqa: BLE001
            pass

    async def close(self) -> None:
        for name in list(self._workers):
            await self._stop(name)
        if self._client is not None:
            await self._client.service.close()
            self._client = None
        self._executor.shutdown(wait=False, cancel_futures=True)
