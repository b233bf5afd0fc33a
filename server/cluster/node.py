"""How one cluster process joins the cluster: membership, the routing clients its services use, and (on a
history host) the shard controller. ``server/app.py`` uses this for ``server start``; ``start-dev`` does not
(there every service calls its in-process peers directly and the ring is trivially the one process).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import structlog

from server.cluster.membership import ClusterMembership, MembershipConfig
from server.cluster.ring import partition_key
from server.cluster.routing import Dialer, HistoryRouter, MatchingRouter, RetryPolicy
from server.config import ServerConfig
from server.persistence.interface import TaskQueueKey

log = structlog.get_logger("durata.cluster")


@dataclass
class ClusterNode:
    cfg: ServerConfig
    persistence: Any
    history_descriptor: Any
    matching_descriptor: Any
    services: dict[str, Any] = field(default_factory=dict)
    membership: ClusterMembership | None = None
    history_dialer: Dialer | None = None
    matching_dialer: Dialer | None = None
    history_router: HistoryRouter | None = None
    matching_router: MatchingRouter | None = None
    controller: Any = None

    def wire(self, services: dict[str, Any]) -> None:
        """Give every local service its routing clients (before the services start)."""
        self.services = services
        cfg = self.cfg
        self.membership = ClusterMembership(
            self.persistence.membership,
            {},
            MembershipConfig(cfg.membership_heartbeat_seconds, cfg.membership_expiry_seconds),
        )
        policy = RetryPolicy(budget_seconds=cfg.route_retry_seconds)
        history = services.get("history")
        matching = services.get("matching")
        self.history_dialer = Dialer(self.history_descriptor, "", history.handler if history else None)
        self.matching_dialer = Dialer(self.matching_descriptor, "", matching.handler if matching else None)
        self.history_router = HistoryRouter(self.membership, cfg.num_history_shards, self.history_dialer, policy)
        self.matching_router = MatchingRouter(
            self.membership, self.matching_dialer, cfg.task_queue_partitions, cfg.poll_partition_slice_seconds,
            policy=policy,
        )
        if history is not None:
            history.matching_client = self.matching_router
            # Children, external signals and cancels reach workflows on any shard of any host.
            history.engine.history = self.history_router
        if matching is not None:
            matching.history_client = self.history_router
            matching.partitions = cfg.task_queue_partitions
            membership = self.membership

            def owns(key: TaskQueueKey) -> bool:
                owner = membership.ring("matching").lookup(
                    partition_key(key.namespace_id, key.name, key.task_type, key.partition)
                )
                return owner is not None and owner == membership.self_member("matching")

            matching.owns = owns
            self.membership.subscribe(matching.on_membership_change)

    async def join(self, addresses: dict[str, str]) -> None:
        """Register under the addresses peers dial (known once the ports are bound) and start owning shards."""
        assert self.membership is not None and self.history_dialer and self.matching_dialer
        self.membership.local_roles = dict(addresses)
        self.history_dialer.local_address = addresses.get("history", "")
        self.matching_dialer.local_address = addresses.get("matching", "")
        # Recorded as the shard / partition owner and used as the metrics label: the same name as on the ring.
        for role in ("history", "matching"):
            if role in self.services and addresses.get(role):
                self.services[role].host_identity = addresses[role]
        await self.membership.start()
        history = self.services.get("history")
        if history is not None:
            from services.history.shard_controller import ShardController

            self.controller = ShardController(
                history, self.membership, self.cfg.num_history_shards,
                interval=self.cfg.membership_heartbeat_seconds,
                lost_cooldown=2 * self.cfg.membership_heartbeat_seconds,
            )
            await self.controller.start()

    async def leave(self) -> None:
        """Stop owning shards and delete our membership rows, so peers take over at once."""
        if self.controller is not None:
            await self.controller.stop()
        if self.membership is not None:
            await self.membership.stop()

    async def close(self) -> None:
        for dialer in (self.history_dialer, self.matching_dialer):
            if dialer is not None:
                await dialer.close()
