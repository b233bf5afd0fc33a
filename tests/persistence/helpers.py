"""Builders for persistence records, so tests state only what they are about."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from server.persistence.interface import (
    CurrentRunMode,
    ExecutionRecord,
    HistoryBatch,
    HistoryTask,
    NewRun,
    Persistence,
    RunUpdate,
    ShardRecord,
    TaskCategory,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NS = "ns-1"


def execution(
    wf: str,
    run: str,
    *,
    version: int = 1,
    next_event_id: int = 2,
    state: int = 1,
    status: int = 1,
    data: bytes = b"ms",
) -> ExecutionRecord:
    return ExecutionRecord(NS, wf, run, data, next_event_id, version, state, status)


def task(
    category: TaskCategory,
    task_id: int,
    wf: str = "wf",
    run: str = "r1",
    *,
    at: datetime = T0,
    data: bytes = b"t",
) -> HistoryTask:
    return HistoryTask(category, task_id, at, NS, wf, run, data)


def new_run(
    wf: str,
    run: str,
    *,
    mode: CurrentRunMode = CurrentRunMode.BRAND_NEW,
    previous: str = "",
    request_id: str = "req",
    tasks: list[HistoryTask] | None = None,
    events: bytes = b"e1",
) -> NewRun:
    return NewRun(
        execution=execution(wf, run),
        events=HistoryBatch(1, 1, events, txn_id=1),
        current_mode=mode,
        create_request_id=request_id,
        start_time=T0 + timedelta(seconds=5),
        previous_run_id=previous,
        tasks=tasks or [],
    )


def run_update(
    wf: str,
    run: str,
    *,
    expected: int,
    next_event_id: int,
    first: int,
    state: int = 1,
    status: int = 1,
    tasks: list[HistoryTask] | None = None,
    txn_id: int = 0,
) -> RunUpdate:
    return RunUpdate(
        execution=execution(
            wf,
            run,
            version=expected + 1,
            next_event_id=next_event_id,
            state=state,
            status=status,
            data=f"ms{next_event_id}".encode(),
        ),
        expected_db_record_version=expected,
        events=HistoryBatch(first, next_event_id - 1, f"events{first}".encode(), txn_id=txn_id or first),
        tasks=tasks or [],
    )


async def acquire_shard(p: Persistence, shard_id: int = 1, owner: str = "host-a") -> int:
    """Acquire the shard the way History does; returns the new range_id."""
    shard = await p.shards.get_or_create_shard(shard_id)
    await p.shards.update_shard(ShardRecord(shard_id, shard.range_id + 1, shard.data, owner), shard.range_id)
    return shard.range_id + 1
