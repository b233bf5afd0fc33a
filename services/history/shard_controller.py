"""Cluster mode: which shards this history host owns follows the history ring.

On every membership change (and on a timer, to retry failed acquisitions) the controller acquires the shards
the ring assigns to this host (``update_shard`` with range_id + 1: the fencing step) and releases the others.
Releasing marks the shard lost first, so in-flight requests and long polls on it fail with ShardOwnershipLost
(retryable; the router follows it to the new owner). A shard lost to another host's acquisition while the ring
still says it is ours is re-acquired only after a cool-down, so two hosts with briefly different views do not
steal a shard back and forth.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING

import structlog
from prometheus_client import Gauge

from server.cluster.membership import Membership
from server.cluster.ring import shard_key
from server.metrics import REGISTRY

if TYPE_CHECKING:
    from services.history.service import HistoryService

log = structlog.get_logger("durata.history.shards")

SHARD_OWNED = Gauge(
    "durata_history_shard_owned",
    "1 for each history shard this host owns (its current range_id in durata_history_shard_range_id)",
    ["shard_id", "host"],
    registry=REGISTRY,
)
SHARD_RANGE = Gauge(
    "durata_history_shard_range_id", "range_id under which this host owns the shard", ["shard_id", "host"],
    registry=REGISTRY,
)
SHARDS_OWNED = Gauge("durata_history_shards_owned", "Shards owned by this history host", registry=REGISTRY)


class ShardController:
    def __init__(
        self, service: HistoryService, membership: Membership, num_shards: int,
        interval: float = 1.0, lost_cooldown: float = 3.0,
    ) -> None:
        self._svc = service
        self._membership = membership
        self._num_shards = num_shards
        self._interval = interval
        self._cooldown = lost_cooldown
        self._me = membership.self_member("history")
        self._held: set[int] = set()
        self._retry_after: dict[int, float] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def desired(self) -> set[int]:
        ring = self._membership.ring("history")
        return {s for s in range(1, self._num_shards + 1) if ring.lookup(shard_key(s)) == self._me}

    async def start(self) -> None:
        self._membership.subscribe(self._wake.set)
        await self.rebalance()
        self._task = asyncio.create_task(self._loop(), name="history-shard-controller")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for sid in list(self._held):
            self._forget(sid)

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._interval)
            self._wake.clear()
            try:
                await self.rebalance()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("shard rebalance failed")

    def _forget(self, sid: int) -> None:
        self._held.discard(sid)
        for gauge in (SHARD_OWNED, SHARD_RANGE):
            with contextlib.suppress(KeyError):
                gauge.remove(str(sid), self._me)

    async def rebalance(self) -> None:
        async with self._lock:
            engine = self._svc.engine
            now = time.monotonic()
            # Shards dropped behind our back (a write hit ShardOwnershipLost): cool down before retrying.
            for sid in list(self._held):
                shard = engine.shards.get(sid)
                if shard is None or shard.lost:
                    log.warning("shard lost to another host", shard_id=sid)
                    self._forget(sid)
                    self._retry_after[sid] = now + self._cooldown
            want = self.desired()
            for sid in sorted(self._held - want):
                await self._release(sid)
            todo = [s for s in sorted(want - self._held) if self._retry_after.get(s, 0.0) <= now]
            results = await asyncio.gather(*(self._acquire(s) for s in todo), return_exceptions=True)
            for sid, res in zip(todo, results, strict=True):
                if isinstance(res, BaseException):
                    log.warning("shard acquisition failed; will retry", shard_id=sid, error=repr(res))
                    self._retry_after[sid] = time.monotonic() + min(self._cooldown, self._interval)
            SHARDS_OWNED.set(len(self._held))
            if todo or want != self._held:
                log.info("shards rebalanced", owned=sorted(self._held), wanted=len(want))

    async def _acquire(self, sid: int) -> None:
        engine = self._svc.engine
        old = engine.shards.get(sid)
        if old is not None and not old.lost:
            self._held.add(sid)
            return
        await self._svc.acquire_shard(sid)
        self._held.add(sid)
        self._retry_after.pop(sid, None)
        shard = engine.shards[sid]
        SHARD_OWNED.labels(str(sid), self._me).set(1)
        SHARD_RANGE.labels(str(sid), self._me).set(shard.range_id)

    async def _release(self, sid: int) -> None:
        shard = self._svc.engine.shards.get(sid)
        if shard is not None:
            shard.lost = True  # in-flight calls and long polls on it now fail retryably
        await self._svc.release_shard(sid)
        self._forget(sid)
        log.info("shard released", shard_id=sid)

