"""Namespace name/id resolution with a short-TTL cache, and the stored namespace description.

A namespace is stored as ``NamespaceRecord(id, name, data=DescribeNamespaceResponse bytes)``: the record *is* the
public description, so DescribeNamespace is a read and a parse. Every namespaced RPC resolves its name here; the
cache keeps that off the database on the hot path, and its TTL bounds how stale a change made through another
frontend process can look.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from temporalio.api.enums.v1 import namespace_pb2 as ns_enums
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv1

from server.common.errors import NamespaceInvalidState, NamespaceNotFound
from server.persistence.interface import NamespaceRecord, NamespaceStore

# What the namespaced APIs accept (Temporal's default; DeleteNamespace reads the store itself).
ALLOWED_STATES = (ns_enums.NAMESPACE_STATE_REGISTERED, ns_enums.NAMESPACE_STATE_DEPRECATED)


@dataclass(frozen=True)
class NamespaceEntry:
    """A resolved namespace: what handlers need to route and validate."""

    id: str
    name: str
    description: wsv1.DescribeNamespaceResponse
    notification_version: int

    @property
    def state(self) -> int:
        return self.description.namespace_info.state


def entry_from_record(record: NamespaceRecord) -> NamespaceEntry:
    desc = wsv1.DescribeNamespaceResponse.FromString(record.data)
    return NamespaceEntry(record.id, record.name, desc, record.notification_version)


@dataclass
class _Cached:
    entry: NamespaceEntry
    expires_at: float


class NamespaceRegistry:
    """Resolves namespace names and ids; unknown -> ``NamespaceNotFound``. A deleted namespace is known only by its
    tombstone name (DeleteNamespace renames it) and answers ``NamespaceInvalidState``, as Temporal's namespace
    validator does; it is never cached, and DeleteNamespace drops the live entry from this process's cache at once
    (other frontends stop serving it when their entry expires, within ``ttl_seconds``)."""

    def __init__(self, store: NamespaceStore, ttl_seconds: float) -> None:
        self._store = store
        self._ttl = ttl_seconds
        self._by_name: dict[str, _Cached] = {}
        self._by_id: dict[str, _Cached] = {}

    async def by_name(self, name: str) -> NamespaceEntry:
        cached = self._by_name.get(name)
        if cached is not None and cached.expires_at > time.monotonic():
            return cached.entry
        record = await self._store.get_namespace_by_name(name)
        return self._accept(record, name)

    async def by_id(self, namespace_id: str) -> NamespaceEntry:
        cached = self._by_id.get(namespace_id)
        if cached is not None and cached.expires_at > time.monotonic():
            return cached.entry
        record = await self._store.get_namespace_by_id(namespace_id)
        return self._accept(record, namespace_id)

    def invalidate(self, entry: NamespaceEntry | None = None) -> None:
        """Drop one namespace (after this process changed it) or everything."""
        if entry is None:
            self._by_name.clear()
            self._by_id.clear()
            return
        self._by_name.pop(entry.name, None)
        self._by_id.pop(entry.id, None)

    def _accept(self, record: NamespaceRecord | None, key: str) -> NamespaceEntry:
        if record is None:
            raise NamespaceNotFound(key)
        entry = entry_from_record(record)
        if entry.state == ns_enums.NAMESPACE_STATE_DELETED:
            raise NamespaceInvalidState(entry.name, entry.state, ALLOWED_STATES)
        cached = _Cached(entry, time.monotonic() + self._ttl)
        self._by_name[entry.name] = cached
        self._by_id[entry.id] = cached
        return entry
