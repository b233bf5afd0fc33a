"""The matching service object app.py constructs: owns the loaded task queues and their lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import structlog

from server.common.clock import Clock
from server.common.errors import Unavailable
from server.persistence.interface import Persistence, TaskQueueKey
from services.matching import metrics
from services.matching.config import MatchingConfig
from services.matching.handler import MatchingHandler
from services.matching.pollers import Poller
from services.matching.queries import QueryRegistry
from services.matching.task_queue import TaskQueueManager
from services.matching.workers import ShutdownKeys, WorkerRegistry

log = structlog.get_logger("durata.matching")


class MatchingService:
    def __init__(
        self, persistence: Persistence, clock: Clock, config: MatchingConfig, host_identity: str
    ) -> None:
        self.persistence = persistence
        self.clock = clock
        self.config = config
        self.host_identity = host_identity
        # HistoryService handler (in-process) or GrpcClient; set by app.py before start().
        self.history_client: Any = None
        self.queries = QueryRegistry()
        # In memory, like Temporal's: workers re-announce themselves with their next heartbeat.
        self.workers = WorkerRegistry()
        self.shutdown_keys = ShutdownKeys()
        self.handler = MatchingHandler(self)
        self._managers: dict[TaskQueueKey, TaskQueueManager] = {}
        self._loading: dict[TaskQueueKey, asyncio.Task[TaskQueueManager]] = {}
        self._janitor: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self.stopping = False
        # Cluster mode (set by app.py): does this host own a task-queue partition by the matching ring? None =
        # everything (one matching host). ``partitions`` = partitions per normal queue, cluster-wide.
        self.owns: Callable[[TaskQueueKey], bool] | None = None
        self.partitions = 1

    async def start(self) -> None:
        if self.history_client is None:
            raise RuntimeError("MatchingService.history_client must be set before start()")
        self.stopping = False
        self._janitor = asyncio.create_task(self._janitor_loop(), name="matching-janitor")
        log.info("matching started", host=self.host_identity)

    async def stop(self) -> None:
        """Graceful: parked polls answer empty, waiting queries fail retryably, ack levels are persisted."""
        self.stopping = True
        if self._janitor is not None:
            self._janitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._janitor
            self._janitor = None
        for loading in list(self._loading.values()):
            loading.cancel()
        managers = list(self._managers.values())
        self._managers.clear()
        await asyncio.gather(*(m.stop() for m in managers), return_exceptions=True)
        self.queries.fail_all(Unavailable("matching service is shutting down"))
        self._update_loaded_gauge()
        log.info("matching stopped", host=self.host_identity, unloaded=len(managers))

    # ------------------------------------------------------------------ task queue registry

    def check_owner(self, key: TaskQueueKey) -> None:
        """Refuse (retryably) a partition the ring gives to another host: the caller's router re-reads membership
        and goes there. Serving it here would lease it away from its owner."""
        if self.owns is not None and not self.owns(key):
            raise Unavailable(
                f"task queue {key.name!r} partition {key.partition} (type {key.task_type}) is owned by another "
                "matching host; retry"
            )

    def siblings(self, key: TaskQueueKey) -> list[TaskQueueManager]:
        """Other partitions of the same queue loaded on this host (matching across them costs nothing)."""
        out = []
        for p in range(self.partitions):
            if p != key.partition:
                mgr = self.loaded(TaskQueueKey(key.namespace_id, key.name, key.task_type, p))
                if mgr is not None and not mgr.sticky:
                    out.append(mgr)
        return out

    def _borrow_poller(self, key: TaskQueueKey) -> Poller | None:
        """A poller parked on another partition of ``key``'s queue on this host (the oldest sibling first)."""
        for mgr in self.siblings(key):
            poller = mgr.pop_waiting_poller()
            if poller is not None:
                return poller
        return None

    def load_owned_siblings(self, key: TaskQueueKey) -> None:
        """Start loading the partitions of ``key``'s queue this host owns but has not loaded, so their persisted
        backlog reaches the pollers parked here (a poll parks on one partition per host)."""
        if self.partitions <= 1 or self.stopping:
            return
        for p in range(self.partitions):
            other = TaskQueueKey(key.namespace_id, key.name, key.task_type, p)
            if p == key.partition or other in self._loading or self.loaded(other) is not None:
                continue
            if self.owns is not None and not self.owns(other):
                continue
            task = asyncio.get_running_loop().create_task(
                self._load_quietly(other), name=f"matching-load-sibling-{key.name}"
            )
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _load_quietly(self, key: TaskQueueKey) -> None:
        try:
            await self.get_manager(key, sticky=False)
        except Exception as err:  # noqa: BLE001 - the next poll or add retries
            log.info("loading sibling partition failed", task_queue=key.name, partition=key.partition, error=repr(err))

    def on_membership_change(self) -> None:
        """Unload the partitions the new ring gives to other hosts: their pollers answer empty (the router moves
        them on), their ack levels are flushed, and the new owner's lease fences anything left."""
        if self.owns is None or self.stopping:
            return
        for key in [k for k in self._managers if not self.owns(k)]:
            task = asyncio.get_running_loop().create_task(self.unload(key), name=f"matching-move-{key.name}")
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    def loaded(self, key: TaskQueueKey) -> TaskQueueManager | None:
        mgr = self._managers.get(key)
        if mgr is None or mgr.closed or mgr.lost:
            return None
        return mgr

    async def get_manager(self, key: TaskQueueKey, sticky: bool) -> TaskQueueManager:
        """The loaded manager for ``key``, loading (and leasing) it on first use."""
        if self.stopping:
            raise Unavailable("matching service is shutting down")
        mgr = self.loaded(key)
        if mgr is not None:
            return mgr
        stale = self._managers.pop(key, None)
        if stale is not None:
            unloading = asyncio.create_task(stale.stop(), name=f"matching-unload-{key.name}")
            self._background.add(unloading)
            unloading.add_done_callback(self._background.discard)
        loading = self._loading.get(key)
        if loading is None:
            loading = asyncio.create_task(self._load(key, sticky), name=f"matching-load-{key.name}")
            self._loading[key] = loading
        try:
            return await asyncio.shield(loading)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if loading.cancelled() and (current is None or not current.cancelling()):
                raise Unavailable("matching service is shutting down") from None
            raise

    async def _load(self, key: TaskQueueKey, sticky: bool) -> TaskQueueManager:
        try:
            mgr = TaskQueueManager(key, sticky, self.persistence.tasks, self.config, self.clock)
            if not sticky and self.partitions > 1:
                mgr.borrow_poller = lambda: self._borrow_poller(key)
            await mgr.start()
            if self.stopping:  # stop() ran while we leased: do not leave a queue nobody will unload
                await mgr.stop()
                raise Unavailable("matching service is shutting down")
            self._managers[key] = mgr
            self._update_loaded_gauge()
            return mgr
        finally:
            self._loading.pop(key, None)

    def managers(self, namespace_id: str | None = None) -> list[TaskQueueManager]:
        return [
            m for k, m in self._managers.items() if namespace_id is None or k.namespace_id == namespace_id
        ]

    async def unload(self, key: TaskQueueKey) -> None:
        mgr = self._managers.pop(key, None)
        if mgr is not None:
            await mgr.stop()
            self._update_loaded_gauge()

    def _update_loaded_gauge(self) -> None:
        sticky = sum(1 for m in self._managers.values() if m.sticky)
        metrics.LOADED_QUEUES.labels("sticky").set(sticky)
        metrics.LOADED_QUEUES.labels("normal").set(len(self._managers) - sticky)
        metrics.set_owned_partitions(self.host_identity, [k for k, m in self._managers.items() if not m.sticky])

    async def _janitor_loop(self) -> None:
        """Unload idle queues (mostly sticky queues of workers that went away) and lost leases."""
        while True:
            await asyncio.sleep(self.config.janitor_interval)
            for key, mgr in list(self._managers.items()):
                if mgr.lost or mgr.is_idle(self.config.idle_unload_after):
                    try:
                        await self.unload(key)
                    except Exception as err:  # noqa: BLE001 - keep the janitor running
                        log.warning("unloading task queue failed", task_queue=key.name, error=repr(err))
