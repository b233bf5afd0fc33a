"""The worker registry: the latest heartbeat of every live worker, per namespace, in memory (sans-IO).

Workers (the SDKs' core) send RecordWorkerHeartbeat periodically and a final heartbeat with ShutdownWorker.
As in Temporal, the registry lives on the matching host that owns the namespace's registry key (so heartbeats
and lists meet on one host) and is not persisted: a host that starts or takes over a namespace learns its
workers from their next heartbeats.

- An entry lives ``ttl`` after its last heartbeat (Temporal: 5 minutes), then is evicted; beyond ``max_entries``
  the least recently seen entries older than ``min_evict_age`` go first.
- A heartbeat with status SHUTDOWN removes the worker at once; SHUTTING_DOWN keeps it (listed as shutting down)
  until it expires.
- Workers on internal task queues (``temporal-sys-``) are system workers, listed only on request.
- ListWorkers pages in WorkerInstanceKey order; the page token names the last key of the previous page.

``ShutdownKeys`` remembers recently shut-down worker instance keys so a poll that arrives after ShutdownWorker
(in flight at the time, or moving between matching hosts) answers empty at once.

Every method takes ``now`` (seconds, from the matching service's injected clock): no clock, no I/O here.
"""

from __future__ import annotations

import bisect
import json
from collections import OrderedDict
from dataclasses import dataclass, field

from temporalio.api.enums.v1 import common_pb2 as common_enums
from temporalio.api.worker.v1 import message_pb2 as worker_pb

from server.common.errors import InvalidArgument, NotFound
from services.matching.worker_query import WorkerQuery

SHUTDOWN = common_enums.WORKER_STATUS_SHUTDOWN
SYSTEM_TASK_QUEUE_PREFIX = "temporal-sys-"
# Routing key of a namespace's registry on the matching ring (Temporal routes it as a task queue partition
# named "not-applicable").
REGISTRY_QUEUE_NAME = "not-applicable"


def is_system_worker(hb: worker_pb.WorkerHeartbeat) -> bool:
    return hb.task_queue.startswith(SYSTEM_TASK_QUEUE_PREFIX)


@dataclass
class WorkerRegistryConfig:
    ttl: float = 300.0
    min_evict_age: float = 60.0
    max_entries: int = 1_000_000


@dataclass
class _Entry:
    namespace_id: str
    heartbeat: worker_pb.WorkerHeartbeat
    last_seen: float
    system: bool


@dataclass
class ListPage:
    workers: list[worker_pb.WorkerHeartbeat]
    next_page_token: bytes = b""


def list_info(hb: worker_pb.WorkerHeartbeat) -> worker_pb.WorkerListInfo:
    """The summary ListWorkers returns beside each full heartbeat."""
    info = worker_pb.WorkerListInfo(
        worker_instance_key=hb.worker_instance_key,
        worker_identity=hb.worker_identity,
        task_queue=hb.task_queue,
        sdk_name=hb.sdk_name,
        sdk_version=hb.sdk_version,
        status=hb.status,
        host_name=hb.host_info.host_name,
        worker_grouping_key=hb.host_info.worker_grouping_key,
        process_id=hb.host_info.process_id,
        plugins=hb.plugins,
        drivers=hb.drivers,
    )
    if hb.HasField("deployment_version"):
        info.deployment_version.CopyFrom(hb.deployment_version)
    if hb.HasField("start_time"):
        info.start_time.CopyFrom(hb.start_time)
    return info



