"""OperatorService.DeleteNamespace on the frontend: validation, mark DELETED + rename, reclaim steps."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from temporalio.api.enums.v1 import namespace_pb2 as ns_enums
from temporalio.api.namespace.v1 import message_pb2 as nsv1
from temporalio.api.operatorservice.v1 import request_response_pb2 as opv1
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv1

from server.common.errors import (
    FailedPrecondition,
    InvalidArgument,
    NamespaceInvalidState,
    NamespaceNotFound,
    Unavailable,
)
from server.persistence.interface import Persistence, ShardRecord
from services.frontend.namespace_delete_handlers import tombstone_candidates
from services.frontend.service import FrontendService
from tests.persistence.helpers import new_run


async def _register(frontend: FrontendService, name: str) -> str:
    await frontend.handler.RegisterNamespace(wsv1.RegisterNamespaceRequest(namespace=name))
    desc = await frontend.handler.DescribeNamespace(wsv1.DescribeNamespaceRequest(namespace=name))
    return desc.namespace_info.id


async def _delete(frontend: FrontendService, **fields: Any) -> str:
    resp = await frontend.operator_handler.DeleteNamespace(opv1.DeleteNamespaceRequest(**fields))
    return resp.deleted_namespace


def test_tombstone_candidates() -> None:
    ns_id = "0123456789"
    assert tombstone_candidates("orders", ns_id)[:2] == ["orders-deleted-01234", "orders-deleted-012345"]
    assert tombstone_candidates("orders-deleted-01234", ns_id) == ["orders-deleted-01234"]


async def test_validation(frontend: FrontendService) -> None:
    with pytest.raises(InvalidArgument, match="Namespace not set on request."):
        await _delete(frontend)
    with pytest.raises(InvalidArgument, match="Only one of namespace name or Id should be set on request."):
        await _delete(frontend, namespace="default", namespace_id="x")
    with pytest.raises(NamespaceNotFound, match="Namespace nope is not found."):
        await _delete(frontend, namespace="nope")
    with pytest.raises(NamespaceNotFound):
        await _delete(frontend, namespace_id="no-such-id")
    await _register(frontend, "temporal-system")
    with pytest.raises(FailedPrecondition, match="unable to delete system namespace"):
        await _delete(frontend, namespace="temporal-system")


async def test_delete_renames_and_frees_the_name(frontend: FrontendService) -> None:
    ns_id = await _register(frontend, "orders")
    await frontend._ctx.namespaces.by_name("orders")  # cached on this frontend
    tombstone = await _delete(frontend, namespace="orders")
    assert tombstone == f"orders-deleted-{ns_id[:5]}"

    # The old name is gone at once, from the cache too.
    with pytest.raises(NamespaceNotFound, match="Namespace orders is not found."):
        await frontend._ctx.namespaces.by_name("orders")
    with pytest.raises(NamespaceNotFound):
        await frontend.handler.DescribeNamespace(wsv1.DescribeNamespaceRequest(namespace="orders"))
    with pytest.raises(NamespaceNotFound):
        await _delete(frontend, namespace="orders")

    # Listed only with include_deleted, under the tombstone name, state DELETED.
    plain = await frontend.handler.ListNamespaces(wsv1.ListNamespacesRequest())
    assert "orders" not in [n.namespace_info.name for n in plain.namespaces]
    listed = await frontend.handler.ListNamespaces(
        wsv1.ListNamespacesRequest(namespace_filter=nsv1.NamespaceFilter(include_deleted=True))
    )
    infos = {n.namespace_info.name: n.namespace_info for n in listed.namespaces}
    assert infos[tombstone].state == ns_enums.NAMESPACE_STATE_DELETED and infos[tombstone].id == ns_id

    # The tombstone: described with state DELETED; any other API answers NamespaceInvalidState (as Temporal).
    desc = await frontend.handler.DescribeNamespace(wsv1.DescribeNamespaceRequest(namespace=tombstone))
    assert desc.namespace_info.state == ns_enums.NAMESPACE_STATE_DELETED and desc.namespace_info.id == ns_id
    with pytest.raises(NamespaceInvalidState, match=r"^Namespace has invalid state: Deleted\. "
                       r"Must be Registered or Deprecated\.$") as err:
        await frontend.handler.ListWorkflowExecutions(wsv1.ListWorkflowExecutionsRequest(namespace=tombstone))
    assert err.value.code == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(NamespaceInvalidState):
        await frontend.handler.UpdateNamespace(wsv1.UpdateNamespaceRequest(namespace=tombstone))

    # Registered again right away: a new namespace (new id).
    new_id = await _register(frontend, "orders")
    assert new_id != ns_id
    assert (await frontend._ctx.namespaces.by_name("orders")).id == new_id


async def test_delete_by_id_and_suffix_collision(frontend: FrontendService) -> None:
    ns_id = await _register(frontend, "pay")
    await _register(frontend, f"pay-deleted-{ns_id[:5]}")  # a real namespace holds the first choice
    assert await _delete(frontend, namespace_id=ns_id) == f"pay-deleted-{ns_id[:6]}"


class _History:
    """Deletes the run's rows the way History does (enough for the reclaim step); can fail on demand."""

    def __init__(self, store: Persistence, range_id: int) -> None:
        self.store = store
        self.range_id = range_id
        self.calls: list[str] = []
        self.fail: set[str] = set()

    async def DeleteWorkflowExecution(self, request: Any, *, deadline: float | None = None) -> Any:  # noqa: N802
        ex = request.request.workflow_execution
        self.calls.append(ex.workflow_id)
        if ex.workflow_id in self.fail:
            raise Unavailable("history busy")
        await self.store.executions.delete_workflow_execution(
            1, self.range_id, request.namespace_id, ex.workflow_id, ex.run_id
        )
        return wsv1.DeleteWorkflowExecutionResponse()


async def test_reclaim_steps_delete_runs_then_the_row(store: Persistence, frontend: FrontendService) -> None:
    ns_id = await _register(frontend, "reclaim")
    shard = await store.shards.get_or_create_shard(1)
    await store.shards.update_shard(ShardRecord(1, shard.range_id + 1, b"", "test"), shard.range_id)
    for i in range(3):
        run = new_run(f"wf-{i}", f"run-{i}")
        run.execution.namespace_id = ns_id
        await store.executions.create_workflow_execution(1, shard.range_id + 1, run)
    history = _History(store, shard.range_id + 1)
    history.fail = {"wf-1"}
    frontend._ctx.history_client = history

    tombstone = await _delete(frontend, namespace="reclaim")
    assert history.calls == []  # the first call only marks and renames
    # A step on the tombstone deletes the runs it can; the failed one stays for the next step.
    assert await _delete(frontend, namespace=tombstone) == tombstone
    assert sorted(history.calls) == ["wf-0", "wf-1", "wf-2"]
    left, _ = await store.namespaces.list_namespace_executions(ns_id, 10, None)
    assert [e.workflow_id for e in left] == ["wf-1"]
    assert await store.namespaces.get_namespace_by_id(ns_id) is not None

    history.fail.clear()
    await _delete(frontend, namespace=tombstone)
    assert (await store.namespaces.list_namespace_executions(ns_id, 10, None))[0] == []
    await _delete(frontend, namespace_id=ns_id)  # nothing left: the row goes
    assert await store.namespaces.get_namespace_by_id(ns_id) is None
    with pytest.raises(NamespaceNotFound):
        await _delete(frontend, namespace=tombstone)
