"""Two history hosts that both believe they own a shard: only the holder of the current range_id commits.

Each host has its own connection pool to the same PostgreSQL database, exactly as two processes would.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from temporalio.api.common.v1 import message_pb2 as common_pb2
from temporalio.api.namespace.v1 import message_pb2 as namespace_pb2
from temporalio.api.taskqueue.v1 import message_pb2 as tq_pb2
from temporalio.api.workflowservice.v1 import request_response_pb2 as ws

from server.common.clock import RealClock
from server.common.errors import ShardOwnershipLost
from server.gen.durata.internal.history.v1 import service_pb2 as hs
from server.persistence.factory import open_persistence
from server.persistence.interface import NamespaceRecord, Persistence
from server.persistence.schema_version import upgrade_async
from services.history.config import HistoryConfig
from services.history.service import HistoryService

pytestmark = pytest.mark.postgres


class NullMatching:
    async def AddWorkflowTask(self, request: object, *, deadline: float | None = None) -> object:
        return object()

    async def AddActivityTask(self, request: object, *, deadline: float | None = None) -> object:
        return object()


@pytest.fixture
async def two_hosts(fresh_pg_database: str) -> AsyncIterator[tuple[HistoryService, HistoryService, Persistence, str]]:
    await upgrade_async(fresh_pg_database)
    stores = [await open_persistence(fresh_pg_database) for _ in range(2)]
    ns_id = str(uuid.uuid4())
    desc = ws.DescribeNamespaceResponse(namespace_info=namespace_pb2.NamespaceInfo(name="default", id=ns_id))
    await stores[0].namespaces.create_namespace(NamespaceRecord(ns_id, "default", desc.SerializeToString()))
    hosts = []
    for i, store in enumerate(stores):
        svc = HistoryService(store, RealClock(), HistoryConfig(num_history_shards=1, owned_shards=[]), f"host-{i}")
        svc.matching_client = NullMatching()
        await svc.start()
        hosts.append(svc)
    try:
        yield hosts[0], hosts[1], stores[0], ns_id
    finally:
        for svc in hosts:
            await svc.stop()
        for store in stores:
            await store.close()


def start_request(ns_id: str, workflow_id: str) -> hs.StartWorkflowExecutionRequest:
    return hs.StartWorkflowExecutionRequest(namespace_id=ns_id, request=ws.StartWorkflowExecutionRequest(
        namespace="default", workflow_id=workflow_id, workflow_type=common_pb2.WorkflowType(name="W"),
        task_queue=tq_pb2.TaskQueue(name="q"), request_id=str(uuid.uuid4()), identity="test",
    ))


async def test_only_the_current_range_id_commits(two_hosts: tuple[HistoryService, HistoryService, Persistence, str]) -> None:
    a, b, store, ns_id = two_hosts
    await a.acquire_shard(1)
    await b.acquire_shard(1)  # B bumps range_id: A is now a stale owner that does not know it yet
    assert 1 in a.engine.shards and 1 in b.engine.shards
    assert b.engine.shards[1].range_id == a.engine.shards[1].range_id + 1

    with pytest.raises(ShardOwnershipLost):
        await a.handler.StartWorkflowExecution(start_request(ns_id, "wf-from-a"))
    assert 1 not in a.engine.shards  # the stale owner dropped the shard
    assert await store.executions.get_current_execution(1, ns_id, "wf-from-a") is None

    await b.handler.StartWorkflowExecution(start_request(ns_id, "wf-from-b"))
    current = await store.executions.get_current_execution(1, ns_id, "wf-from-b")
    assert current is not None

    # Ownership goes back to A: now B is the stale one, for writes to existing runs too.
    await a.acquire_shard(1)
    signal = hs.SignalWorkflowExecutionRequest(namespace_id=ns_id, request=ws.SignalWorkflowExecutionRequest(
        namespace="default", workflow_execution=common_pb2.WorkflowExecution(workflow_id="wf-from-b"),
        signal_name="s", request_id=str(uuid.uuid4()), identity="test",
    ))
    with pytest.raises(ShardOwnershipLost):
        await b.handler.SignalWorkflowExecution(signal)
    assert 1 not in b.engine.shards
    await a.handler.SignalWorkflowExecution(signal)
    record = await store.executions.get_workflow_execution(1, ns_id, "wf-from-b", current.run_id)
    assert record is not None and record.db_record_version == 2  # created by B, signalled once by A
