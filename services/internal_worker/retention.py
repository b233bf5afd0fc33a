"""Retention: delete closed runs whose close time is older than their namespace's retention period.

Uses only the public API (ListNamespaces, ListWorkflowExecutions, DeleteWorkflowExecution), so it works the same
against an in-process frontend handler and a remote frontend. Deleting a run removes its mutable state, history
and visibility row (History does that); a run that vanished meanwhile (NOT_FOUND) is simply skipped.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import structlog
from temporalio.api.common.v1 import message_pb2 as common_pb
from temporalio.api.enums.v1 import namespace_pb2 as ns_enums
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv

from server import metrics
from server.common.clock import Clock
from server.common.errors import ServiceError
from services.internal_worker.config import InternalWorkerConfig

log = structlog.get_logger("durata.internal_worker")


def rfc3339(ts: datetime) -> str:
    """Visibility queries take RFC 3339 times; always UTC with a ``Z``."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def retention_query(cutoff: datetime) -> str:
    # Naming the division includes system workflows (schedulers, batch jobs), which lists leave out otherwise.
    division = "(TemporalNamespaceDivision IS NULL OR TemporalNamespaceDivision IS NOT NULL)"
    return f"ExecutionStatus != 'Running' AND CloseTime < '{rfc3339(cutoff)}' AND {division}"


@dataclass
class SweepResult:
    deleted: dict[str, int] = field(default_factory=dict)
    errors: int = 0


class RetentionJob:
    def __init__(self, config: InternalWorkerConfig, client: Any, clock: Clock) -> None:
        self.config = config
        self.client = client
        self.clock = clock

    def _deadline(self) -> float:
        return time.monotonic() + self.config.rpc_timeout_seconds

    async def sweep(self) -> SweepResult:
        """One pass over all namespaces. Errors in one namespace do not stop the others."""
        result = SweepResult()
        token = b""
        while True:
            page = await self.client.ListNamespaces(
                wsv.ListNamespacesRequest(page_size=100, next_page_token=token), deadline=self._deadline()
            )
            for ns in page.namespaces:
                name = ns.namespace_info.name
                try:
                    deleted = await self.sweep_namespace(ns, result)
                except asyncio.CancelledError:
                    raise
                except Exception as err:
                    result.errors += 1
                    metrics.RETENTION_ERRORS.inc()
                    log.warning("retention sweep of namespace failed", namespace=name, error=repr(err))
                    continue
                if deleted:
                    result.deleted[name] = deleted
            token = page.next_page_token
            if not token:
                break
        metrics.RETENTION_SWEEPS.inc()
        if result.deleted:
            log.info("retention sweep done", deleted=result.deleted, errors=result.errors)
        return result

    async def sweep_namespace(self, ns: wsv.DescribeNamespaceResponse, result: SweepResult) -> int:
        name = ns.namespace_info.name
        if ns.namespace_info.state == ns_enums.NAMESPACE_STATE_DELETED:
            return 0
        ttl: timedelta = ns.config.workflow_execution_retention_ttl.ToTimedelta()
        if ttl <= timedelta(0):
            return 0  # no retention configured: keep forever
        cutoff = self.clock.now() - ttl
        query = retention_query(cutoff)
        deleted = 0
        token = b""
        sem = asyncio.Semaphore(max(1, self.config.retention_delete_concurrency))
        while deleted < self.config.retention_max_deletes_per_sweep:
            page = await self.client.ListWorkflowExecutions(
                wsv.ListWorkflowExecutionsRequest(
                    namespace=name, page_size=self.config.retention_page_size, next_page_token=token, query=query
                ),
                deadline=self._deadline(),
            )
            outcomes = await asyncio.gather(
                *(self._delete(sem, name, info.execution.workflow_id, info.execution.run_id, info.close_time)
                  for info in page.executions)
            )
            deleted += sum(1 for ok in outcomes if ok)
            result.errors += sum(1 for ok in outcomes if ok is None)
            token = page.next_page_token
            if not token or not page.executions:
                break
        return deleted

    async def _delete(self, sem: asyncio.Semaphore, namespace: str, workflow_id: str, run_id: str,
                      close_time: Any) -> bool | None:
        """True = deleted, False = already gone, None = failed (logged, retried next sweep)."""
        async with sem:
            try:
                await self.client.DeleteWorkflowExecution(
                    wsv.DeleteWorkflowExecutionRequest(
                        namespace=namespace,
                        workflow_execution=common_pb.WorkflowExecution(workflow_id=workflow_id, run_id=run_id),
                    ),
                    deadline=self._deadline(),
                )
            except ServiceError as err:
                if err.code == grpc.StatusCode.NOT_FOUND:
                    log.debug("retention: run already gone", namespace=namespace, workflow_id=workflow_id,
                              run_id=run_id)
                    return False
                metrics.RETENTION_ERRORS.inc()
                log.warning("retention: delete failed", namespace=namespace, workflow_id=workflow_id,
                            run_id=run_id, error=repr(err))
                return None
        metrics.RETENTION_DELETED.labels(namespace).inc()
        closed = close_time.ToDatetime(tzinfo=UTC).isoformat() if close_time.seconds else ""
        log.info("retention: deleted closed run", namespace=namespace, workflow_id=workflow_id, run_id=run_id,
                 close_time=closed)
        return True
