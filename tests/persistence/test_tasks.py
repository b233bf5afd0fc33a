"""History task queues (immediate and scheduled) and matching task queues, on both backends."""

from __future__ import annotations

from datetime import timedelta

import pytest

from server.common.errors import ConditionFailed
from server.persistence.interface import Persistence, TaskCategory, TaskQueueKey, TaskQueueRecord, TaskRecord

from .helpers import T0, acquire_shard, new_run, run_update, task


async def test_immediate_task_ranges_and_completion(persistence: Persistence) -> None:
    rid = await acquire_shard(persistence)
    ex = persistence.executions
    transfer = [task(TaskCategory.TRANSFER, i, data=f"t{i}".encode()) for i in (10, 11, 12, 15)]
    await ex.create_workflow_execution(
        1, rid, new_run("wf", "r1", tasks=[*transfer, task(TaskCategory.VISIBILITY, 13)])
    )
    await ex.update_workflow_execution(
        1,
        rid,
        run_update("wf", "r1", expected=1, next_event_id=3, first=2, tasks=[task(TaskCategory.TRANSFER, 20)]),
    )

    async def ids(lo: int, hi: int, limit: int = 100, cat: TaskCategory = TaskCategory.TRANSFER) -> list[int]:
        return [t.task_id for t in await ex.get_immediate_tasks(1, cat, lo, hi, limit)]

    assert await ids(0, 100) == [10, 11, 12, 15, 20]
    assert await ids(10, 15) == [11, 12, 15]  # exclusive min, inclusive max
    assert await ids(0, 100, limit=2) == [10, 11]
    assert await ids(0, 100, cat=TaskCategory.VISIBILITY) == [13]
    got = (await ex.get_immediate_tasks(1, TaskCategory.TRANSFER, 9, 10, 1))[0]
    assert (got.category, got.namespace_id, got.workflow_id, got.run_id, got.data) == (
        TaskCategory.TRANSFER,
        "ns-1",
        "wf",
        "r1",
        b"t10",
    )
    assert got.visibility_time == T0
    assert await ex.get_immediate_tasks(2, TaskCategory.TRANSFER, 0, 100, 10) == []  # other shard

    await ex.complete_immediate_tasks(1, TaskCategory.TRANSFER, [10, 12, 999])
    await ex.complete_immediate_tasks(1, TaskCategory.TRANSFER, [])
    assert await ids(0, 100) == [11, 15, 20]
    await ex.complete_immediate_tasks(1, TaskCategory.VISIBILITY, [11])  # category-scoped
    assert await ids(0, 100) == [11, 15, 20]


async def test_scheduled_tasks_ordering_and_completion(persistence: Persistence) -> None:
    rid = await acquire_shard(persistence)
    ex = persistence.executions
    at = [T0 + timedelta(seconds=s) for s in (30, 10, 20, 10)]
    timers = [task(TaskCategory.TIMER, tid, at=when) for tid, when in zip((1, 2, 3, 4), at, strict=True)]
    await ex.create_workflow_execution(1, rid, new_run("wf", "r1", tasks=timers))
    assert await ex.get_immediate_tasks(1, TaskCategory.TIMER, 0, 100, 10) == []  # not in the immediate table

    async def keys(after: tuple, until_s: int, limit: int = 100) -> list[tuple[int, int]]:
        got = await ex.get_scheduled_tasks(1, after, T0 + timedelta(seconds=until_s), limit)
        return [(int((t.visibility_time - T0).total_seconds()), t.task_id) for t in got]

    start = (T0, 0)
    assert await keys(start, 100) == [(10, 2), (10, 4), (20, 3), (30, 1)]  # by time, then task id
    assert await keys(start, 20) == [(10, 2), (10, 4), (20, 3)]  # max time inclusive
    assert await keys((T0 + timedelta(seconds=10), 2), 100) == [
        (10, 4),
        (20, 3),
        (30, 1),
    ]  # exclusive (time, id)
    assert await keys(start, 100, limit=1) == [(10, 2)]
    assert await keys(start, 9) == []

    await ex.complete_scheduled_tasks(1, [(T0 + timedelta(seconds=10), 2), (T0 + timedelta(seconds=20), 3)])
    await ex.complete_scheduled_tasks(1, [(T0 + timedelta(seconds=99), 4)])  # wrong time: not deleted
    assert await keys(start, 100) == [(10, 4), (30, 1)]


