"""What every RPC handler needs: shard routing, the clock, config, the matching client and in-memory
registries. One per history host."""

from __future__ import annotations

from typing import Any

import structlog
from temporalio.api.history.v1 import message_pb2 as history_pb2

from server.common.clock import Clock
from server.common.errors import ShardOwnershipLost
from server.common.sharding import shard_for
from server.persistence.interface import Persistence

from .config import HistoryConfig
from .events import decode_batch
from .namespaces import NamespaceCache
from .notifier import Notifier
from .queries import QueryRegistry
from .shard import ShardContext
from .updates import UpdateRegistry

log = structlog.get_logger("durata.history")


class Engine:
    def __init__(self, persistence: Persistence, clock: Clock, config: HistoryConfig, namespaces: NamespaceCache) -> None:
        self.persistence = persistence
        self.clock = clock
        self.config = config
        self.namespaces = namespaces
        self.notifier = Notifier()
        self.queries = QueryRegistry()
        self.shards: dict[int, ShardContext] = {}
        self.num_shards = 0
        self.matching: Any = None
        # HistoryService client for calls to other workflows (children, external signals/cancels). The
        # in-process handler by default; a router over remote History hosts would have the same shape.
        self.history: Any = None
        self.updates = UpdateRegistry()

    def shard(self, namespace_id: str, workflow_id: str) -> ShardContext:
        sid = shard_for(namespace_id, workflow_id, self.num_shards) if self.num_shards else 0
        s = self.shards.get(sid)
        if s is None or s.lost:
            raise ShardOwnershipLost(sid)
        return s

    async def read_events(
        self, shard: ShardContext, namespace_id: str, workflow_id: str, run_id: str, first: int, end: int
    ) -> list[history_pb2.HistoryEvent]:
        """Events with first <= event_id < end, dense, in order."""
        if end <= first:
            return []
        cached = shard.cached_events((namespace_id, workflow_id, run_id), first, end)
        if cached is not None:
            return cached  # a fresh list (slice) of shared, read-only events
        batches = await self.persistence.executions.read_history(shard.shard_id, namespace_id, workflow_id, run_id, first, end)
        out: list[history_pb2.HistoryEvent] = []
        expected = first
        for b in batches:
            for ev in decode_batch(b.data):
                if ev.event_id == expected and ev.event_id < end:
                    out.append(ev)
                    expected += 1
        return out

    async def started_attributes(
        self, shard: ShardContext, namespace_id: str, workflow_id: str, run_id: str
    ) -> history_pb2.WorkflowExecutionStartedEventAttributes | None:
        """Event 1 of a run: what a retry of the run starts from."""
        events = await self.read_events(shard, namespace_id, workflow_id, run_id, 1, 2)
        if not events or not events[0].HasField("workflow_execution_started_event_attributes"):
            return None
        return events[0].workflow_execution_started_event_attributes
