"""OperatorService: search attributes (CLI ``operator search-attribute``), ListClusters, DeleteNamespace.

Custom search attributes are per namespace, stored as aliases on the namespace record (see search_attributes.py).
"""

from __future__ import annotations

from temporalio.api.enums.v1 import common_pb2 as common_enums
from temporalio.api.operatorservice.v1 import request_response_pb2 as opv1
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv1

from server.common.errors import InvalidArgument, NotFound
from services.frontend.context import FrontendContext
from services.frontend.namespace_delete_handlers import NamespaceDeleteHandlers
from services.frontend.namespace_handlers import modify_namespace
from services.frontend.search_attributes import SYSTEM_SEARCH_ATTRIBUTES, custom_attributes, free_column
from services.frontend.validation import check_id

IVT = common_enums.IndexedValueType


class OperatorHandler(NamespaceDeleteHandlers):
    def __init__(self, ctx: FrontendContext) -> None:
        self._ctx = ctx

    def _require_namespace(self, namespace: str) -> str:
        if not namespace:
            raise InvalidArgument("Namespace not set on request.")
        return namespace

    async def ListSearchAttributes(
        self, request: opv1.ListSearchAttributesRequest, *, deadline: float | None = None
    ) -> opv1.ListSearchAttributesResponse:
        entry = await self._ctx.namespaces.by_name(self._require_namespace(request.namespace))
        custom = custom_attributes(dict(entry.description.config.custom_search_attribute_aliases))
        return opv1.ListSearchAttributesResponse(
            system_attributes=SYSTEM_SEARCH_ATTRIBUTES, custom_attributes=custom, storage_schema={}
        )

    async def AddSearchAttributes(
        self, request: opv1.AddSearchAttributesRequest, *, deadline: float | None = None
    ) -> opv1.AddSearchAttributesResponse:
        name = self._require_namespace(request.namespace)
        wanted = dict(request.search_attributes)
        if not wanted:
            raise InvalidArgument("SearchAttributes are not set on request.")
        for attr, value_type in wanted.items():
            check_id(attr, "SearchAttribute name", self._ctx.config)
            if attr in SYSTEM_SEARCH_ATTRIBUTES:
                raise InvalidArgument(f"Search attribute {attr} is reserved by the system.")
            if value_type == IVT.INDEXED_VALUE_TYPE_UNSPECIFIED or value_type not in IVT.values():
                raise InvalidArgument(f"Unknown index value type {value_type} for search attribute {attr}.")

        def add(desc: wsv1.DescribeNamespaceResponse) -> None:
            aliases = desc.config.custom_search_attribute_aliases
            existing = custom_attributes(dict(aliases))
            for attr, value_type in wanted.items():
                if attr in existing:
                    if existing[attr] == value_type:
                        continue  # idempotent, as in the real server
                    raise InvalidArgument(
                        f"Search attribute {attr} already exists with type {IVT.Name(existing[attr])}."
                    )
                column = free_column(dict(aliases), value_type)
                if column is None:
                    raise InvalidArgument(
                        f"Unable to create search attribute {attr}: no free {IVT.Name(value_type)} slot left "
                        "in this namespace."
                    )
                aliases[column] = attr

        await modify_namespace(self._ctx, name, add)
        return opv1.AddSearchAttributesResponse()

    async def RemoveSearchAttributes(
        self, request: opv1.RemoveSearchAttributesRequest, *, deadline: float | None = None
    ) -> opv1.RemoveSearchAttributesResponse:
        name = self._require_namespace(request.namespace)
        if not request.search_attributes:
            raise InvalidArgument("SearchAttributes are not set on request.")
        for attr in request.search_attributes:
            if attr in SYSTEM_SEARCH_ATTRIBUTES:
                raise InvalidArgument(f"Unable to remove system search attribute {attr}.")

        def remove(desc: wsv1.DescribeNamespaceResponse) -> None:
            aliases = desc.config.custom_search_attribute_aliases
            by_alias = {alias: column for column, alias in aliases.items()}
            for attr in request.search_attributes:
                if attr not in by_alias:
                    raise NotFound(f"Search attribute {attr} doesn't exist.")
                del aliases[by_alias[attr]]

        await modify_namespace(self._ctx, name, remove)
        return opv1.RemoveSearchAttributesResponse()

    async def ListClusters(
        self, request: opv1.ListClustersRequest, *, deadline: float | None = None
    ) -> opv1.ListClustersResponse:
        cluster = await self._ctx.cluster()
        return opv1.ListClustersResponse(
            clusters=[
                opv1.ClusterMetadata(
                    cluster_name=cluster.cluster_name,
                    cluster_id=cluster.cluster_id,
                    initial_failover_version=1,
                    history_shard_count=cluster.num_history_shards,
                    is_connection_enabled=True,
                )
            ]
        )
