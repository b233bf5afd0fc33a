"""Committed history tasks reach the queue processors in memory: no database read per new task or per timer
wake-up. The database is read on shard load (restart / acquisition), after an overflow of the in-memory
buffer, and by the slow safety sweep."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from temporalio.api.namespace.v1 import message_pb2 as namespace_pb2
from temporalio.api.workflowservice.v1 import request_response_pb2 as ws

from server.common.clock import ManualClock
from server.common.errors import ConditionFailed, Unavailable
from server.gen.durata.internal.matching.v1 import service_pb2 as mpb
from server.persistence.factory import open_persistence
from server.persistence.interface import (
    CurrentRunMode,
    ExecutionRecord,
    HistoryBatch,
    HistoryTask,
    NamespaceRecord,
    NewRun,
    Persistence,
    ShardRecord,
    TaskCategory,
)
from services.history.config import HistoryConfig
from services.history.queues import QueueProcessor
from services.history.service import HistoryService
from services.history.shard import ShardContext

from .conftest import Env, FakeMatching
from .helpers import Driver, cmd_activity, cmd_timer, names

READS = ("get_immediate_tasks", "get_scheduled_tasks")


class CountingExecutions:
    """The real execution store, counting calls by method name."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        async def counted(*args: Any, **kw: Any) -> Any:
            self.calls[name] += 1
            return await attr(*args, **kw)

        return counted

    def reads(self) -> int:
        return sum(self.calls[n] for n in READS)


class CountingPersistence:
    def __init__(self, inner: Persistence) -> None:
        self._inner = inner
        self.executions = CountingExecutions(inner.executions)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _config() -> HistoryConfig:
    cfg = HistoryConfig(num_history_shards=1)
    cfg.queue_sweep_seconds = 3600.0  # type: ignore[attr-defined]  # no safety sweep during the test
    return cfg


async def _service(p: CountingPersistence, clock: ManualClock, matching: Any) -> HistoryService:
    svc = HistoryService(p, clock, _config(), f"host-{uuid.uuid4().hex[:6]}")  # type: ignore[arg-type]
    svc.matching_client = matching
    await svc.start()
    return svc


async def _settle(ex: CountingExecutions) -> None:
    """Wait until the initial read of each of the three processors (one shard) is done."""
    for _ in range(500):
        if ex.reads() >= 3:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    assert ex.reads() == 3, ex.calls


@pytest.fixture
async def setup() -> AsyncIterator[tuple[CountingPersistence, ManualClock, str]]:
    inner = await open_persistence("sqlite://", create_schema=True)
    ns_id = str(uuid.uuid4())
    desc = ws.DescribeNamespaceResponse(namespace_info=namespace_pb2.NamespaceInfo(name="default", id=ns_id))
    desc.config.workflow_execution_retention_ttl.FromSeconds(86400)
    await inner.namespaces.create_namespace(NamespaceRecord(id=ns_id, name="default", data=desc.SerializeToString()))
    try:
        yield CountingPersistence(inner), ManualClock(), ns_id
    finally:
        await inner.close()


async def test_task_committed_while_idle_is_processed_without_db_read(setup: Any) -> None:
    p, clock, ns_id = setup
    matching = FakeMatching()
    svc = await _service(p, clock, matching)
    try:
        await _settle(p.executions)
        p.executions.calls.clear()
        d = Driver(Env(p, clock, matching, svc, ns_id))
        await d.start("wf-idle")
        add = await d.next_wft_add()  # transfer task ran
        assert add.execution.workflow_id == "wf-idle"
        for _ in range(200):  # visibility task ran too
            if p.executions.calls["complete_immediate_tasks"] >= 2:
                break
            await asyncio.sleep(0.01)
        assert p.executions.calls["complete_immediate_tasks"] >= 2
        assert p.executions.reads() == 0, p.executions.calls
        # Completed tasks are still deleted (batched).
        assert not await p.executions.get_immediate_tasks(1, TaskCategory.TRANSFER, 0, 1 << 62, 10)
        assert not await p.executions.get_immediate_tasks(1, TaskCategory.VISIBILITY, 0, 1 << 62, 10)
    finally:
        await svc.stop()


