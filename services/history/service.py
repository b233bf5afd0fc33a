"""HistoryService: owns shards, runs their queue processors, serves the handler."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import structlog

from server.common.clock import Clock
from server.persistence.interface import ClusterMetadata, Persistence, TaskCategory

from .config import HistoryConfig
from .engine import Engine
from .handler import HistoryHandler
from .namespaces import NamespaceCache
from .queues import QueueProcessor
from .shard import ShardContext
from .task_handlers import handle_timer, handle_transfer, handle_visibility

log = structlog.get_logger("durata.history")
HANDLERS = {
    TaskCategory.TRANSFER: handle_transfer,
    TaskCategory.TIMER: handle_timer,
    TaskCategory.VISIBILITY: handle_visibility,
}


class HistoryService:
    def __init__(self, persistence: Persistence, clock: Clock, config: HistoryConfig, host_identity: str) -> None:
        self.persistence = persistence
        self.clock = clock
        self.config = config
        self.host_identity = host_identity
        self.engine = Engine(
            persistence, clock, config, NamespaceCache(persistence, timedelta(seconds=config.default_retention_seconds))
        )
        self.handler = HistoryHandler(self.engine)
        self.engine.history = self.handler
        self._processors: dict[tuple[int, TaskCategory], QueueProcessor] = {}
        self._started = False

    @property
    def matching_client(self) -> Any:
        return self.engine.matching

    @matching_client.setter
    def matching_client(self, client: Any) -> None:
        self.engine.matching = client

    async def start(self) -> None:
        if self.engine.matching is None:
            raise RuntimeError("HistoryService.matching_client must be set before start()")
        meta = await self.persistence.cluster.get_cluster_metadata()
        if meta is None:
            meta = await self.persistence.cluster.init_cluster_metadata(
                ClusterMetadata(cluster_name="active", num_history_shards=self.config.num_history_shards)
            )
        self.engine.num_shards = meta.num_history_shards
        # [] = none at start: in a cluster the shard controller acquires what the membership ring assigns.
        owned = self.config.owned_shards if self.config.owned_shards is not None else list(range(1, meta.num_history_shards + 1))
        for sid in owned:
            await self.acquire_shard(sid)
        self._started = True
        log.info("history service started", shards=len(owned), num_history_shards=meta.num_history_shards)

    async def acquire_shard(self, shard_id: int) -> None:
        shard = ShardContext(
            shard_id,
            self.persistence,
            self.clock,
            self.config,
            self.host_identity,
            self.engine.namespaces,
            self.engine.notifier,
            self._on_shard_lost,
        )
        await shard.acquire()
        self.engine.shards[shard_id] = shard
        for cat, fn in HANDLERS.items():
            p = QueueProcessor(self.engine, shard, cat, fn)
            self._processors[(shard_id, cat)] = p
            p.start()

    def _on_shard_lost(self, shard_id: int) -> None:
        self.engine.shards.pop(shard_id, None)
        procs = [self._processors.pop((shard_id, c)) for c in HANDLERS if (shard_id, c) in self._processors]
        for p in procs:
            asyncio.get_running_loop().create_task(p.stop())

    async def release_shard(self, shard_id: int) -> None:
        self.engine.shards.pop(shard_id, None)
        procs = [self._processors.pop((shard_id, c)) for c in HANDLERS if (shard_id, c) in self._processors]
        await asyncio.gather(*(p.stop() for p in procs))

    async def stop(self) -> None:
        for sid in list(self.engine.shards):
            await self.release_shard(sid)
        self._started = False
        log.info("history service stopped")
