"""SQLite persistence: one writer connection with group commit, one reader connection.

File databases use WAL with synchronous=FULL (every acknowledged commit survives power loss).

Writes (``run``) go to one dedicated writer thread, which drains every transaction queued so far and runs the
whole batch inside ONE outer transaction, each caller's transaction inside its own SAVEPOINT, then issues one
COMMIT (one fsync) for the batch. A transaction whose body raises is rolled back to its savepoint and only its
caller gets the exception; every caller's future resolves only after the COMMIT succeeded, so nothing is
acknowledged before it is durable. If the COMMIT fails (or SQLite aborts the outer transaction), every
caller in the batch gets the error. Transactions in a batch run one after another in submission order, each
seeing the writes of those before it — exactly the serial order, just fewer fsyncs. Results go back to the
event loop with one hand-off per batch.

Single-statement reads (``fetch``) run on a second, read-only connection on its own thread: WAL lets it read
concurrently with the writer, so reads do not wait behind fsyncs; like writes, queued reads are drained together
and handed back with one wake-up of the event loop per batch. A caller that awaited its write reads it back,
since the write was committed before its future resolved.

In-memory databases run everything inline: there is no I/O to wait for, and a thread hop would only add
latency.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from server.common.errors import ConditionFailed
from server.persistence.sql.bundle import SqlPersistence
from server.persistence.sql.tx import Row, Tx

T = TypeVar("T")

# Upper bound on transactions per group commit, so one huge backlog does not delay the first callers' acks.
MAX_BATCH = 256

_Op = Callable[[Tx], Awaitable[Any]]
# (future, ok, result-or-exception)
_Outcome = tuple["asyncio.Future[Any]", bool, Any]


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


def _map_error(exc: BaseException) -> BaseException:
    if isinstance(exc, sqlite3.IntegrityError):
        mapped = ConditionFailed(f"conflicting write: {exc}")
        mapped.__cause__ = exc
        return mapped
    return exc


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


def connect_reader(path: str) -> sqlite3.Connection:
    """A second connection to a WAL database that only reads (reads never block on, or wait for, the writer)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute("PRAGMA query_only = ON")
    return conn


