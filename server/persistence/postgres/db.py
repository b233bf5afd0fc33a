"""asyncpg pool; each store call is one transaction on one pooled connection.

Statements are the shared ``?``-style SQL renumbered to ``$n`` once (cached); asyncpg prepares and caches them
per connection, so steady-state calls skip parsing and planning.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, TypeVar

import asyncpg

from server.common.errors import ConditionFailed, InvalidArgument
from server.persistence.postgres.executions import PgExecutionStore
from server.persistence.postgres.tasks import PgTaskStore
from server.persistence.sql.bundle import SqlPersistence
from server.persistence.sql.tx import Row, Tx

T = TypeVar("T")
_PLACEHOLDER = re.compile(r"\?")


@lru_cache(maxsize=1024)
def to_pg(sql: str) -> str:
    """Rewrite ``?`` placeholders as ``$1..$n`` (our SQL never has a literal ``?``: values are always bound)."""
    counter = iter(range(1, 10_000))
    return _PLACEHOLDER.sub(lambda _m: f"${next(counter)}", sql)


def _rowcount(status: str) -> int:
    # asyncpg returns the command tag, e.g. "INSERT 0 1", "UPDATE 3", "DELETE 0".
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0


class PostgresTx:
    dialect = "postgresql"

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def fetchone(self, sql: str, *args: Any) -> Row | None:
        row: Row | None = await self._conn.fetchrow(to_pg(sql), *args)
        return row

    async def fetchall(self, sql: str, *args: Any) -> list[Row]:
        return list(await self._conn.fetch(to_pg(sql), *args))

    async def execute(self, sql: str, *args: Any) -> int:
        return _rowcount(await self._conn.execute(to_pg(sql), *args))

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._conn.executemany(to_pg(sql), rows)


@contextmanager
def _write_errors() -> Iterator[None]:
    try:
        yield
    except asyncpg.UniqueViolationError as exc:
        raise ConditionFailed(f"conflicting write: {exc}") from exc
    except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError) as exc:
        raise ConditionFailed(f"concurrent transaction conflict, retry: {exc}") from exc
    except (asyncpg.CharacterNotInRepertoireError, asyncpg.UntranslatableCharacterError) as exc:
        # PostgreSQL text cannot hold NUL characters; SQLite can. Say so instead of failing as INTERNAL.
        raise InvalidArgument(f"value cannot be stored (text must not contain NUL characters): {exc}") from exc


class PostgresDatabase:
    dialect = "postgresql"

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def run(self, op: Callable[[Tx], Awaitable[T]]) -> T:
        with _write_errors():
            async with self.pool.acquire() as conn, conn.transaction():
                return await op(PostgresTx(conn))

    async def execute_one(self, sql: str, *args: Any) -> int:
        with _write_errors():
            return _rowcount(await self.pool.execute(to_pg(sql), *args))

    async def fetchrow_native(self, sql: str, *args: Any) -> Row | None:
        """One statement in native ``$n`` syntax, autocommitted: the single-round-trip writes use this."""
        with _write_errors():
            row: Row | None = await self.pool.fetchrow(sql, *args)
            return row

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        try:
            return list(await self.pool.fetch(to_pg(sql), *args))
        except (asyncpg.CharacterNotInRepertoireError, asyncpg.UntranslatableCharacterError) as exc:
            raise InvalidArgument(
                f"value cannot be used (text must not contain NUL characters): {exc}"
            ) from exc

    async def close(self) -> None:
        await self.pool.close()


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Release hook: Durata sets no session state (no SET, LISTEN, cursors or advisory locks on pooled
    connections), so asyncpg's default reset query (RESET ALL; UNLISTEN *; ...) would be a wasted round trip on
    every release. An open transaction is still rolled back by asyncpg before this runs."""


async def open_postgres(dsn: str, *, min_size: int = 2, max_size: int = 20) -> SqlPersistence:
    """Connect a pool (schema already checked by the factory)."""
    pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, reset=_keep_session)
    assert pool is not None
    db = PostgresDatabase(pool)
    return SqlPersistence(db, executions=PgExecutionStore(db), tasks=PgTaskStore(db))
