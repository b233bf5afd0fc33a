"""Schema versions (Alembic revisions): upgrade a database, read its version, refuse to run on a wrong one.

PostgreSQL upgrades render the migrations as SQL (Alembic offline mode) and apply them through asyncpg inside
an advisory lock, so no synchronous driver is needed and concurrent upgraders (several processes starting at
once) serialize. SQLite upgrades run Alembic online through the stdlib driver; an in-memory database is
migrated on the very connection the server keeps using (``upgrade_sqlite_connection``).
"""

from __future__ import annotations

import asyncio
import io
import os
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import asyncpg
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine
from sqlalchemy.pool import StaticPool

from server.persistence.urls import parse_db_url

T = TypeVar("T")

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
# Serializes concurrent PostgreSQL upgraders (pg_advisory_lock key; arbitrary but fixed).
_PG_LOCK_KEY = 0x64757261  # "dura"
# Alembic keeps global state while a command runs: one command at a time per process.
_alembic_lock = threading.Lock()


class SchemaVersionError(RuntimeError):
    """The database schema is missing or at a version this server cannot run on."""


def alembic_config(url: str | None = None, output: io.StringIO | None = None) -> Config:
    cfg = Config(output_buffer=output) if output is not None else Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_version() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migrations found"
    return head


def _known_versions() -> set[str]:
    return {s.revision for s in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


def _fix_command(url: str) -> str:
    return f"run `durata schema upgrade --db {url}`"


def verify_version(current: str | None, url: str) -> None:
    """Raise SchemaVersionError unless ``current`` is the head revision."""
    head = head_version()
    if current == head:
        return
    if current is None:
        raise SchemaVersionError(
            f"database schema is not initialized, this server needs {head}; {_fix_command(url)}"
        )
    if current not in _known_versions():
        raise SchemaVersionError(
            f"database schema is at {current}, this server needs {head} and does not know version {current} "
            f"(is the server older than the database?); {_fix_command(url)} with a server that knows it"
        )
    raise SchemaVersionError(
        f"database schema is at {current}, this server needs {head}; {_fix_command(url)}"
    )


def run_blocking(factory: Callable[[], Awaitable[T]]) -> T:
    """Run async work from sync code, also when called from inside a running event loop (via a thread)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())  # type: ignore[arg-type]
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(factory())  # type: ignore[arg-type]
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = e

    thread = threading.Thread(target=target, name="durata-schema")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


# ------------------------------------------------------------------ SQLite


def sqlite_connection_version(conn: sqlite3.Connection) -> str | None:
    row = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
    ).fetchone()
    if row is None:
        return None
    version = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return None if version is None else str(version[0])


def upgrade_sqlite_connection(conn: sqlite3.Connection, url: str = "sqlite://") -> None:
    """Migrate through an existing sqlite3 connection (the only way to reach an in-memory database)."""
    current = sqlite_connection_version(conn)
    if current is not None and current not in _known_versions():
        verify_version(current, url)  # raises: a newer server wrote this database
    engine = create_engine("sqlite://", creator=lambda: conn, poolclass=StaticPool)
    cfg = alembic_config()
    with _alembic_lock, engine.begin() as sa_conn:
        cfg.attributes["connection"] = sa_conn
        command.upgrade(cfg, "head")
    # No engine.dispose(): it would close the connection the caller keeps using. SQLAlchemy may have changed
    # the driver's transaction handling; the stores manage BEGIN/COMMIT themselves.
    conn.isolation_level = None


def _sqlite_upgrade_file(path: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        upgrade_sqlite_connection(conn, f"sqlite:///{path}")
    finally:
        conn.close()


# ------------------------------------------------------------------ PostgreSQL


def render_sql(from_version: str | None, dialect_url: str = "postgresql://") -> str:
    """The DDL that takes a database from ``from_version`` (None = empty) to head, as a SQL script."""
    out = io.StringIO()
    cfg = alembic_config(dialect_url, out)
    with _alembic_lock:
        command.upgrade(cfg, f"{from_version}:head" if from_version else "head", sql=True)
    return out.getvalue()


async def _pg_version(conn: asyncpg.Connection) -> str | None:
    exists = await conn.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL")
    if not exists:
        return None
    value = await conn.fetchval("SELECT version_num FROM alembic_version LIMIT 1")
    return None if value is None else str(value)


async def _pg_upgrade(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _PG_LOCK_KEY)
        try:
            current = await _pg_version(conn)
            if current == head_version():
                return
            if current is not None and current not in _known_versions():
                verify_version(current, dsn)
            script = await asyncio.to_thread(render_sql, current)
            await conn.execute(script)  # the script carries its own BEGIN/COMMIT
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _PG_LOCK_KEY)
    finally:
        await conn.close()


async def _pg_current(dsn: str) -> str | None:
    conn = await asyncpg.connect(dsn)
    try:
        return await _pg_version(conn)
    finally:
        await conn.close()


# ------------------------------------------------------------------ public API


async def upgrade_async(url: str) -> None:
    db = parse_db_url(url)
    if db.in_memory:
        return  # an in-memory database exists only inside the server, which always creates it at head
    if db.kind == "sqlite":
        assert db.path is not None
        await asyncio.to_thread(_sqlite_upgrade_file, db.path)
    else:
        await _pg_upgrade(db.dsn)


async def current_version_async(url: str) -> str | None:
    db = parse_db_url(url)
    if db.in_memory:
        return None
    if db.kind == "postgresql":
        return await _pg_current(db.dsn)
    assert db.path is not None
    return await asyncio.to_thread(_sqlite_file_version, db.path)


async def check_schema_async(url: str) -> None:
    if parse_db_url(url).in_memory:
        return  # created fresh at head by open_persistence
    verify_version(await current_version_async(url), url)


def _sqlite_file_version(path: str) -> str | None:
    if not os.path.exists(path):  # never create the file just to look at it
        return None
    conn = sqlite3.connect(path)
    try:
        return sqlite_connection_version(conn)
    finally:
        conn.close()


def upgrade(url: str) -> None:
    """Apply all migrations up to head (idempotent). `durata schema upgrade --db URL` calls this."""
    run_blocking(lambda: upgrade_async(url))


def current_version(url: str) -> str | None:
    """The database's revision, or None if it was never initialized."""
    return run_blocking(lambda: current_version_async(url))


def check_schema(url: str) -> None:
    """Raise SchemaVersionError (with the command that fixes it) unless the database is at head."""
    run_blocking(lambda: check_schema_async(url))
