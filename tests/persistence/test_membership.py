"""The cluster membership store, on both backends: register, heartbeat, expiry by time, leave, prune."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from server.persistence.interface import MemberRecord, Persistence, TaskQueueKey

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def member(role: str, address: str, beat: datetime, start: datetime = T0) -> MemberRecord:
    return MemberRecord(f"{role}@{address}", role, address, start, beat)


async def test_register_heartbeat_and_list(persistence: Persistence) -> None:
    store = persistence.membership
    await store.upsert_member(member("history", "h1:7234", T0))
    await store.upsert_member(member("history", "h2:7234", T0))
    await store.upsert_member(member("matching", "m1:7235", T0))
    assert [m.host_id for m in await store.list_members()] == ["history@h1:7234", "history@h2:7234",
                                                                "matching@m1:7235"]
    assert [m.rpc_address for m in await store.list_members("history")] == ["h1:7234", "h2:7234"]

    # A heartbeat replaces the row (same host id): one row, new time.
    later = T0 + timedelta(seconds=5)
    await store.upsert_member(member("history", "h1:7234", later))
    rows = await store.list_members("history")
    assert len(rows) == 2
    assert rows[0].last_heartbeat == later and rows[0].session_start == T0

    # Expiry is a read-side filter: only h1 heartbeat after T0 + 1s.
    alive = await store.list_members("history", alive_since=T0 + timedelta(seconds=1))
    assert [m.rpc_address for m in alive] == ["h1:7234"]


async def test_restart_takes_over_row_and_leave(persistence: Persistence) -> None:
    store = persistence.membership
    await store.upsert_member(member("matching", "m1:7235", T0))
    restarted = T0 + timedelta(minutes=1)
    await store.upsert_member(member("matching", "m1:7235", restarted, start=restarted))
    rows = await store.list_members("matching")
    assert len(rows) == 1 and rows[0].session_start == restarted
    await store.remove_member("matching@m1:7235")
    assert await store.list_members() == []
    await store.remove_member("matching@m1:7235")  # leaving twice is harmless


async def test_prune_dead_rows(persistence: Persistence) -> None:
    store = persistence.membership
    await store.upsert_member(member("history", "old:1", T0))
    await store.upsert_member(member("history", "new:1", T0 + timedelta(minutes=10)))
    assert await store.prune_members(T0 + timedelta(minutes=5)) == 1
    assert [m.rpc_address for m in await store.list_members()] == ["new:1"]


async def test_list_task_queue_partitions(persistence: Persistence) -> None:
    for p in (2, 0, 1):
        await persistence.tasks.lease_task_queue(TaskQueueKey("ns", "q", 1, p))
    await persistence.tasks.lease_task_queue(TaskQueueKey("ns", "q", 1, 0))
    rows = await persistence.tasks.list_task_queues(10)
    assert [(r.key.partition, r.range_id) for r in rows] == [(0, 2), (1, 1), (2, 1)]
