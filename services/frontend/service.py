"""FrontendService: the public API edge. Validates requests, resolves namespaces, routes to History/Matching."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest

from server.persistence.interface import Persistence
from services.frontend.base import log
from services.frontend.config import FrontendConfig
from services.frontend.context import FrontendContext
from services.frontend.handler import WorkflowServiceHandler
from services.frontend.namespace_handlers import create_default_namespaces
from services.frontend.namespace_registry import NamespaceRegistry
from services.frontend.operator import OperatorHandler
from services.frontend.search_attributes import parse_search_attribute_specs


class FrontendService:
    """Owns the WorkflowService and OperatorService handlers.

    ``history_client`` / ``matching_client`` are set by the app before ``start()``: the other service's handler
    object in one process, or a ``server.rpc.adapters.GrpcClient`` across processes.
    """

    def __init__(self, persistence: Persistence, config: FrontendConfig | None = None) -> None:
        self.config = config or FrontendConfig()
        self._ctx = FrontendContext(
            persistence=persistence,
            config=self.config,
            namespaces=NamespaceRegistry(persistence.namespaces, self.config.namespace_cache_ttl_seconds),
        )
        self.handler = WorkflowServiceHandler(self._ctx)
        self.operator_handler = OperatorHandler(self._ctx)
        # Set by services.frontend.grpc_server.register_grpc; flipped to NOT_SERVING on stop().
        self.health: Any = None

    @property
    def history_client(self) -> Any:
        return self._ctx.history_client

    @history_client.setter
    def history_client(self, client: Any) -> None:
        self._ctx.history_client = client

    @property
    def matching_client(self) -> Any:
        return self._ctx.matching_client

    @matching_client.setter
    def matching_client(self, client: Any) -> None:
        self._ctx.matching_client = client

    async def start(self) -> None:
        cluster = await self._ctx.cluster()
        log.info("frontend started", cluster=cluster.cluster_name, history_shards=cluster.num_history_shards)

    async def stop(self) -> None:
        """Report NOT_SERVING so load balancers and the CLI see the drain; in-flight calls finish on their own."""
        if self.health is not None:
            await self.health.enter_graceful_shutdown()
        self._ctx.namespaces.invalidate()
        log.info("frontend stopped")

    async def create_default_namespaces(self, names: list[str], retention: timedelta) -> None:
        """start-dev: make sure these namespaces exist (existing ones are left untouched)."""
        await create_default_namespaces(self._ctx, names, retention)

    async def register_search_attributes(self, names: list[str], specs: list[str]) -> None:
        """start-dev ``--search-attribute NAME=TYPE``: registered in each namespace (already there: left alone)."""
        wanted = parse_search_attribute_specs(specs)
        for name in names:
            await self.operator_handler.AddSearchAttributes(
                AddSearchAttributesRequest(namespace=name, search_attributes=wanted)
            )


__all__ = ["FrontendConfig", "FrontendService"]
