"""Completed history tasks are deleted in batches: one store call for many tasks, never re-run while the
deletion is pending, and flushed on stop."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from server.common.clock import ManualClock
from server.persistence.factory import open_persistence
from server.persistence.interface import (
    CurrentRunMode,
    ExecutionRecord,
    HistoryBatch,
    HistoryTask,
    NewRun,
    Persistence,
    ShardRecord,
    TaskCategory,
)
from services.history import queues
from services.history.config import HistoryConfig
from services.history.queues import QueueProcessor

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NS = "ns-1"


def task(category: TaskCategory, task_id: int, *, at: datetime = T0) -> HistoryTask:
    return HistoryTask(category, task_id, at, NS, "wf", "r1", b"t")


def new_run(tasks: list[HistoryTask]) -> NewRun:
    return NewRun(
        execution=ExecutionRecord(NS, "wf", "r1", b"ms", 2, 1, 1, 1),
        events=HistoryBatch(1, 1, b"e1", txn_id=1),
        current_mode=CurrentRunMode.BRAND_NEW,
        create_request_id="req",
        start_time=T0,
        previous_run_id="",
        tasks=tasks,
    )


async def acquire_shard(p: Persistence) -> int:
    shard = await p.shards.get_or_create_shard(1)
    await p.shards.update_shard(ShardRecord(1, shard.range_id + 1, shard.data, "host-a"), shard.range_id)
    return shard.range_id + 1


class CountingExecutions:
    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.complete_calls: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def complete_immediate_tasks(self, shard_id: int, category: TaskCategory, task_ids: Any) -> None:
        self.complete_calls.append(len(task_ids))
        await self._inner.complete_immediate_tasks(shard_id, category, task_ids)

    async def complete_scheduled_tasks(self, shard_id: int, keys: Any) -> None:
        self.complete_calls.append(len(keys))
        await self._inner.complete_scheduled_tasks(shard_id, keys)


async def _setup(tasks: list[HistoryTask]) -> tuple[Persistence, CountingExecutions, Any, Any]:
    p = await open_persistence("sqlite://", create_schema=True)
    rid = await acquire_shard(p)
    await p.executions.create_workflow_execution(1, rid, new_run(tasks))
    ex = CountingExecutions(p.executions)
    engine = SimpleNamespace(
        persistence=SimpleNamespace(executions=ex),
        config=HistoryConfig(queue_batch_size=1000, queue_sweep_seconds=0.01),
        clock=ManualClock(T0),
    )
    shard = SimpleNamespace(shard_id=1, lost=False)
    return p, ex, engine, shard


async def _wait_db(predicate: Any, seconds: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while not await predicate():
        assert loop.time() < end, "condition not reached in time"
        await asyncio.sleep(0.01)


async def _wait(predicate: Any, seconds: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while not predicate():
        assert loop.time() < end, "condition not reached in time"
        await asyncio.sleep(0.01)


async def test_immediate_tasks_deleted_in_batches_and_not_rerun() -> None:
    n = 150
    p, ex, engine, shard = await _setup([task(TaskCategory.TRANSFER, 10 + i) for i in range(n)])
    runs: Counter[int] = Counter()

    async def handler(_e: Any, _s: Any, t: HistoryTask) -> None:
        runs[t.task_id] += 1

    qp = QueueProcessor(engine, shard, TaskCategory.TRANSFER, handler)  # type: ignore[arg-type]
    qp.start()
    try:
        async def all_deleted() -> bool:
            return not await p.executions.get_immediate_tasks(1, TaskCategory.TRANSFER, 0, 1 << 62, 1000)

        await _wait_db(all_deleted)
        # Many fast polls happened meanwhile (poll interval 10 ms < flush interval), yet each task ran once.
        assert set(runs) == {10 + i for i in range(n)}
        assert max(runs.values()) == 1
        assert sum(ex.complete_calls) == n
        assert len(ex.complete_calls) < n // 10
    finally:
        await qp.stop()
        await p.close()


async def test_pending_acks_flushed_on_stop() -> None:
    p, ex, engine, shard = await _setup([task(TaskCategory.TRANSFER, 10 + i) for i in range(5)])
    ran: list[int] = []

    async def handler(_e: Any, _s: Any, t: HistoryTask) -> None:
        ran.append(t.task_id)

    old = queues.ACK_FLUSH_SECONDS
    queues.ACK_FLUSH_SECONDS = 60.0  # only stop() can flush
    qp = QueueProcessor(engine, shard, TaskCategory.TRANSFER, handler)  # type: ignore[arg-type]
    try:
        qp.start()
        await _wait(lambda: len(ran) == 5)
        assert await p.executions.get_immediate_tasks(1, TaskCategory.TRANSFER, 0, 1 << 62, 100)
        await qp.stop()
        assert not await p.executions.get_immediate_tasks(1, TaskCategory.TRANSFER, 0, 1 << 62, 100)
        assert sorted(ran) == [10 + i for i in range(5)]
    finally:
        queues.ACK_FLUSH_SECONDS = old
        await qp.stop()
        await p.close()


async def test_timer_tasks_deleted_in_batches() -> None:
    n = 30
    p, ex, engine, shard = await _setup([task(TaskCategory.TIMER, 10 + i, at=T0) for i in range(n)])
    ran: Counter[int] = Counter()

    async def handler(_e: Any, _s: Any, t: HistoryTask) -> None:
        ran[t.task_id] += 1

    qp = QueueProcessor(engine, shard, TaskCategory.TIMER, handler)  # type: ignore[arg-type]
    qp.start()
    try:
        async def empty() -> bool:
            return not await p.executions.get_scheduled_tasks(1, (queues.EPOCH, 0), queues.far_future(), 100)

        await _wait_db(empty)
        assert set(ran) == {10 + i for i in range(n)} and max(ran.values()) == 1
        assert sum(ex.complete_calls) == n and len(ex.complete_calls) < n
    finally:
        await qp.stop()
        await p.close()