@dataclass
class WorkerRegistry:
    config: WorkerRegistryConfig = field(default_factory=WorkerRegistryConfig)
    # namespace_id -> worker_instance_key -> entry
    _by_ns: dict[str, dict[str, _Entry]] = field(default_factory=dict)
    # (namespace_id, key) in last-seen order, oldest first
    _order: OrderedDict[tuple[str, str], _Entry] = field(default_factory=OrderedDict)

    def __len__(self) -> int:
        return len(self._order)

    # ------------------------------------------------------------------ writes

    def record(self, namespace_id: str, heartbeats: list[worker_pb.WorkerHeartbeat], now: float) -> None:
        self.evict(now)
        workers = self._by_ns.setdefault(namespace_id, {})
        for hb in heartbeats:
            key = hb.worker_instance_key
            if hb.status == SHUTDOWN:
                self._remove(namespace_id, key)
                continue
            stored = worker_pb.WorkerHeartbeat()
            stored.CopyFrom(hb)
            entry = _Entry(namespace_id, stored, now, is_system_worker(hb))
            workers[key] = entry
            self._order.pop((namespace_id, key), None)
            self._order[(namespace_id, key)] = entry
        if not workers:
            del self._by_ns[namespace_id]
        self._evict_by_capacity(now)

    def _remove(self, namespace_id: str, key: str) -> None:
        self._order.pop((namespace_id, key), None)
        workers = self._by_ns.get(namespace_id)
        if workers is not None:
            workers.pop(key, None)
            if not workers:
                del self._by_ns[namespace_id]

    def evict(self, now: float) -> int:
        """Drop the entries not refreshed within ``ttl``; returns how many."""
        removed = 0
        expire_before = now - self.config.ttl
        while self._order:
            (ns_id, key), entry = next(iter(self._order.items()))
            if entry.last_seen >= expire_before:
                break
            self._remove(ns_id, key)
            removed += 1
        return removed

    def _evict_by_capacity(self, now: float) -> None:
        threshold = now - self.config.min_evict_age
        while len(self._order) > self.config.max_entries:
            (ns_id, key), entry = next(iter(self._order.items()))
            if entry.last_seen >= threshold:
                break  # everything left is too young to evict
            self._remove(ns_id, key)

    # ------------------------------------------------------------------ reads

    def _filter(
        self, namespace_id: str, query: str, include_system: bool, now: float
    ) -> list[worker_pb.WorkerHeartbeat]:
        matcher = WorkerQuery(query)  # refuses a malformed filter even when there is nothing to match
        self.evict(now)
        out = []
        for entry in self._by_ns.get(namespace_id, {}).values():
            if entry.system and not include_system:
                continue
            if matcher.matches(entry.heartbeat):
                out.append(entry.heartbeat)
        return out

    def list(
        self,
        namespace_id: str,
        now: float,
        query: str = "",
        page_size: int = 0,
        next_page_token: bytes = b"",
        include_system: bool = False,
    ) -> ListPage:
        workers = self._filter(namespace_id, query, include_system, now)
        workers.sort(key=lambda hb: hb.worker_instance_key)
        cursor = ""
        if next_page_token:
            try:
                decoded = json.loads(next_page_token)
                last = decoded["l"] if isinstance(decoded, dict) else None
                if not isinstance(last, str):
                    raise ValueError
                cursor = last
            except (ValueError, KeyError, UnicodeDecodeError):
                raise InvalidArgument("invalid next_page_token") from None
        if not workers:
            return ListPage([])
        start = bisect.bisect_right([hb.worker_instance_key for hb in workers], cursor) if cursor else 0
        end = len(workers) if page_size <= 0 else min(start + page_size, len(workers))
        page = workers[start:end]
        token = b""
        if page and end < len(workers):
            token = json.dumps({"l": page[-1].worker_instance_key}, separators=(",", ":")).encode()
        return ListPage(page, token)

    def count(self, namespace_id: str, now: float, query: str = "", include_system: bool = False) -> int:
        return len(self._filter(namespace_id, query, include_system, now))

    def describe(self, namespace_id: str, worker_instance_key: str, now: float) -> worker_pb.WorkerHeartbeat:
        self.evict(now)
        workers = self._by_ns.get(namespace_id)
        entry = None if workers is None else workers.get(worker_instance_key)
        if entry is None:
            raise NotFound(f"Worker {worker_instance_key} not found")
        return entry.heartbeat


class ShutdownKeys:
    """Worker instance keys shut down within the last ``ttl`` seconds (Temporal keeps them 30 s)."""

    def __init__(self, ttl: float = 30.0, max_size: int = 10_000) -> None:
        self._ttl = ttl
        self._max = max_size
        self._keys: OrderedDict[str, float] = OrderedDict()

    def add(self, key: str, now: float) -> None:
        if not key:
            return
        self._keys.pop(key, None)
        self._keys[key] = now
        self._prune(now)
        while len(self._keys) > self._max:
            self._keys.popitem(last=False)

    def __contains__(self, key: str) -> bool:
        return bool(key) and key in self._keys

    def contains(self, key: str, now: float) -> bool:
        self._prune(now)
        return key in self

    def _prune(self, now: float) -> None:
        while self._keys:
            key, at = next(iter(self._keys.items()))
            if now - at < self._ttl:
                break
            del self._keys[key]
