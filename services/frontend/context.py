"""State shared by all frontend RPC groups: persistence, config, clients, namespace registry, cluster facts."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from server.common.errors import Unavailable
from server.persistence.interface import Persistence
from services.frontend.config import FrontendConfig
from services.frontend.namespace_registry import NamespaceRegistry


@dataclass
class ClusterFacts:
    """What the frontend reports about the cluster; read once from cluster metadata."""

    cluster_name: str
    num_history_shards: int
    cluster_id: str


@dataclass
class FrontendContext:
    persistence: Persistence
    config: FrontendConfig
    namespaces: NamespaceRegistry
    # History / Matching handlers in one process, or GrpcClients across processes (same call shape).
    history_client: Any = None
    matching_client: Any = None
    _cluster: ClusterFacts | None = field(default=None, repr=False)

    @property
    def history(self) -> Any:
        if self.history_client is None:
            raise Unavailable("History service is not connected to this frontend yet.")
        return self.history_client

    @property
    def matching(self) -> Any:
        if self.matching_client is None:
            raise Unavailable("Matching service is not connected to this frontend yet.")
        return self.matching_client

    async def cluster(self) -> ClusterFacts:
        """Cluster name and shard count from cluster metadata (config defaults if the row is not there yet)."""
        if self._cluster is not None:
            return self._cluster
        metadata = await self.persistence.cluster.get_cluster_metadata()
        if metadata is None:
            # Not cached: the app may still be initializing the row.
            return ClusterFacts(self.config.cluster_name, 0, "")
        cluster_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"durata:{metadata.cluster_name}"))
        self._cluster = ClusterFacts(metadata.cluster_name, metadata.num_history_shards, cluster_id)
        return self._cluster

    def long_poll_deadline(self, deadline: float | None, budget_seconds: float) -> float:
        """When to answer a long poll: within our budget and a margin before the client gives up."""
        now = time.monotonic()
        ours = now + budget_seconds
        if deadline is None:
            return ours
        # Never earlier than "now": a client with a tiny deadline gets an immediate empty answer.
        return max(now, min(ours, deadline - self.config.long_poll_margin_seconds))
