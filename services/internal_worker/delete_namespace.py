"""Namespace deletion, background half: reclaim the runs of namespaces in the DELETED state, then their row.

OperatorService.DeleteNamespace marks a namespace DELETED and renames it to its tombstone name at once (see
services/frontend/namespace_delete_handlers.py). This job, like Temporal's reclaim-resources workflow, finishes
the work: it lists namespaces with ``include_deleted``, and for each DELETED one, once a grace period has passed
since it first saw it (every frontend's namespace cache has then expired, so no new run can be started in it),
it calls DeleteNamespace on the tombstone name. On a DELETED namespace each such call is one reclaim step: the
frontend deletes a batch of its runs through History, and when none is left it removes the namespace row; the
next call then answers NamespaceNotFound, which ends the job for that namespace.

There is no state besides the namespace rows: a crash (of this worker or of the frontend) in the middle of a
deletion just means the next sweep finds the namespace still DELETED and carries on. A restart waits the grace
period again, which is only conservative.
"""

from __future__ import annotations

import time
from typing import Any

import structlog
from temporalio.api.enums.v1 import namespace_pb2 as ns_enums
from temporalio.api.namespace.v1 import message_pb2 as nsv1
from temporalio.api.operatorservice.v1 import request_response_pb2 as opv1
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv

from server.common.errors import NamespaceNotFound
from services.internal_worker.config import InternalWorkerConfig

log = structlog.get_logger("durata.internal_worker")


class DeleteNamespaceJob:
    def __init__(self, config: InternalWorkerConfig, client: Any, operator_client: Any) -> None:
        self.config = config
        self.client = client
        self.operator = operator_client
        # Namespace id -> monotonic time this worker first saw it DELETED.
        self._first_seen: dict[str, float] = {}

    def _deadline(self) -> float:
        return time.monotonic() + self.config.rpc_timeout_seconds

    async def deleted_namespaces(self) -> list[tuple[str, str]]:
        """(id, tombstone name) of every namespace in the DELETED state."""
        out: list[tuple[str, str]] = []
        token = b""
        while True:
            page = await self.client.ListNamespaces(
                wsv.ListNamespacesRequest(
                    page_size=100, next_page_token=token,
                    namespace_filter=nsv1.NamespaceFilter(include_deleted=True),
                ),
                deadline=self._deadline(),
            )
            for ns in page.namespaces:
                if ns.namespace_info.state == ns_enums.NAMESPACE_STATE_DELETED:
                    out.append((ns.namespace_info.id, ns.namespace_info.name))
            token = page.next_page_token
            if not token:
                return out

    async def sweep(self) -> list[str]:
        """One pass; returns the tombstone names whose deletion finished in it."""
        deleted = await self.deleted_namespaces()
        now = time.monotonic()
        present = {ns_id for ns_id, _ in deleted}
        for ns_id in list(self._first_seen):
            if ns_id not in present:
                del self._first_seen[ns_id]
        finished: list[str] = []
        for ns_id, name in deleted:
            first = self._first_seen.setdefault(ns_id, now)
            if now - first < self.config.delete_namespace_grace_seconds:
                continue
            try:
                if await self.reclaim(name):
                    finished.append(name)
                    self._first_seen.pop(ns_id, None)
            except Exception as err:  # one namespace failing must not stop the others
                log.warning("namespace deletion step failed; will retry next sweep", namespace=name,
                            error=repr(err))
        if finished:
            log.info("deleted namespaces removed", namespaces=finished)
        return finished

    async def reclaim(self, name: str) -> bool:
        """Run reclaim steps on one DELETED namespace; True once its row is gone."""
        for _ in range(max(1, self.config.delete_namespace_max_steps_per_sweep)):
            try:
                await self.operator.DeleteNamespace(
                    opv1.DeleteNamespaceRequest(namespace=name), deadline=self._deadline()
                )
            except NamespaceNotFound:
                return True
        return False
