"""The cluster as docker-compose.yml runs it (1 frontend, 2 history, 2 matching, 1 internal worker on
PostgreSQL), as local processes, driven by the official SDK through crashes and growth:

1. SIGKILL one history process mid-run: its shards move, every workflow completes exactly once.
2. Add a third history process: shards rebalance onto it and work continues.
3. SIGKILL a matching process that holds backlog: its partitions move and no task is lost.

Then every history is checked: dense event ids, one completion, no activity result recorded twice.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from e2e.conftest import pg_helpers
from e2e.helpers import assert_dense, wait_until
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from cluster import workflows as wf
from cluster.harness import LocalCluster
from server.cluster.ring import HashRing, partition_key, shard_key

pytestmark = [pytest.mark.postgres, pytest.mark.e2e, pytest.mark.timeout(600)]

WORKFLOW_TYPE = 1


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    make_db, drop_db = pg_helpers()
    db_url = make_db("durata_cluster", migrate=False)
    local = LocalCluster(db_url, tmp_path / "cluster")
    local.workdir.mkdir(parents=True)
    try:
        local.start_all()
        yield local
    finally:
        local.stop()
        drop_db(db_url)


def worker(client: Client, task_queue: str) -> Worker:
    return Worker(client, task_queue=task_queue, workflows=[wf.Chore], activities=[wf.double],
                  max_concurrent_activities=200, max_concurrent_workflow_tasks=200)


async def start_many(client: Client, prefix: str, count: int, task_queue: str) -> list[WorkflowHandle[Any, Any]]:
    async def one(i: int) -> WorkflowHandle[Any, Any]:
        return await client.start_workflow(wf.Chore.run, i, id=f"{prefix}-{i}", task_queue=task_queue,
                                           execution_timeout=timedelta(minutes=5))

    handles: list[WorkflowHandle[Any, Any]] = []
    for chunk in range(0, count, 50):
        handles += await asyncio.gather(*(one(i) for i in range(chunk, min(count, chunk + 50))))
    return handles


async def signal_all(handles: list[WorkflowHandle[Any, Any]]) -> None:
    for chunk in range(0, len(handles), 50):
        await asyncio.gather(*(h.signal(wf.Chore.poke, 1) for h in handles[chunk:chunk + 50]))


async def results(handles: list[WorkflowHandle[Any, Any]], within: float = 120.0) -> None:
    """Every workflow's result; on a timeout, the event types of the ones that did not finish."""
    tasks = [asyncio.ensure_future(h.result()) for h in handles]
    done, pending = await asyncio.wait(tasks, timeout=within)
    if pending:
        for t in pending:
            t.cancel()
        stuck = [h for h, t in zip(handles, tasks, strict=True) if t in pending]
        shapes = {h.id: [EventType.Name(e.event_type) for e in (await h.fetch_history()).events][-4:] for h in stuck[:5]}
        raise AssertionError(f"{len(stuck)} workflows unfinished after {within}s, e.g. {shapes}")
    assert [t.result() for t in tasks] == [wf.expected(int(h.id.rsplit("-", 1)[1])) for h in handles]


