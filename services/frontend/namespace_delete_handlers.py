"""OperatorService.DeleteNamespace, as Temporal does it.

Deleting a namespace is two phases:

1. Synchronously (the RPC): the namespace is marked ``NAMESPACE_STATE_DELETED`` and renamed, in ONE write, to the
   tombstone name ``<name>-deleted-<first 5 chars of its id>`` (longer if that is taken), which the response
   returns as ``deleted_namespace``. From then on the old name is unknown (``Namespace <name> is not found.``) and
   can be registered again right away; the new namespace gets a new id, so it shares nothing with the old one.
   This frontend's cache forgets the namespace at once; other frontends within their cache TTL
   (``frontend.namespace_cache_ttl_seconds``).
2. In the background: the internal worker (services/internal_worker/delete_namespace.py) finds namespaces in
   the DELETED state, waits a grace period so that every cache has expired, then calls DeleteNamespace again on
   the tombstone name. On a namespace that is already DELETED, DeleteNamespace is one reclaim step: it deletes a
   bounded batch of the namespace's runs through History (running ones are terminated first, as
   DeleteWorkflowExecution does), and once none is left it removes the namespace row. The job is driven by the
   persisted state only, so a crash mid-delete is finished by the next sweep.
"""

from __future__ import annotations

import asyncio

from temporalio.api.common.v1 import message_pb2 as common_pb
from temporalio.api.enums.v1 import namespace_pb2 as ns_enums
from temporalio.api.operatorservice.v1 import request_response_pb2 as opv1
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv1

from server.common.errors import (
    AlreadyExists,
    ConditionFailed,
    FailedPrecondition,
    InvalidArgument,
    NamespaceNotFound,
    NotFound,
    ServiceError,
    Unavailable,
)
from server.gen.durata.internal.history.v1 import service_pb2 as hs
from server.persistence.interface import NamespaceExecution, NamespaceRecord
from services.frontend.base import log, log_context
from services.frontend.context import FrontendContext
from services.frontend.namespace_registry import NamespaceEntry, entry_from_record
from services.frontend.validation import check_id

SYSTEM_NAMESPACE = "temporal-system"
_ATTEMPTS = 5
# One reclaim step deletes at most this many runs, this many at a time.
RECLAIM_BATCH = 100
RECLAIM_CONCURRENCY = 8


def tombstone_candidates(name: str, namespace_id: str) -> list[str]:
    """Names to rename a deleted namespace to, in order of preference. If ``name`` already carries one of the
    suffixes (a repeated delete), it is its own tombstone."""
    out = []
    for length in range(5, len(namespace_id)):
        suffix = f"-deleted-{namespace_id[:length]}"
        if name.endswith(suffix):
            return [name]
        out.append(name + suffix)
    return out or [f"{name}-deleted-{namespace_id}"]


