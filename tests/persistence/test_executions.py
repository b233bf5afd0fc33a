"""Executions, current-run pointer, history and fencing, on both backends."""

from __future__ import annotations

from datetime import timedelta

import pytest

from server.common.errors import ConditionFailed, CurrentRunConflict, ShardOwnershipLost
from server.persistence.interface import CurrentRunMode, HistoryBatch, Persistence, TaskCategory

from .helpers import NS, T0, acquire_shard, new_run, run_update, task


async def test_create_get_update(persistence: Persistence) -> None:
    rid = await acquire_shard(persistence)
    ex = persistence.executions
    await ex.create_workflow_execution(1, rid, new_run("wf", "r1", request_id="req-1"))

    got = await ex.get_workflow_execution(1, NS, "wf", "r1")
    assert got is not None
    assert (got.run_id, got.next_event_id, got.db_record_version, got.data) == ("r1", 2, 1, b"ms")
    cur = await ex.get_current_execution(1, NS, "wf")
    assert cur is not None
    assert (cur.run_id, cur.create_request_id, cur.state, cur.status) == ("r1", "req-1", 1, 1)
    assert cur.start_time is not None and cur.start_time.timestamp() == T0.timestamp() + 5

    await ex.update_workflow_execution(
        1, rid, run_update("wf", "r1", expected=1, next_event_id=5, first=2, state=2, status=2)
    )
    got = await ex.get_workflow_execution(1, NS, "wf", "r1")
    assert got is not None and (got.next_event_id, got.db_record_version, got.data) == (5, 2, b"ms5")
    cur = await ex.get_current_execution(1, NS, "wf")
    assert cur is not None and (cur.state, cur.status) == (2, 2)  # mirrored into the current row

    assert await ex.get_workflow_execution(1, NS, "wf", "other") is None
    assert await ex.get_workflow_execution(2, NS, "wf", "r1") is None  # keyed by shard too
    assert await ex.get_current_execution(1, NS, "nope") is None


async def test_db_record_version_conflict_is_atomic(persistence: Persistence) -> None:
    rid = await acquire_shard(persistence)
    ex = persistence.executions
    await ex.create_workflow_execution(1, rid, new_run("wf", "r1"))
    await ex.update_workflow_execution(1, rid, run_update("wf", "r1", expected=1, next_event_id=3, first=2))
    stale = run_update(
        "wf", "r1", expected=1, next_event_id=4, first=3, tasks=[task(TaskCategory.TRANSFER, 900)]
    )
    with pytest.raises(ConditionFailed):
        await ex.update_workflow_execution(1, rid, stale)
    # Nothing of the failed transaction is visible: no events, no tasks, state unchanged.
    got = await ex.get_workflow_execution(1, NS, "wf", "r1")
    assert got is not None and (got.db_record_version, got.next_event_id) == (2, 3)
    assert [b.first_event_id for b in await ex.read_history(1, NS, "wf", "r1", 1, 100)] == [1, 2]
    assert await ex.get_immediate_tasks(1, TaskCategory.TRANSFER, 0, 10_000, 10) == []
    # Updating a run that does not exist is a condition failure too.
    with pytest.raises(ConditionFailed):
        await ex.update_workflow_execution(
            1, rid, run_update("wf", "ghost", expected=1, next_event_id=3, first=2)
        )


async def test_brand_new_conflict_reports_current_run(persistence: Persistence) -> None:
    rid = await acquire_shard(persistence)
    ex = persistence.executions
    await ex.create_workflow_execution(1, rid, new_run("wf", "r1", request_id="req-1"))
    with pytest.raises(CurrentRunConflict) as err:
        await ex.create_workflow_execution(
            1, rid, new_run("wf", "r2", request_id="req-2", tasks=[task(TaskCategory.TRANSFER, 5, run="r2")])
        )
    assert (err.value.current_run_id, err.value.request_id, err.value.state, err.value.status) == (
        "r1",
        "req-1",
        1,
        1,
    )
    # The losing run left nothing behind.
    assert await ex.get_workflow_execution(1, NS, "wf", "r2") is None
    assert await ex.read_history(1, NS, "wf", "r2", 1, 10) == []
    assert await ex.get_immediate_tasks(1, TaskCategory.TRANSFER, 0, 100, 10) == []
    # A different workflow id is unaffected.
    await ex.create_workflow_execution(1, rid, new_run("wf-other", "r3"))


