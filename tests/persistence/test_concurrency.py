"""Races the conditional writes must resolve: exactly one winner, losers told precisely why.

Run on both backends plus a SQLite *file* (where transactions go through the worker thread).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from server.common.errors import ConditionFailed, CurrentRunConflict, ShardOwnershipLost
from server.persistence.interface import CurrentRunMode, Persistence, ShardRecord, TaskCategory, TaskQueueKey

from .helpers import NS, acquire_shard, new_run, run_update, task


@pytest.fixture(params=["sqlite", "sqlite-file", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store(
    request: pytest.FixtureRequest, open_store: Callable[[str], Awaitable[Persistence]]
) -> AsyncIterator[Persistence]:
    p = await open_store(request.param)
    try:
        yield p
    finally:
        await p.close()


async def test_concurrent_brand_new_creates_one_winner(store: Persistence) -> None:
    rid = await acquire_shard(store)
    attempts = [
        store.executions.create_workflow_execution(1, rid, new_run("wf", f"r{i}", request_id=f"q{i}"))
        for i in range(12)
    ]
    results = await asyncio.gather(*attempts, return_exceptions=True)
    winners = [i for i, r in enumerate(results) if r is None]
    assert len(winners) == 1, results
    for r in results:
        if r is not None:
            assert isinstance(r, CurrentRunConflict), r
            assert (r.current_run_id, r.request_id) == (f"r{winners[0]}", f"q{winners[0]}")
    cur = await store.executions.get_current_execution(1, NS, "wf")
    assert cur is not None and cur.run_id == f"r{winners[0]}"


async def test_concurrent_updates_one_winner(store: Persistence) -> None:
    rid = await acquire_shard(store)
    await store.executions.create_workflow_execution(1, rid, new_run("wf", "r1"))
    updates = [
        store.executions.update_workflow_execution(
            1,
            rid,
            run_update(
                "wf", "r1", expected=1, next_event_id=3, first=2, tasks=[task(TaskCategory.TRANSFER, 100 + i)]
            ),
        )
        for i in range(8)
    ]
    results = await asyncio.gather(*updates, return_exceptions=True)
    assert sum(r is None for r in results) == 1, results
    assert all(r is None or isinstance(r, ConditionFailed) for r in results), results
    # Exactly the winner's task committed.
    assert len(await store.executions.get_immediate_tasks(1, TaskCategory.TRANSFER, 0, 1000, 100)) == 1


async def test_concurrent_shard_acquisition_one_winner(store: Persistence) -> None:
    shard = await store.shards.get_or_create_shard(5)
    grabs = [
        store.shards.update_shard(ShardRecord(5, shard.range_id + 1, b"", f"host-{i}"), shard.range_id)
        for i in range(6)
    ]
    results = await asyncio.gather(*grabs, return_exceptions=True)
    assert sum(r is None for r in results) == 1, results
    assert all(r is None or isinstance(r, ShardOwnershipLost) for r in results), results


async def test_concurrent_leases_get_distinct_ranges(store: Persistence) -> None:
    key = TaskQueueKey(NS, "q", 1)
    leases = await asyncio.gather(*[store.tasks.lease_task_queue(key) for _ in range(10)])
    assert sorted(lease.range_id for lease in leases) == list(range(1, 11))


async def test_concurrent_swaps_one_winner(store: Persistence) -> None:
    """Two continue-as-new/reuse attempts from the same previous run: only one may repoint the current row."""
    rid = await acquire_shard(store)
    await store.executions.create_workflow_execution(1, rid, new_run("wf", "r0"))
    attempts = [
        store.executions.create_workflow_execution(
            1, rid, new_run("wf", f"n{i}", mode=CurrentRunMode.SWAP, previous="r0", request_id=f"q{i}")
        )
        for i in range(6)
    ]
    results = await asyncio.gather(*attempts, return_exceptions=True)
    winners = [i for i, r in enumerate(results) if r is None]
    assert len(winners) == 1, results
    assert all(
        isinstance(r, CurrentRunConflict) and r.current_run_id == f"n{winners[0]}" for r in results if r
    )
    cur = await store.executions.get_current_execution(1, NS, "wf")
    assert cur is not None and cur.run_id == f"n{winners[0]}"