class NamespaceDeleteHandlers:
    """Mixed into OperatorHandler."""

    _ctx: FrontendContext

    async def DeleteNamespace(
        self, request: opv1.DeleteNamespaceRequest, *, deadline: float | None = None
    ) -> opv1.DeleteNamespaceResponse:
        if not request.namespace and not request.namespace_id:
            raise InvalidArgument("Namespace not set on request.")
        if request.namespace and request.namespace_id:
            raise InvalidArgument("Only one of namespace name or Id should be set on request.")
        if request.namespace:
            check_id(request.namespace, "Namespace", self._ctx.config)
        if request.namespace_delete_delay.seconds > 0 or request.namespace_delete_delay.nanos > 0:
            # Temporal keeps the tombstone row that long after the runs are gone; Durata removes it at once
            # (the row is invisible either way, except to ListNamespaces with include_deleted).
            log.info("namespace_delete_delay is not honored: the deleted namespace is removed with its runs")
        record = await self._load(request.namespace, request.namespace_id)
        entry = entry_from_record(record)
        if entry.name == SYSTEM_NAMESPACE:
            raise FailedPrecondition("unable to delete system namespace")
        if entry.state == ns_enums.NAMESPACE_STATE_DELETED:
            # Already deleted: repeat the rename if an older delete stopped before it, then reclaim a batch.
            entry = await self._mark_deleted(record)
            await reclaim_step(self._ctx, entry, deadline)
            return opv1.DeleteNamespaceResponse(deleted_namespace=entry.name)
        deleted = await self._mark_deleted(record)
        with log_context(namespace=record.name, namespace_id=record.id):
            log.info("namespace deleted; its workflow executions are removed in the background",
                     deleted_namespace=deleted.name)
        return opv1.DeleteNamespaceResponse(deleted_namespace=deleted.name)

    async def _load(self, name: str, namespace_id: str) -> NamespaceRecord:
        store = self._ctx.persistence.namespaces
        record = await (store.get_namespace_by_name(name) if name else store.get_namespace_by_id(namespace_id))
        if record is None:
            raise NamespaceNotFound(name or namespace_id)
        return record

    async def _mark_deleted(self, record: NamespaceRecord) -> NamespaceEntry:
        """State DELETED + tombstone name in one write (retried on a concurrent update); returns the new entry."""
        store = self._ctx.persistence.namespaces
        for _ in range(_ATTEMPTS):
            old = entry_from_record(record)
            for new_name in tombstone_candidates(record.name, record.id):
                if new_name == record.name and old.state == ns_enums.NAMESPACE_STATE_DELETED:
                    return old  # nothing to change
                if new_name != record.name and await store.get_namespace_by_name(new_name) is not None:
                    continue  # a namespace really has that name: take a longer suffix
                desc = wsv1.DescribeNamespaceResponse()
                desc.CopyFrom(old.description)
                desc.namespace_info.state = ns_enums.NAMESPACE_STATE_DELETED
                desc.namespace_info.name = new_name
                try:
                    await store.rename_namespace(
                        record.id, new_name, desc.SerializeToString(), record.notification_version
                    )
                except AlreadyExists:
                    continue
                except ConditionFailed:
                    break  # re-read and start over
                self._ctx.namespaces.invalidate(old)
                return NamespaceEntry(record.id, new_name, desc, record.notification_version + 1)
            else:
                raise Unavailable(f"Unable to generate a new name for deleted namespace {record.name}.")
            fresh = await store.get_namespace_by_id(record.id)
            if fresh is None:
                raise NamespaceNotFound(record.name)
            record = fresh
        raise Unavailable(f"Namespace {record.name} is being updated concurrently; retry.")


async def reclaim_step(ctx: FrontendContext, entry: NamespaceEntry, deadline: float | None) -> int:
    """Delete up to RECLAIM_BATCH runs of the DELETED namespace ``entry``; if it had none left, remove the
    namespace row. Returns how many runs were deleted."""
    store = ctx.persistence.namespaces
    first, token = await store.list_namespace_executions(entry.id, min(RECLAIM_BATCH, 100), None)
    if not first:
        await store.delete_namespace(entry.id)
        ctx.namespaces.invalidate(entry)
        with log_context(namespace=entry.name, namespace_id=entry.id):
            log.info("deleted namespace removed: no workflow executions left")
        return 0
    sem = asyncio.Semaphore(RECLAIM_CONCURRENCY)
    deleted = failed = seen = 0
    page = first
    while True:
        outcomes = await asyncio.gather(*(_delete_run(ctx, sem, entry, run, deadline) for run in page))
        deleted += sum(1 for ok in outcomes if ok)
        failed += sum(1 for ok in outcomes if ok is None)
        seen += len(page)
        if token is None or seen >= RECLAIM_BATCH:
            break
        page, token = await store.list_namespace_executions(entry.id, min(RECLAIM_BATCH - seen, 100), token)
        if not page:
            break
    with log_context(namespace=entry.name, namespace_id=entry.id):
        log.info("deleted namespace: workflow executions removed", deleted=deleted, failed=failed)
    return deleted


async def _delete_run(
    ctx: FrontendContext, sem: asyncio.Semaphore, entry: NamespaceEntry, run: NamespaceExecution,
    deadline: float | None,
) -> bool | None:
    """True = deleted, False = already gone, None = failed (retried by the next step)."""
    request = hs.DeleteWorkflowExecutionRequest(
        namespace_id=entry.id,
        request=wsv1.DeleteWorkflowExecutionRequest(
            namespace=entry.name,
            workflow_execution=common_pb.WorkflowExecution(workflow_id=run.workflow_id, run_id=run.run_id),
        ),
    )
    async with sem:
        try:
            await ctx.history.DeleteWorkflowExecution(request, deadline=deadline)
        except (NotFound, NamespaceNotFound):
            return False
        except ServiceError as err:
            with log_context(namespace=entry.name, workflow_id=run.workflow_id):
                log.warning("deleted namespace: deleting a run failed", run_id=run.run_id, error=repr(err))
            return None
    return True
