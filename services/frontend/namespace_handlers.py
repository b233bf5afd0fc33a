"""Namespace RPCs: Register / Describe / List / Update (and the deprecated DeprecateNamespace), plus start-dev's
default namespaces. The stored record is the public DescribeNamespaceResponse, so these are read-modify-write on it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

from google.protobuf.duration_pb2 import Duration
from temporalio.api.enums.v1 import namespace_pb2 as ns_enums
from temporalio.api.errordetails.v1 import message_pb2 as errordetails
from temporalio.api.namespace.v1 import message_pb2 as nsv1
from temporalio.api.replication.v1 import message_pb2 as replication
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv1

from server.common.durations import from_duration, validate_and_cap
from server.common.errors import (
    AlreadyExists,
    ConditionFailed,
    InvalidArgument,
    NamespaceInvalidState,
    NamespaceNotFound,
    Unavailable,
)
from server.persistence.interface import NamespaceRecord
from services.frontend.base import HandlerBase, log, log_context
from services.frontend.context import FrontendContext
from services.frontend.namespace_registry import ALLOWED_STATES, entry_from_record
from services.frontend.system_handlers import system_capabilities
from services.frontend.validation import check_id

_UPDATE_ATTEMPTS = 5
_ARCHIVAL_OFF = (ns_enums.ARCHIVAL_STATE_UNSPECIFIED, ns_enums.ARCHIVAL_STATE_DISABLED)


def new_namespace_description(
    namespace_id: str,
    name: str,
    retention: Duration,
    cluster_name: str,
    *,
    description: str = "",
    owner_email: str = "",
    data: dict[str, str] | None = None,
) -> wsv1.DescribeNamespaceResponse:
    """The stored form of a new namespace. Capabilities stay false: the SDKs change behaviour on them (ref 2.2)."""
    return wsv1.DescribeNamespaceResponse(
        namespace_info=nsv1.NamespaceInfo(
            name=name,
            id=namespace_id,
            state=ns_enums.NAMESPACE_STATE_REGISTERED,
            description=description,
            owner_email=owner_email,
            data=data or {},
            capabilities=nsv1.NamespaceInfo.Capabilities(),
            limits=nsv1.NamespaceInfo.Limits(),
            supports_schedules=False,
        ),
        config=nsv1.NamespaceConfig(
            workflow_execution_retention_ttl=retention,
            history_archival_state=ns_enums.ARCHIVAL_STATE_DISABLED,
            visibility_archival_state=ns_enums.ARCHIVAL_STATE_DISABLED,
        ),
        replication_config=replication.NamespaceReplicationConfig(
            active_cluster_name=cluster_name,
            clusters=[replication.ClusterReplicationConfig(cluster_name=cluster_name)],
        ),
        failover_version=0,
        is_global_namespace=False,
    )


def _duration(td: timedelta) -> Duration:
    d = Duration()
    d.FromTimedelta(td)
    return d


async def create_default_namespaces(ctx: FrontendContext, names: list[str], retention: timedelta) -> None:
    """Create the namespaces start-dev promises (``default``); existing ones are left as they are."""
    cluster = await ctx.cluster()
    for name in names:
        if await ctx.persistence.namespaces.get_namespace_by_name(name) is not None:
            continue
        ns_id = str(uuid.uuid4())
        desc = new_namespace_description(ns_id, name, _duration(retention), cluster.cluster_name)
        try:
            await ctx.persistence.namespaces.create_namespace(
                NamespaceRecord(ns_id, name, desc.SerializeToString())
            )
            log.info("namespace created", namespace=name, namespace_id=ns_id)
        except AlreadyExists:
            pass  # another process created it first


async def modify_namespace(
    ctx: FrontendContext, name: str, mutate: Callable[[wsv1.DescribeNamespaceResponse], None]
) -> wsv1.DescribeNamespaceResponse:
    """Apply ``mutate`` to the stored description with optimistic concurrency (retry on a concurrent update)."""
    store = ctx.persistence.namespaces
    for _ in range(_UPDATE_ATTEMPTS):
        record = await store.get_namespace_by_name(name)
        if record is None:
            raise NamespaceNotFound(name)
        entry = entry_from_record(record)
        if entry.state == ns_enums.NAMESPACE_STATE_DELETED:
            raise NamespaceInvalidState(entry.name, entry.state, ALLOWED_STATES)
        desc = wsv1.DescribeNamespaceResponse()
        desc.CopyFrom(entry.description)
        mutate(desc)
        new_record = NamespaceRecord(
            record.id, record.name, desc.SerializeToString(), record.notification_version + 1
        )
        try:
            await store.update_namespace(new_record, record.notification_version)
        except ConditionFailed:
            continue
        ctx.namespaces.invalidate(entry)
        with log_context(namespace=name, namespace_id=record.id):
            log.info("namespace updated")
        return desc
    raise Unavailable(f"Namespace {name} is being updated concurrently; retry.")


def with_capabilities(
    desc: wsv1.DescribeNamespaceResponse, poll_complete_on_shutdown: bool = False
) -> wsv1.DescribeNamespaceResponse:
    """What this server supports, told at read time (so namespaces stored before a feature landed say it too).
    Core changes behaviour on the worker-related flags, so each is set only once Durata serves it: heartbeats are;
    polls completed on shutdown only when configured (see FrontendConfig); autoscaling and pagination stay false."""
    out = wsv1.DescribeNamespaceResponse()
    out.CopyFrom(desc)
    caps = out.namespace_info.capabilities
    caps.sync_update = caps.async_update = True
    caps.eager_workflow_start = system_capabilities().eager_workflow_start
    # Served by the worker registry (services/matching/workers.py) and ShutdownWorker ending the worker's polls.
    caps.worker_heartbeats = True
    caps.worker_poll_complete_on_shutdown = poll_complete_on_shutdown
    return out


class NamespaceHandlers(HandlerBase):
    def _check_retention(self, retention: Duration) -> None:
        minimum = self._ctx.config.min_namespace_retention
        reason = validate_and_cap(retention)
        if reason is not None:
            raise InvalidArgument(f"An invalid WorkflowExecutionRetentionPeriod is set on request: {reason}.")
        if from_duration(retention) < minimum:
            raise InvalidArgument(
                f"A valid retention period is not set on request: it must be at least {minimum.total_seconds():g}s."
            )

    async def _check_clusters(self, active_cluster_name: str, clusters: list[str]) -> None:
        ours = (await self._ctx.cluster()).cluster_name
        for name in [active_cluster_name, *clusters]:
            if name and name != ours:
                raise InvalidArgument(
                    f"Cluster {name!r} is unknown: this cluster ({ours!r}) does not replicate."
                )

    async def RegisterNamespace(
        self, request: wsv1.RegisterNamespaceRequest, *, deadline: float | None = None
    ) -> wsv1.RegisterNamespaceResponse:
        name = request.namespace
        if not name:
            raise InvalidArgument("Namespace not set on request.")
        check_id(name, "Namespace", self._ctx.config)
        check_id(request.description, "Description", self._ctx.config, required=False)
        check_id(request.owner_email, "OwnerEmail", self._ctx.config, required=False)
        if request.HasField("workflow_execution_retention_period"):
            retention = request.workflow_execution_retention_period
            self._check_retention(retention)
        else:
            retention = _duration(self._ctx.config.default_namespace_retention)
        if request.is_global_namespace:
            raise InvalidArgument("Global namespaces are not supported: this cluster does not replicate.")
        if (
            request.history_archival_state not in _ARCHIVAL_OFF
            or request.visibility_archival_state not in _ARCHIVAL_OFF
        ):
            raise InvalidArgument("Archival is not supported by this server; leave it disabled.")
        await self._check_clusters(request.active_cluster_name, [c.cluster_name for c in request.clusters])

        store = self._ctx.persistence.namespaces
        already = AlreadyExists("Namespace already exists.", errordetails.NamespaceAlreadyExistsFailure())
        if await store.get_namespace_by_name(name) is not None:
            raise already
        ns_id = str(uuid.uuid4())
        desc = new_namespace_description(
            ns_id,
            name,
            retention,
            (await self._ctx.cluster()).cluster_name,
            description=request.description,
            owner_email=request.owner_email,
            data=dict(request.data),
        )
        try:
            await store.create_namespace(NamespaceRecord(ns_id, name, desc.SerializeToString()))
        except AlreadyExists:
            raise already from None
        with log_context(namespace=name, namespace_id=ns_id):
            log.info("namespace registered")
        return wsv1.RegisterNamespaceResponse()

    async def DescribeNamespace(
        self, request: wsv1.DescribeNamespaceRequest, *, deadline: float | None = None
    ) -> wsv1.DescribeNamespaceResponse:
        # Read through to the store (not the resolution cache) so the CLI sees its own update immediately.
        store = self._ctx.persistence.namespaces
        if request.namespace and request.id:
            raise InvalidArgument("GetNamespace operation failed.  Both ID and Name specified in request.")
        if request.namespace:
            key = request.namespace
            record = await store.get_namespace_by_name(request.namespace)
        elif request.id:
            key = request.id
            record = await store.get_namespace_by_id(request.id)
        else:
            raise InvalidArgument("Namespace not set on request.")
        if record is None:
            raise NamespaceNotFound(key)
        # A deleted namespace (under its tombstone name, until the internal worker removes it) is described
        # with state DELETED, as Temporal does: DescribeNamespace reads the store, not the validated registry.
        return with_capabilities(
            entry_from_record(record).description, self._ctx.config.worker_poll_complete_on_shutdown
        )

    async def ListNamespaces(
        self, request: wsv1.ListNamespacesRequest, *, deadline: float | None = None
    ) -> wsv1.ListNamespacesResponse:
        if request.page_size < 0:
            raise InvalidArgument("PageSize cannot be negative.")
        page_size = request.page_size or self._ctx.config.default_namespace_page_size
        token_in = request.next_page_token or None
        if token_in is not None:
            try:
                token_in.decode()  # a token is the last name of the previous page; anything else is foreign
            except UnicodeDecodeError:
                raise InvalidArgument("Invalid NextPageToken.") from None
        records, token = await self._ctx.persistence.namespaces.list_namespaces(page_size, token_in)
        include_deleted = request.namespace_filter.include_deleted
        namespaces = []
        for record in records:
            entry = entry_from_record(record)
            if entry.state == ns_enums.NAMESPACE_STATE_DELETED and not include_deleted:
                continue
            namespaces.append(with_capabilities(entry.description, self._ctx.config.worker_poll_complete_on_shutdown))
        return wsv1.ListNamespacesResponse(namespaces=namespaces, next_page_token=token or b"")

    async def UpdateNamespace(
        self, request: wsv1.UpdateNamespaceRequest, *, deadline: float | None = None
    ) -> wsv1.UpdateNamespaceResponse:
        if not request.namespace:
            raise InvalidArgument("Namespace not set on request.")
        if request.promote_namespace:
            raise InvalidArgument("Global namespaces are not supported: this cluster does not replicate.")
        if request.HasField("replication_config"):
            rc = request.replication_config
            await self._check_clusters(rc.active_cluster_name, [c.cluster_name for c in rc.clusters])
        desc = await modify_namespace(self._ctx, request.namespace, lambda d: self._apply_update(d, request))
        return wsv1.UpdateNamespaceResponse(
            namespace_info=desc.namespace_info,
            config=desc.config,
            replication_config=desc.replication_config,
            failover_version=desc.failover_version,
            is_global_namespace=desc.is_global_namespace,
        )

    async def DeprecateNamespace(
        self, request: wsv1.DeprecateNamespaceRequest, *, deadline: float | None = None
    ) -> wsv1.DeprecateNamespaceResponse:
        if not request.namespace:
            raise InvalidArgument("Namespace not set on request.")

        def deprecate(desc: wsv1.DescribeNamespaceResponse) -> None:
            desc.namespace_info.state = ns_enums.NAMESPACE_STATE_DEPRECATED

        await modify_namespace(self._ctx, request.namespace, deprecate)
        return wsv1.DeprecateNamespaceResponse()

    def _apply_update(
        self, desc: wsv1.DescribeNamespaceResponse, request: wsv1.UpdateNamespaceRequest
    ) -> None:
        """Mirror the real server: empty strings and unspecified enums mean "leave as is"; data merges."""
        info = desc.namespace_info
        if request.HasField("update_info"):
            upd = request.update_info
            check_id(upd.description, "Description", self._ctx.config, required=False)
            check_id(upd.owner_email, "OwnerEmail", self._ctx.config, required=False)
            if upd.description:
                info.description = upd.description
            if upd.owner_email:
                info.owner_email = upd.owner_email
            for key, value in upd.data.items():
                info.data[key] = value
            if upd.state not in (ns_enums.NAMESPACE_STATE_UNSPECIFIED, info.state):
                if upd.state == ns_enums.NAMESPACE_STATE_DELETED:
                    raise InvalidArgument("Namespaces are deleted with OperatorService.DeleteNamespace.")
                info.state = upd.state
        if request.HasField("config"):
            cfg = request.config
            if cfg.HasField("workflow_execution_retention_ttl"):
                self._check_retention(cfg.workflow_execution_retention_ttl)
                desc.config.workflow_execution_retention_ttl.CopyFrom(cfg.workflow_execution_retention_ttl)
            if (
                cfg.history_archival_state not in _ARCHIVAL_OFF
                or cfg.visibility_archival_state not in _ARCHIVAL_OFF
            ):
                raise InvalidArgument("Archival is not supported by this server; leave it disabled.")
            if cfg.custom_search_attribute_aliases:
                raise InvalidArgument(
                    "Search attribute aliases are managed with OperatorService.AddSearchAttributes / "
                    "RemoveSearchAttributes."
                )
            for checksum, binary in cfg.bad_binaries.binaries.items():
                desc.config.bad_binaries.binaries[checksum].CopyFrom(binary)
        if request.delete_bad_binary:
            if request.delete_bad_binary not in desc.config.bad_binaries.binaries:
                raise InvalidArgument(
                    f"Bad binary checksum {request.delete_bad_binary} is not set on the namespace."
                )
            del desc.config.bad_binaries.binaries[request.delete_bad_binary]