async def test_timer_committed_in_memory_fires_at_its_time(setup: Any) -> None:
    p, clock, ns_id = setup
    matching = FakeMatching()
    svc = await _service(p, clock, matching)
    try:
        await _settle(p.executions)
        d = Driver(Env(p, clock, matching, svc, ns_id))
        await d.start("wf-timer")
        await d.complete(await d.poll_wft(), [cmd_timer("t1", 30)])
        p.executions.calls.clear()
        clock.advance(29)
        await asyncio.sleep(0.2)
        assert len(matching.workflow_tasks) == 1  # not yet
        clock.advance(2)
        task = await d.poll_wft()
        assert names(list(task.history.events))[-3:] == ["TIMER_FIRED", "WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED"]
        assert p.executions.calls["get_scheduled_tasks"] == 0
        assert p.executions.reads() == 0, p.executions.calls
    finally:
        await svc.stop()


class FlakyMatching(FakeMatching):
    async def AddWorkflowTask(self, request: mpb.AddWorkflowTaskRequest, *, deadline: float | None = None) -> mpb.AddWorkflowTaskResponse:
        raise Unavailable("matching down")

    async def AddActivityTask(self, request: mpb.AddActivityTaskRequest, *, deadline: float | None = None) -> mpb.AddActivityTaskResponse:
        raise Unavailable("matching down")


async def test_outstanding_tasks_read_from_db_after_restart(setup: Any) -> None:
    p, clock, ns_id = setup
    matching = FakeMatching()
    svc = await _service(p, clock, matching)
    d = Driver(Env(p, clock, matching, svc, ns_id))
    try:
        await d.start("wf-a")
        # A timer and an activity task outstanding when the host goes away (matching refuses the activity).
        wft = await d.poll_wft()
        svc.matching_client = FlakyMatching()
        await d.complete(wft, [cmd_timer("t1", 30), cmd_activity("a1")])
        await asyncio.sleep(0.1)
    finally:
        await svc.stop()
    assert await p.executions.get_immediate_tasks(1, TaskCategory.TRANSFER, 0, 1 << 62, 10)

    p.executions.calls.clear()
    matching2 = FakeMatching()
    svc2 = await _service(p, clock, matching2)
    try:
        await matching2.wait_for(lambda: matching2.activity_tasks)  # the activity task, read back from the DB
        assert matching2.activity_tasks[0].execution.workflow_id == "wf-a"
        assert p.executions.calls["get_immediate_tasks"] >= 1 and p.executions.calls["get_scheduled_tasks"] >= 1
        clock.advance(31)
        await matching2.wait_for(lambda: matching2.workflow_tasks)  # the timer fired: a new workflow task
        assert matching2.workflow_tasks[0].execution.workflow_id == "wf-a"
    finally:
        await svc2.stop()


# ---------------------------------------------------------------- QueueProcessor alone: overflow and horizon

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _task(category: TaskCategory, task_id: int, at: datetime = T0) -> HistoryTask:
    return HistoryTask(category, task_id, at, "ns", "wf", "r1", b"t")


async def _store() -> tuple[Persistence, CountingExecutions]:
    p = await open_persistence("sqlite://", create_schema=True)
    shard = await p.shards.get_or_create_shard(1)
    await p.shards.update_shard(ShardRecord(1, shard.range_id + 1, shard.data, "h"), shard.range_id)
    return p, CountingExecutions(p.executions)


async def _commit(p: Persistence, tasks: list[HistoryTask]) -> None:
    """Write ``tasks`` the way a shard does: inside the transaction that creates a run."""
    rid = (await p.shards.get_or_create_shard(1)).range_id
    run = NewRun(
        execution=ExecutionRecord("ns", "wf", "r1", b"ms", 2, 1, 1, 1),
        events=HistoryBatch(1, 1, b"e1", txn_id=1),
        current_mode=CurrentRunMode.BRAND_NEW,
        create_request_id="req",
        start_time=T0,
        tasks=tasks,
    )
    await p.executions.create_workflow_execution(1, rid, run)


