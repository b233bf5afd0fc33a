"""Group commit of the SQLite file database: many transactions, one COMMIT; each caller sees only its own fate."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from server.common.errors import ConditionFailed, CurrentRunConflict, ShardOwnershipLost
from server.persistence.interface import Persistence, ShardRecord
from server.persistence.sql.tx import Tx
from server.persistence.sqlite.db import SqliteDatabase, open_sqlite

from .helpers import acquire_shard, new_run


@pytest.fixture
async def filedb(tmp_path: Path) -> AsyncIterator[tuple[Path, SqliteDatabase]]:
    path = tmp_path / "g.db"
    _p, db = open_sqlite(str(path))
    await db.run(_create_table)
    try:
        yield path, db
    finally:
        await db.close()


async def _create_table(tx: Tx) -> None:
    await tx.execute("CREATE TABLE kv (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")


def _insert(k: int, v: str = "x") -> Any:
    async def op(tx: Tx) -> int:
        return await tx.execute("INSERT INTO kv (k, v) VALUES (?, ?)", k, v)

    return op


async def test_concurrent_writers_all_durable_and_visible(filedb: tuple[Path, SqliteDatabase]) -> None:
    path, db = filedb
    before = db.batches
    results = await asyncio.gather(*(db.run(_insert(i)) for i in range(200)))
    assert results == [1] * 200
    # Fewer commits than transactions: they were grouped.
    assert db.batches - before < 200
    # Visible to the read connection as soon as the writes were acknowledged ...
    rows = await db.fetch("SELECT count(*) FROM kv")
    assert rows[0][0] == 200
    # ... and committed in the file (seen by an independent connection).
    other = sqlite3.connect(str(path))
    try:
        assert other.execute("SELECT count(*) FROM kv").fetchone()[0] == 200
    finally:
        other.close()


async def test_read_your_writes_after_each_await(filedb: tuple[Path, SqliteDatabase]) -> None:
    _path, db = filedb

    async def writer(i: int) -> None:
        await db.run(_insert(i, f"v{i}"))
        rows = await db.fetch("SELECT v FROM kv WHERE k = ?", i)
        assert rows == [(f"v{i}",)]

    await asyncio.gather(*(writer(i) for i in range(100)))


async def test_failing_transaction_in_batch_does_not_affect_others(filedb: tuple[Path, SqliteDatabase]) -> None:
    _path, db = filedb

    async def boom(tx: Tx) -> None:
        await tx.execute("INSERT INTO kv (k, v) VALUES (?, ?)", 1000, "partial")
        raise ValueError("boom")

    ops: list[Any] = []
    for i in range(50):
        ops.append(db.run(_insert(i)))
        if i % 10 == 5:
            ops.append(db.run(boom))
            ops.append(db.run(_insert(i)))  # duplicate key -> IntegrityError -> ConditionFailed
    results = await asyncio.gather(*ops, return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert sum(isinstance(e, ValueError) for e in errors) == 5
    assert sum(isinstance(e, ConditionFailed) for e in errors) == 5
    assert len(errors) == 10
    assert (await db.fetch("SELECT count(*) FROM kv"))[0][0] == 50
    # The failed body's partial write was rolled back to its savepoint.
    assert await db.fetch("SELECT v FROM kv WHERE k = 1000") == []


async def test_commit_failure_fails_every_caller_in_batch(
    filedb: tuple[Path, SqliteDatabase], monkeypatch: pytest.MonkeyPatch
) -> None:
    _path, db = filedb
    real_conn = db.conn

    class FailingCommit:
        def __getattr__(self, name: str) -> Any:
            return getattr(real_conn, name)

        def execute(self, sql: str, *args: Any) -> Any:
            if sql == "COMMIT":
                real_conn.execute("ROLLBACK")
                raise sqlite3.OperationalError("disk I/O error")
            return real_conn.execute(sql, *args)

    monkeypatch.setattr(db, "conn", FailingCommit())
    results = await asyncio.gather(*(db.run(_insert(i)) for i in range(20)), return_exceptions=True)
    assert all(isinstance(r, sqlite3.OperationalError) for r in results), results
    monkeypatch.setattr(db, "conn", real_conn)
    assert (await db.fetch("SELECT count(*) FROM kv"))[0][0] == 0
    # The connection is usable again afterwards.
    assert await db.run(_insert(1)) == 1
    assert (await db.fetch("SELECT count(*) FROM kv"))[0][0] == 1


async def test_fencing_failures_under_batching(open_store: Any) -> None:
    store: Persistence = await open_store("sqlite-file")
    try:
        rid = await acquire_shard(store)
        await store.executions.create_workflow_execution(1, rid, new_run("wf", "r1"))
        # Another owner steals the shard; in the same burst stale-owner writes and current-owner writes race.
        await store.shards.update_shard(ShardRecord(1, rid + 1, b""), rid)
        stale = [
            store.executions.create_workflow_execution(1, rid, new_run(f"stale{i}", "r1")) for i in range(10)
        ]
        fresh = [
            store.executions.create_workflow_execution(1, rid + 1, new_run(f"fresh{i}", "r1")) for i in range(10)
        ]
        dup = [store.executions.create_workflow_execution(1, rid + 1, new_run("fresh0", "r1", request_id="other"))]
        results = await asyncio.gather(*stale, *fresh, *dup, return_exceptions=True)
        assert all(isinstance(r, ShardOwnershipLost) for r in results[:10]), results[:10]
        assert results[10:20] == [None] * 10
        assert isinstance(results[20], CurrentRunConflict), results[20]
        for i in range(10):
            assert await store.executions.get_current_execution(1, "ns-1", f"stale{i}") is None
            assert await store.executions.get_current_execution(1, "ns-1", f"fresh{i}") is not None
    finally:
        await store.close()
