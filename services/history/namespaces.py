"""Namespace lookups by id (History needs the name and the retention)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio.api.workflowservice.v1 import request_response_pb2 as ws

from server.common.errors import NamespaceNotFound
from server.persistence.interface import Persistence

TTL_SECONDS = 10.0


@dataclass
class NamespaceEntry:
    id: str
    name: str
    retention: timedelta
    # Custom search attributes: slot -> alias (the namespace config's custom_search_attribute_aliases).
    search_attribute_aliases: dict[str, str] = field(default_factory=dict)


class NamespaceCache:
    def __init__(self, persistence: Persistence, default_retention: timedelta) -> None:
        self._persistence = persistence
        self._default_retention = default_retention
        self._cache: dict[str, tuple[float, NamespaceEntry]] = {}

    async def get_by_name(self, name: str) -> NamespaceEntry:
        rec = await self._persistence.namespaces.get_namespace_by_name(name)
        if rec is None:
            raise NamespaceNotFound(name)
        return await self.get(rec.id)

    def invalidate(self, namespace_id: str) -> None:
        """Forget a cached entry (e.g. a search attribute name it does not know yet was just registered)."""
        self._cache.pop(namespace_id, None)

    async def get(self, namespace_id: str) -> NamespaceEntry:
        hit = self._cache.get(namespace_id)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        rec = await self._persistence.namespaces.get_namespace_by_id(namespace_id)
        if rec is None:
            raise NamespaceNotFound(namespace_id)
        desc = ws.DescribeNamespaceResponse()
        desc.ParseFromString(rec.data)
        retention = self._default_retention
        if desc.config.HasField("workflow_execution_retention_ttl"):
            ttl = desc.config.workflow_execution_retention_ttl.ToTimedelta()
            if ttl > timedelta(0):
                retention = ttl
        entry = NamespaceEntry(rec.id, rec.name, retention, dict(desc.config.custom_search_attribute_aliases))
        self._cache[namespace_id] = (time.monotonic() + TTL_SECONDS, entry)
        return entry