async def test_swap_current_run(persistence: Persistence) -> None:
    rid = await acquire_shard(persistence)
    ex = persistence.executions
    await ex.create_workflow_execution(1, rid, new_run("wf", "r1"))
    # Wrong previous run: conflict carrying the actual current run.
    with pytest.raises(CurrentRunConflict) as err:
        await ex.create_workflow_execution(
            1, rid, new_run("wf", "r2", mode=CurrentRunMode.SWAP, previous="zzz")
        )
    assert err.value.current_run_id == "r1"
    # SWAP with no current row at all is a conflict with empty fields.
    with pytest.raises(CurrentRunConflict) as err:
        await ex.create_workflow_execution(
            1, rid, new_run("wf-x", "r9", mode=CurrentRunMode.SWAP, previous="r1")
        )
    assert err.value.current_run_id == ""

    await ex.create_workflow_execution(
        1, rid, new_run("wf", "r2", mode=CurrentRunMode.SWAP, previous="r1", request_id="req-2")
    )
    cur = await ex.get_current_execution(1, NS, "wf")
    assert cur is not None and (cur.run_id, cur.create_request_id) == ("r2", "req-2")
    assert await ex.get_workflow_execution(1, NS, "wf", "r1") is not None  # old run kept


async def test_update_with_new_run_is_atomic(persistence: Persistence) -> None:
    """Continue-as-new: close r1 and start r2 in one transaction; a failing half undoes the other."""
    rid = await acquire_shard(persistence)
    ex = persistence.executions
    await ex.create_workflow_execution(1, rid, new_run("wf", "r1"))
    close = run_update("wf", "r1", expected=1, next_event_id=4, first=2, state=3, status=6)
    bad_next = new_run("wf", "r2", mode=CurrentRunMode.SWAP, previous="wrong")
    with pytest.raises(CurrentRunConflict):
        await ex.update_workflow_execution(1, rid, close, bad_next)
    got = await ex.get_workflow_execution(1, NS, "wf", "r1")
    assert got is not None and got.db_record_version == 1 and got.status == 1

    close = run_update("wf", "r1", expected=1, next_event_id=4, first=2, state=3, status=6)
    nxt = new_run(
        "wf",
        "r2",
        mode=CurrentRunMode.SWAP,
        previous="r1",
        request_id="can",
        tasks=[task(TaskCategory.TRANSFER, 11, run="r2")],
    )
    await ex.update_workflow_execution(1, rid, close, nxt)
    r1 = await ex.get_workflow_execution(1, NS, "wf", "r1")
    assert r1 is not None and (r1.state, r1.status) == (3, 6)
    cur = await ex.get_current_execution(1, NS, "wf")
    assert cur is not None and (cur.run_id, cur.state, cur.status, cur.create_request_id) == (
        "r2",
        1,
        1,
        "can",
    )
    assert [t.run_id for t in await ex.get_immediate_tasks(1, TaskCategory.TRANSFER, 0, 100, 10)] == ["r2"]


async def test_update_current_flag(persistence: Persistence) -> None:
    rid = await acquire_shard(persistence)
    ex = persistence.executions
    await ex.create_workflow_execution(1, rid, new_run("wf", "r1"))
    upd = run_update("wf", "r1", expected=1, next_event_id=3, first=2, state=2, status=2)
    upd.update_current = False
    await ex.update_workflow_execution(1, rid, upd)
    cur = await ex.get_current_execution(1, NS, "wf")
    assert cur is not None and (cur.state, cur.status) == (1, 1)