async def test_task_queue_lease_and_tasks(persistence: Persistence) -> None:
    tq = persistence.tasks
    key = TaskQueueKey("ns-1", "orders", 1)
    first = await tq.lease_task_queue(key)
    assert (first.range_id, first.ack_level, first.data) == (1, 0, b"")

    tasks = [
        TaskRecord(task_id=i, data=f"task{i}".encode(), expiry_time=T0 if i == 3 else None)
        for i in (1, 2, 3, 5)
    ]
    await tq.create_tasks(key, 1, tasks)
    got = await tq.get_tasks(key, 0, 100, 10)
    assert [(t.task_id, t.data, t.expiry_time) for t in got] == [
        (1, b"task1", None),
        (2, b"task2", None),
        (3, b"task3", T0),
        (5, b"task5", None),
    ]
    assert [t.task_id for t in await tq.get_tasks(key, 1, 3, 10)] == [2, 3]
    assert [t.task_id for t in await tq.get_tasks(key, 0, 100, 2)] == [1, 2]
    # Other queues (name, type, partition) are separate.
    assert await tq.get_tasks(TaskQueueKey("ns-1", "orders", 2), 0, 100, 10) == []
    assert await tq.get_tasks(TaskQueueKey("ns-1", "orders", 1, partition=1), 0, 100, 10) == []

    await tq.update_task_queue(TaskQueueRecord(key, 1, ack_level=2, data=b"meta"))
    assert await tq.complete_tasks_less_than(key, 3) == 2
    assert [t.task_id for t in await tq.get_tasks(key, 0, 100, 10)] == [3, 5]

    # A new owner leases: range bumps, ack level and data survive, the old owner is fenced out.
    second = await tq.lease_task_queue(key)
    assert (second.range_id, second.ack_level, second.data) == (2, 2, b"meta")
    with pytest.raises(ConditionFailed):
        await tq.create_tasks(key, 1, [TaskRecord(9, b"stale")])
    with pytest.raises(ConditionFailed):
        await tq.update_task_queue(TaskQueueRecord(key, 1, ack_level=5))
    assert [t.task_id for t in await tq.get_tasks(key, 0, 100, 10)] == [3, 5]
    await tq.create_tasks(key, 2, [TaskRecord(9, b"fresh")])
    assert [t.task_id for t in await tq.get_tasks(key, 0, 100, 10)] == [3, 5, 9]


async def test_create_tasks_requires_leased_queue(persistence: Persistence) -> None:
    with pytest.raises(ConditionFailed):
        await persistence.tasks.create_tasks(
            TaskQueueKey("ns-1", "never-leased", 1), 1, [TaskRecord(1, b"x")]
        )
    with pytest.raises(ConditionFailed):
        await persistence.tasks.update_task_queue(
            TaskQueueRecord(TaskQueueKey("ns-1", "never-leased", 1), 1, 0)
        )


async def test_create_tasks_with_a_duplicate_id_writes_none_of_them(persistence: Persistence) -> None:
    tq = persistence.tasks
    key = TaskQueueKey("ns-1", "dupes", 1)
    lease = await tq.lease_task_queue(key)
    await tq.create_tasks(key, lease.range_id, [TaskRecord(4, b"a")])
    with pytest.raises(ConditionFailed):
        await tq.create_tasks(key, lease.range_id, [TaskRecord(5, b"b"), TaskRecord(4, b"again")])
    assert [(t.task_id, t.data) for t in await tq.get_tasks(key, 0, 100, 10)] == [(4, b"a")]
