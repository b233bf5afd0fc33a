"""The tiny transaction interface the shared store logic is written against.

Store logic is written once as ``async def op(tx) -> T``. PostgreSQL runs it on an asyncpg connection inside a
transaction. SQLite runs the very same coroutine *synchronously* (its ``Tx`` methods never suspend), either
inline (in-memory) or on the one worker thread that owns the database file, so one transaction is one thread
hop rather than one hop per statement. SQL is written with ``?`` placeholders; the PostgreSQL adapter rewrites
them to ``$n``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
Row = Sequence[Any]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Tx(Protocol):
    # "sqlite" or "postgresql": used for the few spots where the SQL differs (row locks).
    dialect: str

    async def fetchone(self, sql: str, *args: Any) -> Row | None: ...

    async def fetchall(self, sql: str, *args: Any) -> list[Row]: ...

    async def execute(self, sql: str, *args: Any) -> int:
        """Returns the number of rows affected."""
        ...

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...


class Database(Protocol):
    dialect: str

    async def run(self, op: Callable[[Tx], Awaitable[T]]) -> T:
        """Run ``op`` as one transaction: committed if it returns, rolled back if it raises."""
        ...

    async def execute_one(self, sql: str, *args: Any) -> int:
        """One write statement as its own transaction (on PostgreSQL autocommitted: one round trip instead of
        BEGIN/statement/COMMIT); returns the number of rows affected."""
        ...

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        """One read-only statement, without BEGIN/COMMIT round trips (a single statement is atomic anyway)."""
        ...

    async def close(self) -> None: ...


async def fetch_one(db: Database, sql: str, *args: Any) -> Row | None:
    rows = await db.fetch(sql, *args)
    return rows[0] if rows else None


def lock_suffix(tx: Tx, mode: str = "SHARE") -> str:
    """Row lock clause: PostgreSQL needs it for fencing reads; SQLite's single writer makes it implicit."""
    return f" FOR {mode}" if tx.dialect == "postgresql" else ""


def to_micros(value: datetime) -> int:
    """Aware datetime -> integer microseconds since the epoch. Naive datetimes are taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def opt_micros(value: datetime | None) -> int | None:
    return None if value is None else to_micros(value)


def from_micros(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def opt_datetime(value: int | None) -> datetime | None:
    return None if value is None else from_micros(value)