async def test_stale_range_id_rejected_for_executions(persistence: Persistence) -> None:
    old = await acquire_shard(persistence, owner="host-a")
    ex = persistence.executions
    await ex.create_workflow_execution(1, old, new_run("wf", "r1"))
    new = await acquire_shard(persistence, owner="host-b")
    assert new == old + 1
    with pytest.raises(ShardOwnershipLost):
        await ex.create_workflow_execution(1, old, new_run("wf2", "r2"))
    with pytest.raises(ShardOwnershipLost):
        await ex.update_workflow_execution(
            1, old, run_update("wf", "r1", expected=1, next_event_id=3, first=2)
        )
    with pytest.raises(ShardOwnershipLost):
        await ex.delete_workflow_execution(1, old, NS, "wf", "r1")
    assert await ex.get_workflow_execution(1, NS, "wf2", "r2") is None
    got = await ex.get_workflow_execution(1, NS, "wf", "r1")
    assert got is not None and got.db_record_version == 1
    # The new owner writes fine; a shard that was never created fences everyone.
    await ex.update_workflow_execution(1, new, run_update("wf", "r1", expected=1, next_event_id=3, first=2))
    with pytest.raises(ShardOwnershipLost):
        await ex.create_workflow_execution(77, 1, new_run("wf3", "r3"))


async def test_read_history_ranges(persistence: Persistence) -> None:
    rid = await acquire_shard(persistence)
    ex = persistence.executions
    await ex.create_workflow_execution(1, rid, new_run("wf", "r1", events=b"b1"))  # events [1, 1]
    # Batches [2,4], [5,5], [6,9]
    await ex.update_workflow_execution(1, rid, run_update("wf", "r1", expected=1, next_event_id=5, first=2))
    await ex.update_workflow_execution(1, rid, run_update("wf", "r1", expected=2, next_event_id=6, first=5))
    await ex.update_workflow_execution(1, rid, run_update("wf", "r1", expected=3, next_event_id=10, first=6))

    async def firsts(lo: int, hi: int) -> list[int]:
        return [b.first_event_id for b in await ex.read_history(1, NS, "wf", "r1", lo, hi)]

    assert await firsts(1, 10) == [1, 2, 5, 6]
    assert await firsts(1, 2) == [1]
    assert await firsts(3, 6) == [2, 5]  # overlapping batches, not just those starting inside
    assert await firsts(6, 7) == [6]
    assert await firsts(9, 100) == [6]
    assert await firsts(10, 100) == []
    batches = await ex.read_history(1, NS, "wf", "r1", 2, 5)
    assert batches == [HistoryBatch(2, 4, b"events2", txn_id=2)]


async def test_history_node_rewrite_newest_txn_wins(persistence: Persistence) -> None:
    rid = await acquire_shard(persistence)
    ex = persistence.executions
    await ex.create_workflow_execution(1, rid, new_run("wf", "r1"))
    await ex.update_workflow_execution(
        1, rid, run_update("wf", "r1", expected=1, next_event_id=4, first=2, txn_id=10)
    )
    await ex.update_workflow_execution(
        1, rid, run_update("wf", "r1", expected=2, next_event_id=3, first=2, txn_id=20)
    )
    batches = await ex.read_history(1, NS, "wf", "r1", 2, 10)
    assert [(b.first_event_id, b.last_event_id, b.txn_id) for b in batches] == [(2, 2, 20)]


