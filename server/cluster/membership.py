"""Who is in the cluster: each process registers one row per role it runs, heartbeats, and reads the live rows
back into one consistent-hash ring per role.

Why polling a table: the database is already the one thing every process shares and trusts for fencing, so
membership needs no extra system. Correctness never depends on membership being fresh: shard and task-queue
ownership is fenced by range_id, and membership only decides who *tries* to own what. start-dev uses none of this:
its services call each other in-process and the one process owns every shard.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

import structlog
from prometheus_client import Gauge

from server.cluster.ring import HashRing
from server.common.clock import Clock, RealClock
from server.metrics import REGISTRY
from server.persistence.interface import MemberRecord, MembershipStore

log = structlog.get_logger("durata.cluster")

RING_ROLES = ("history", "matching")

MEMBER_UP = Gauge(
    "durata_cluster_member_up",
    "1 for each live cluster member (role, address) as this process sees it",
    ["role", "address", "host_id"],
    registry=REGISTRY,
)


@dataclass
class MembershipConfig:
    heartbeat_seconds: float = 1.0
    # A member whose last heartbeat is older than this is dead: its shards and partitions move.
    expiry_seconds: float = 6.0
    # Rows dead for this many expiries are deleted by whoever notices.
    prune_after_expiries: int = 10


class Membership(Protocol):
    def ring(self, role: str) -> HashRing: ...

    def self_member(self, role: str) -> str:
        """This process's ring identity for ``role`` ('' if it does not run that role)."""
        ...

    def subscribe(self, callback: Callable[[], None]) -> None:
        """``callback`` runs (in the event loop) after every change of any ring."""
        ...

    async def refresh(self) -> None:
        """Re-read the live members now (a router calls this after a call hit a moved or dead owner)."""
        ...

    def members(self) -> list[MemberRecord]: ...


def member_id(role: str, address: str) -> str:
    return f"{role}@{address}" if address else f"{role}@{socket.gethostname()}:{os.getpid()}"


@dataclass
class ClusterMembership:
    """Heartbeats this process's rows and keeps the per-role rings of live members current."""

    store: MembershipStore
    # role -> address peers dial (ring identity); "" for roles without a port (internal worker).
    local_roles: dict[str, str]
    config: MembershipConfig = field(default_factory=MembershipConfig)
    clock: Clock = field(default_factory=RealClock)
    _rings: dict[str, HashRing] = field(default_factory=dict)
    _members: list[MemberRecord] = field(default_factory=list)
    _callbacks: list[Callable[[], None]] = field(default_factory=list)
    _session_start: datetime | None = None
    _task: asyncio.Task[None] | None = None
    _refresh_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _last_refresh: float = 0.0

    def ring(self, role: str) -> HashRing:
        return self._rings.get(role, HashRing())

    def self_member(self, role: str) -> str:
        return self.local_roles.get(role, "")

    def subscribe(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)

    def members(self) -> list[MemberRecord]:
        return list(self._members)

    async def start(self) -> None:
        """Register, then read the members once, so the first ring includes this process."""
        self._session_start = self.clock.now()
        await self._heartbeat()
        await self._reload()
        self._task = asyncio.create_task(self._loop(), name="membership")
        log.info("joined cluster", roles=self.local_roles,
                 members={r: list(self.ring(r).members) for r in RING_ROLES})

    async def stop(self) -> None:
        """Leave gracefully: delete our rows so peers take over at their next refresh, not after expiry."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for role, address in self.local_roles.items():
            with contextlib.suppress(Exception):
                await self.store.remove_member(member_id(role, address))

    async def refresh(self) -> None:
        """Rate-limited re-read: many failing calls at once cause one query, not a storm."""
        async with self._refresh_lock:
            if time.monotonic() - self._last_refresh < min(0.2, self.config.heartbeat_seconds / 2):
                return
            await self._reload()

    async def _heartbeat(self) -> None:
        now = self.clock.now()
        assert self._session_start is not None
        for role, address in self.local_roles.items():
            await self.store.upsert_member(MemberRecord(member_id(role, address), role, address,
                                                        self._session_start, now))

    async def _reload(self) -> None:
        now = self.clock.now()
        alive = await self.store.list_members(alive_since=now - timedelta(seconds=self.config.expiry_seconds))
        self._last_refresh = time.monotonic()
        self._members = alive
        rings = {
            role: HashRing.build(m.rpc_address for m in alive if m.role == role and m.rpc_address)
            for role in RING_ROLES
        }
        # Our own rows are alive by definition, even if a slow heartbeat let them look stale to the query.
        for role, address in self.local_roles.items():
            if role in rings and address and address not in rings[role].members:
                rings[role] = HashRing.build([*rings[role].members, address])
        MEMBER_UP.clear()
        for m in alive:
            MEMBER_UP.labels(m.role, m.rpc_address, m.host_id).set(1)
        changed = rings != self._rings
        self._rings = rings
        if changed:
            log.info("membership changed", members={r: list(rg.members) for r, rg in rings.items()})
            for cb in list(self._callbacks):
                try:
                    cb()
                except Exception:
                    log.exception("membership listener failed")

    async def _loop(self) -> None:
        prune_every = 0
        while True:
            await asyncio.sleep(self.config.heartbeat_seconds)
            try:
                await self._heartbeat()
                async with self._refresh_lock:
                    await self._reload()
                prune_every += 1
                if prune_every >= 30:
                    prune_every = 0
                    horizon = self.config.expiry_seconds * self.config.prune_after_expiries
                    await self.store.prune_members(self.clock.now() - timedelta(seconds=horizon))
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 - a database blip must not stop heartbeats for good
                log.warning("membership heartbeat failed", error=repr(err))