class SqliteDatabase:
    dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection, in_memory: bool, path: str | None = None) -> None:
        self.conn = conn
        self.in_memory = in_memory
        self._path = path
        self._executor = None if in_memory else ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        # Reads get their own connection and thread when we know the file to open; else they share the writer.
        self._read_executor = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-read")
            if not in_memory and path is not None
            else None
        )
        self._reader: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._pending: list[tuple[_Op, asyncio.Future[Any]]] = []
        self._draining = False  # a drain loop is queued or running on the writer thread
        self._read_lock = threading.Lock()
        self._read_pending: list[tuple[str, tuple[Any, ...], asyncio.Future[Any]]] = []
        self._read_draining = False
        self._closed = False
        self.batches = 0  # group commits issued (diagnostics/tests)

    # ------------------------------------------------------------ writes

    def _transaction(self, op: Callable[[Tx], Awaitable[T]]) -> T:
        """One transaction on its own (inline, in-memory databases)."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = _drive(op(SqliteTx(conn)))
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            mapped = _map_error(exc)
            if mapped is exc:
                raise
            raise mapped from exc
        try:
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # e.g. disk full: do not leave the connection inside a dead transaction
                conn.execute("ROLLBACK")
            raise
        return result

    def _commit_batch(self, batch: list[tuple[_Op, asyncio.Future[Any]]]) -> list[_Outcome]:
        """Run a batch as savepoints of one transaction, then COMMIT once. Runs on the writer thread."""
        conn = self.conn
        outcomes: list[_Outcome] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
        except BaseException as exc:
            return [(fut, False, exc) for _op, fut in batch]
        for op, fut in batch:
            try:
                conn.execute("SAVEPOINT tx")
            except BaseException as exc:
                return self._abort(batch, exc)
            try:
                result = _drive(op(SqliteTx(conn)))
            except BaseException as exc:
                if not conn.in_transaction:
                    # SQLite rolled back the whole outer transaction (I/O error, disk full, ...): the writes of
                    # the earlier members are gone too, so they all fail with it.
                    return self._abort(batch, exc)
                try:
                    conn.execute("ROLLBACK TO tx")
                    conn.execute("RELEASE tx")
                except BaseException as exc2:
                    return self._abort(batch, exc2)
                outcomes.append((fut, False, _map_error(exc)))
                continue
            try:
                conn.execute("RELEASE tx")
            except BaseException as exc:
                return self._abort(batch, exc)
            outcomes.append((fut, True, result))
        try:
            conn.execute("COMMIT")
        except BaseException as exc:
            return self._abort(batch, exc)
        self.batches += 1
        return outcomes

    def _abort(self, batch: list[tuple[_Op, asyncio.Future[Any]]], exc: BaseException) -> list[_Outcome]:
        conn = self.conn
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
        return [(fut, False, exc) for _op, fut in batch]

    def _drain(self) -> None:
        """Writer thread: commit batches until the queue is empty."""
        while True:
            with self._lock:
                batch = self._pending[:MAX_BATCH]
                del self._pending[:MAX_BATCH]
                if not batch:
                    self._draining = False
                    return
            try:
                outcomes = self._commit_batch(batch)
            except BaseException as exc:  # never strand a caller
                outcomes = [(fut, False, exc) for _op, fut in batch]
            _hand_back(outcomes)

    async def run(self, op: Callable[[Tx], Awaitable[T]]) -> T:
        if self._closed:
            raise RuntimeError("persistence is closed")
        if self._executor is None:
            return self._transaction(op)
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        with self._lock:
            self._pending.append((op, fut))
            start = not self._draining
            self._draining = True
        if start:
            self._executor.submit(self._drain)
        return await fut

    async def execute_one(self, sql: str, *args: Any) -> int:
        async def op(tx: Tx) -> int:
            return await tx.execute(sql, *args)

        return await self.run(op)

    # ------------------------------------------------------------ reads

    def _read(self, sql: str, args: tuple[Any, ...]) -> list[Row]:
        return self.conn.execute(sql, args).fetchall()

    def _read_other(self, sql: str, args: tuple[Any, ...]) -> list[Row]:
        reader = self._reader
        if reader is None:
            assert self._path is not None
            reader = self._reader = connect_reader(self._path)
        return reader.execute(sql, args).fetchall()

    def _drain_reads(self) -> None:
        """Reader thread: run every queued read, hand the results back once per batch."""
        while True:
            with self._read_lock:
                batch = self._read_pending
                self._read_pending = []
                if not batch:
                    self._read_draining = False
                    return
            outcomes: list[_Outcome] = []
            for sql, args, fut in batch:
                try:
                    outcomes.append((fut, True, self._read_other(sql, args)))
                except BaseException as exc:
                    outcomes.append((fut, False, exc))
            _hand_back(outcomes)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        if self._closed:
            raise RuntimeError("persistence is closed")
        if self._executor is None:
            return self._read(sql, args)
        if self._read_executor is None:
            return await asyncio.get_running_loop().run_in_executor(self._executor, self._read, sql, args)
        fut: asyncio.Future[list[Row]] = asyncio.get_running_loop().create_future()
        with self._read_lock:
            self._read_pending.append((sql, args, fut))
            start = not self._read_draining
            self._read_draining = True
        if start:
            self._read_executor.submit(self._drain_reads)
        return await fut

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        if self._read_executor is not None:
            await loop.run_in_executor(self._read_executor, self._close_reader)
            self._read_executor.shutdown(wait=True)
        if self._executor is not None:
            # Queued transactions finish first (the drain loop runs before this), then the connection closes on
            # the same thread.
            await loop.run_in_executor(self._executor, self.conn.close)
            self._executor.shutdown(wait=True)
        else:
            self.conn.close()

    def _close_reader(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None


def _hand_back(outcomes: list[_Outcome]) -> None:
    """From a database thread: resolve the callers' futures, one event-loop wake-up per loop per batch."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = defaultdict(list)
    for outcome in outcomes:
        by_loop[outcome[0].get_loop()].append(outcome)
    for loop, items in by_loop.items():
        try:
            loop.call_soon_threadsafe(_deliver, items)
        except RuntimeError:  # that loop is closed: nobody is waiting any more
            pass


def _deliver(outcomes: list[_Outcome]) -> None:
    for fut, ok, value in outcomes:
        if fut.done():  # the caller was cancelled; its transaction still committed (as before)
            continue
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)


def open_sqlite(path: str | None) -> tuple[SqlPersistence, SqliteDatabase]:
    """Open (not migrate) a SQLite database; ``path=None`` means a private in-memory database."""
    db = SqliteDatabase(connect(path), in_memory=path is None, path=path)
    return SqlPersistence(db), db
