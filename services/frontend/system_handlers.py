"""Cluster-level RPCs that need no namespace: GetSystemInfo (every client calls it on connect), GetClusterInfo,
GetSearchAttributes."""

from __future__ import annotations

from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv1

from services.frontend.base import HandlerBase
from services.frontend.search_attributes import SYSTEM_SEARCH_ATTRIBUTES

# Client name -> supported version range (what the real server advertises; clients only display it).
SUPPORTED_CLIENTS = {
    "temporal-cli": ">=0.0.0 <2.0.0",
    "temporal-go": ">=1.0.0 <2.0.0",
    "temporal-java": ">=1.0.0 <2.0.0",
    "temporal-php": ">=1.0.0 <2.0.0",
    "temporal-python": ">=0.1.0 <2.0.0",
    "temporal-typescript": ">=0.1.0 <2.0.0",
    "temporal-server": ">=1.0.0 <2.0.0",
    "temporal-ui": ">=2.0.0 <3.0.0",
}


def system_capabilities() -> wsv1.GetSystemInfoResponse.Capabilities:
    """Only what Durata implements: the SDKs change behaviour on these flags (reference 2.1)."""
    return wsv1.GetSystemInfoResponse.Capabilities(
        signal_and_query_header=True,
        internal_error_differentiation=True,
        activity_failure_include_heartbeat=True,
        supports_schedules=False,
        encoded_failure_attributes=True,
        build_id_based_versioning=False,
        upsert_memo=True,
        eager_workflow_start=True,
        sdk_metadata=True,
        count_group_by_execution_status=True,
        nexus=False,
    )


class SystemHandlers(HandlerBase):
    async def GetSystemInfo(
        self, request: wsv1.GetSystemInfoRequest, *, deadline: float | None = None
    ) -> wsv1.GetSystemInfoResponse:
        return wsv1.GetSystemInfoResponse(
            server_version=self._ctx.config.server_version, capabilities=system_capabilities()
        )

    async def GetClusterInfo(
        self, request: wsv1.GetClusterInfoRequest, *, deadline: float | None = None
    ) -> wsv1.GetClusterInfoResponse:
        cluster = await self._ctx.cluster()
        store = str(getattr(self._ctx.persistence, "name", "sql"))
        return wsv1.GetClusterInfoResponse(
            supported_clients=SUPPORTED_CLIENTS,
            server_version=self._ctx.config.server_version,
            cluster_id=cluster.cluster_id,
            cluster_name=cluster.cluster_name,
            history_shard_count=cluster.num_history_shards,
            persistence_store=store,
            visibility_store=store,
            initial_failover_version=1,
            failover_version_increment=10,
        )

    async def GetSearchAttributes(
        self, request: wsv1.GetSearchAttributesRequest, *, deadline: float | None = None
    ) -> wsv1.GetSearchAttributesResponse:
        # The request names no namespace, so only the system attributes are cluster-wide facts.
        return wsv1.GetSearchAttributesResponse(keys=SYSTEM_SEARCH_ATTRIBUTES)
