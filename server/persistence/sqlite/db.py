"""One sqlite3 connection, one writer: every transaction runs start-to-finish without interleaving.

File databases use WAL with synchronous=FULL (every acknowledged commit survives power loss) and run each
transaction on a single dedicated worker thread, so disk waits never block the event loop. In-memory databases
run transactions inline: there is no I/O to wait for, and a thread hop would only add latency.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from server.common.errors import ConditionFailed
from server.persistence.sql.bundle import SqlPersistence
from server.persistence.sql.tx import Row, Tx

T = TypeVar("T")


class SqliteTx:
    """A Tx whose methods never suspend, so a transaction coroutine can be driven synchronously."""

    dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def fetchone(self, sql: str, *args: Any) -> Row | None:
        # fetchall, not fetchone: a half-read statement (e.g. UPDATE ... RETURNING) must not stay open.
        rows = self._conn.execute(sql, args).fetchall()
        return rows[0] if rows else None

    async def fetchall(self, sql: str, *args: Any) -> list[Row]:
        return self._conn.execute(sql, args).fetchall()

    async def execute(self, sql: str, *args: Any) -> int:
        cur = self._conn.execute(sql, args)
        if cur.description is not None:  # e.g. RETURNING: rows must be consumed for the statement to finish
            cur.fetchall()
        return cur.rowcount

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._conn.executemany(sql, rows)


def _drive(awaitable: Awaitable[T]) -> T:
    """Run an awaitable that never suspends to completion, synchronously."""
    steps = awaitable.__await__()
    try:
        next(steps)
    except StopIteration as done:
        result: T = done.value
        return result
    close = getattr(steps, "close", None)
    if close is not None:
        close()
    raise RuntimeError("a SQLite transaction awaited something other than the database")


def connect(path: str | None) -> sqlite3.Connection:
    """Open a connection in autocommit mode (we issue BEGIN/COMMIT ourselves) with durable settings."""
    conn = sqlite3.connect(path or ":memory:", isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA foreign_keys = OFF")
    if path is not None:
        conn.execute("PRAGMA busy_timeout = 5000")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()
        if mode is None or str(mode[0]).lower() != "wal":
            raise RuntimeError(f"could not enable WAL on SQLite database {path}")
        conn.execute("PRAGMA synchronous = FULL")
    return conn


class SqliteDatabase:
    def __init__(self, conn: sqlite3.Connection, in_memory: bool) -> None:
        self.conn = conn
        self.in_memory = in_memory
        self._executor = None if in_memory else ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._closed = False

    def _transaction(self, op: Callable[[Tx], Awaitable[T]]) -> T:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = _drive(op(SqliteTx(conn)))
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.IntegrityError):
                raise ConditionFailed(f"conflicting write: {exc}") from exc
            raise
        try:
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # e.g. disk full: do not leave the connection inside a dead transaction
                conn.execute("ROLLBACK")
            raise
        return result

    async def run(self, op: Callable[[Tx], Awaitable[T]]) -> T:
        if self._closed:
            raise RuntimeError("persistence is closed")
        if self._executor is None:
            return self._transaction(op)
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._transaction, op)

    def _read(self, sql: str, args: tuple[Any, ...]) -> list[Row]:
        return self.conn.execute(sql, args).fetchall()

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        if self._closed:
            raise RuntimeError("persistence is closed")
        if self._executor is None:
            return self._read(sql, args)
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._read, sql, args)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._executor is not None:
            # Queued transactions finish first (shutdown waits), then the connection closes on the same thread.
            await asyncio.get_running_loop().run_in_executor(self._executor, self.conn.close)
            self._executor.shutdown(wait=True)
        else:
            self.conn.close()


def open_sqlite(path: str | None) -> tuple[SqlPersistence, SqliteDatabase]:
    """Open (not migrate) a SQLite database; ``path=None`` means a private in-memory database."""
    db = SqliteDatabase(connect(path), in_memory=path is None)
    return SqlPersistence(db), db