def _processor(ex: CountingExecutions, clock: ManualClock, category: TaskCategory, handler: Any, cap: int) -> QueueProcessor:
    engine = SimpleNamespace(
        persistence=SimpleNamespace(executions=ex),
        config=SimpleNamespace(queue_batch_size=100, queue_sweep_seconds=3600.0, queue_max_buffered_tasks=cap),
        clock=clock,
    )
    return QueueProcessor(engine, SimpleNamespace(shard_id=1, lost=False), category, handler)  # type: ignore[arg-type]


async def _until(predicate: Any, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached in time")


async def test_buffer_overflow_falls_back_to_a_db_read() -> None:
    tasks = [_task(TaskCategory.TRANSFER, 10 + i) for i in range(6)]
    p, ex = await _store()
    gate = asyncio.Event()
    ran: Counter[int] = Counter()

    async def handler(_e: Any, _s: Any, t: HistoryTask) -> None:
        await gate.wait()
        ran[t.task_id] += 1

    qp = _processor(ex, ManualClock(T0), TaskCategory.TRANSFER, handler, cap=2)
    qp.start()
    try:
        await _until(lambda: ex.calls["get_immediate_tasks"] == 1)  # initial read: empty
        await _commit(p, tasks)
        qp.add_tasks(tasks)  # only 2 fit; the rest is dropped and must come back from the database
        assert len(qp._inflight) == 2
        gate.set()
        await _until(lambda: set(ran) == {10 + i for i in range(6)})
        assert max(ran.values()) == 1
        assert ex.calls["get_immediate_tasks"] >= 2
    finally:
        await qp.stop()
        await p.close()


async def test_timers_beyond_the_buffer_are_read_back_at_the_horizon() -> None:
    clock = ManualClock(T0)
    p, ex = await _store()
    fired: list[int] = []

    async def handler(_e: Any, _s: Any, t: HistoryTask) -> None:
        fired.append(t.task_id)

    qp = _processor(ex, clock, TaskCategory.TIMER, handler, cap=3)
    qp.start()
    try:
        await _until(lambda: ex.calls["get_scheduled_tasks"] == 1)
        timers = [_task(TaskCategory.TIMER, 100 + i, T0 + timedelta(seconds=10 - i)) for i in range(8)]
        await _commit(p, timers)
        qp.add_tasks(timers)  # latest first: the buffer (3) keeps the earliest, the rest waits in the DB
        assert len(qp._timers) <= 3
        for step in range(1, 12):
            clock.advance(1)
            due = {100 + i for i in range(8) if 10 - i <= step}
            await _until(lambda due=due: set(fired) >= due)  # type: ignore[misc]
            assert set(fired) == due, (step, fired)
        assert sorted(fired) == [100 + i for i in range(8)]
        assert ex.calls["get_scheduled_tasks"] >= 2  # the evicted timers came back from the database
    finally:
        await qp.stop()
        await p.close()


async def test_write_of_unknown_outcome_asks_the_queues_to_read() -> None:
    """A store call that fails without saying whether it committed: its tasks were not handed over in memory,
    so the shard's processors must read the database; a definite refusal needs no read."""
    shard = ShardContext(
        1, None, ManualClock(T0), HistoryConfig(), "h", None, None, lambda s: None  # type: ignore[arg-type]
    )
    reads: list[int] = []
    sink = SimpleNamespace(add_tasks=lambda tasks: None, request_read=lambda: reads.append(1))
    shard.register_queue(TaskCategory.TRANSFER, sink)  # type: ignore[arg-type]

    async def refused() -> None:
        raise ConditionFailed("version moved")

    async def unknown() -> None:
        raise TimeoutError

    with pytest.raises(ConditionFailed):
        await shard._guard(refused())
    assert reads == []
    with pytest.raises(TimeoutError):
        await shard._guard(unknown())
    assert reads == [1]