async def test_delete_execution(persistence: Persistence) -> None:
    rid = await acquire_shard(persistence)
    ex = persistence.executions
    await ex.create_workflow_execution(1, rid, new_run("wf", "r1"))
    await ex.update_workflow_execution(
        1, rid, run_update("wf", "r1", expected=1, next_event_id=4, first=2, state=3, status=2)
    )
    await ex.create_workflow_execution(1, rid, new_run("wf", "r2", mode=CurrentRunMode.SWAP, previous="r1"))
    # Deleting a non-current run keeps the current row.
    await ex.delete_workflow_execution(1, rid, NS, "wf", "r1")
    assert await ex.get_workflow_execution(1, NS, "wf", "r1") is None
    assert await ex.read_history(1, NS, "wf", "r1", 1, 100) == []
    cur = await ex.get_current_execution(1, NS, "wf")
    assert cur is not None and cur.run_id == "r2"
    # Deleting the current run removes the pointer as well; the id can then start brand new.
    await ex.delete_workflow_execution(1, rid, NS, "wf", "r2")
    assert await ex.get_current_execution(1, NS, "wf") is None
    assert await ex.get_workflow_execution(1, NS, "wf", "r2") is None
    await ex.create_workflow_execution(1, rid, new_run("wf", "r3"))
    # Deleting something absent is a no-op.
    await ex.delete_workflow_execution(1, rid, NS, "nope", "nope")


async def test_duplicate_run_or_task_id_is_condition_failed(persistence: Persistence) -> None:
    rid = await acquire_shard(persistence)
    ex = persistence.executions
    await ex.create_workflow_execution(1, rid, new_run("wf", "r1", tasks=[task(TaskCategory.TRANSFER, 7)]))
    await ex.delete_workflow_execution(1, rid, NS, "wf", "r1")  # current row gone, history gone...
    await ex.create_workflow_execution(1, rid, new_run("wf-b", "r2"))
    with pytest.raises(ConditionFailed):  # ...task 7 is still queued: a reused task id must not commit
        await ex.create_workflow_execution(
            1, rid, new_run("wf", "r1", tasks=[task(TaskCategory.TRANSFER, 7)])
        )
    assert await ex.get_current_execution(1, NS, "wf") is None  # rolled back entirely


async def test_update_with_reused_task_id_commits_nothing(persistence: Persistence) -> None:
    """Every part of a run update is one atomic write (PostgreSQL runs it as a single statement)."""
    rid = await acquire_shard(persistence)
    ex = persistence.executions
    await ex.create_workflow_execution(1, rid, new_run("wf", "r1", tasks=[task(TaskCategory.TRANSFER, 7)]))
    clash = run_update(
        "wf", "r1", expected=1, next_event_id=3, first=2,
        tasks=[task(TaskCategory.TIMER, 8), task(TaskCategory.TRANSFER, 7)],
    )
    with pytest.raises(ConditionFailed):
        await ex.update_workflow_execution(1, rid, clash)
    got = await ex.get_workflow_execution(1, NS, "wf", "r1")
    assert got is not None and got.db_record_version == 1
    assert [b.first_event_id for b in await ex.read_history(1, NS, "wf", "r1", 1, 100)] == [1]
    assert await ex.get_scheduled_tasks(1, (T0 - timedelta(days=1), 0), T0 + timedelta(days=1), 10) == []


async def test_update_without_events_and_with_both_task_kinds(persistence: Persistence) -> None:
    rid = await acquire_shard(persistence)
    ex = persistence.executions
    await ex.create_workflow_execution(1, rid, new_run("wf", "r1"))
    upd = run_update(
        "wf", "r1", expected=1, next_event_id=2, first=2,
        tasks=[task(TaskCategory.TRANSFER, 20), task(TaskCategory.TIMER, 21), task(TaskCategory.VISIBILITY, 22)],
    )
    upd.events = None
    await ex.update_workflow_execution(1, rid, upd)
    assert [b.first_event_id for b in await ex.read_history(1, NS, "wf", "r1", 1, 100)] == [1]
    transfer = await ex.get_immediate_tasks(1, TaskCategory.TRANSFER, 0, 10_000, 10)
    assert [(t.task_id, t.workflow_id, t.data) for t in transfer] == [(20, "wf", b"t")]
    assert [t.task_id for t in await ex.get_immediate_tasks(1, TaskCategory.VISIBILITY, 0, 10_000, 10)] == [22]
    timers = await ex.get_scheduled_tasks(1, (T0 - timedelta(days=1), 0), T0 + timedelta(days=1), 10)
    assert [(t.task_id, t.visibility_time) for t in timers] == [(21, T0)]