async def check_history(handle: WorkflowHandle[Any, Any]) -> None:
    history = await handle.fetch_history()
    types = assert_dense(history)
    assert types.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED) == 1, handle.id
    assert types[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, handle.id
    completed = [e.activity_task_completed_event_attributes.scheduled_event_id for e in history.events
                 if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED]
    scheduled = [e.event_id for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]
    assert sorted(completed) == sorted(scheduled) and len(scheduled) == 2, f"{handle.id}: {completed} vs {scheduled}"


def split_queue(namespace_id: str, matching: list[str], partitions: int) -> str:
    """A task queue name whose workflow partitions land on every matching host (so killing one matters)."""
    ring = HashRing.build(matching)
    for _ in range(1000):
        name = f"cluster-{uuid.uuid4().hex[:8]}"
        owners = {ring.lookup(partition_key(namespace_id, name, WORKFLOW_TYPE, p)) for p in range(partitions)}
        if owners == set(matching):
            return name
    raise AssertionError("no task queue name spreads over every matching host")


async def backlog_by_partition(db_url: str, task_queue: str) -> dict[int, int]:
    conn = await asyncpg.connect(db_url)
    try:
        rows = await conn.fetch("SELECT partition, count(*) FROM tasks WHERE name = $1 AND task_type = $2 "
                                "GROUP BY partition", task_queue, WORKFLOW_TYPE)
    finally:
        await conn.close()
    return {int(r[0]): int(r[1]) for r in rows}


async def test_cluster_survives_history_and_matching_crashes(cluster: LocalCluster) -> None:
    await asyncio.to_thread(cluster.wait_for_owners, ["history1", "history2"])
    client = await Client.connect(cluster.frontend_address, namespace="default")
    ns = await client.workflow_service.describe_namespace(wsv.DescribeNamespaceRequest(namespace="default"))
    view = await asyncio.to_thread(cluster.describe)
    matching = [cluster.addresses["matching1"], cluster.addresses["matching2"]]
    task_queue = split_queue(ns.namespace_info.id, matching, view["task_queue_partitions"])
    everything: list[WorkflowHandle[Any, Any]] = []

    async with worker(client, task_queue):
        # 1. SIGKILL a history host with work in flight on every shard.
        first = await start_many(client, "a", 200, task_queue)
        everything += first
        await signal_all(first[:100])
        await asyncio.to_thread(cluster.kill, "history1")
        await signal_all(first[100:])
        await results(first)
        view = await asyncio.to_thread(cluster.wait_for_owners, ["history2"])
        assert all(s["owner"] == cluster.addresses["history2"] for s in view["shards"])

        # 2. Grow: a third history host takes its share of the shards while work continues.
        second = await start_many(client, "b", 60, task_queue)
        everything += second
        await asyncio.to_thread(cluster.start, "history3", "history1")
        await signal_all(second)
        view = await asyncio.to_thread(cluster.wait_for_owners, ["history2", "history3"])
        ring = HashRing.build([cluster.addresses["history2"], cluster.addresses["history3"]])
        assert [s["owner"] for s in view["shards"]] == [ring.lookup(shard_key(s["shard_id"])) for s in view["shards"]]
        await results(second)

    # 3. Backlog on both matching hosts (no worker polls), then SIGKILL one of them.
    third = await start_many(client, "c", 80, task_queue)
    everything += third

    seen: dict[int, int] = {}

    async def backlog_everywhere() -> bool:
        seen.clear()
        seen.update(await backlog_by_partition(cluster.db_url, task_queue))
        return sum(seen.values()) >= len(third) and len(seen) == view["task_queue_partitions"]

    try:
        await wait_until(backlog_everywhere, 30, "workflow tasks persisted on every partition")
    except TimeoutError as err:
        raise AssertionError(f"backlog rows per partition: {seen}\n{cluster.log_tails()}") from err
    await asyncio.to_thread(cluster.kill, "matching1")
    async with worker(client, task_queue):
        await signal_all(third)
        await results(third)

    for chunk in range(0, len(everything), 50):
        await asyncio.gather(*(check_history(h) for h in everything[chunk:chunk + 50]))

    async def one_run_each() -> bool:
        runs = [r async for r in client.list_workflows(f"TaskQueue = '{task_queue}'")]
        return len(runs) == len(everything) and len({r.id for r in runs}) == len(everything)

    await wait_until(one_run_each, 30, "one visibility row per workflow")
    # At-least-once execution is allowed; every workflow ran its two activities at least once.
    assert all(wf.EXECUTIONS[h.id] >= 2 for h in everything)
    final = await asyncio.to_thread(cluster.describe)
    live = {m["address"] for m in final["members"] if m["alive"]}
    assert cluster.addresses["history1"] not in live and cluster.addresses["matching1"] not in live
    assert {p["owner"] for p in final["partitions"] if p["task_queue"] == task_queue} == {cluster.addresses["matching2"]}
