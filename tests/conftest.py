"""Shared fixtures: the ``persistence`` fixture over both backends, and PostgreSQL database helpers.

PostgreSQL is expected on 127.0.0.1:5432, user ``postgres``, trust auth (override with DURATA_TEST_PG_URL, the
URL of a maintenance database such as ``postgresql://postgres@127.0.0.1:5432/postgres``). If it is unreachable,
the postgres-parametrized tests FAIL: they are never skipped, so a broken database setup cannot pass CI silently.

Other suites (end-to-end, cluster) create their own databases with ``make_pg_database()`` (schema applied) and
drop them with ``drop_pg_database(url)``; both work from sync and async code.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from server.persistence.factory import open_persistence
from server.persistence.interface import Persistence
from server.persistence.schema import ALL_TABLES
from server.persistence.schema_version import run_blocking, upgrade_async


def pg_admin_url() -> str:
    """URL of the maintenance database, for CREATE/DROP DATABASE."""
    return os.environ.get("DURATA_TEST_PG_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"


def pg_url(database: str) -> str:
    """URL of ``database`` on the test server."""
    return urlunsplit(urlsplit(pg_admin_url())._replace(path="/" + database))


async def make_pg_database_async(prefix: str = "durata_test", *, migrate: bool = True) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(pg_admin_url(), timeout=10)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = pg_url(name)
    if migrate:
        await upgrade_async(url)
    return url


async def drop_pg_database_async(url: str) -> None:
    name = url.rsplit("/", 1)[-1]
    conn = await asyncpg.connect(pg_admin_url(), timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def make_pg_database(prefix: str = "durata_test", *, migrate: bool = True) -> str:
    """Create a fresh, uniquely named database (schema applied unless ``migrate=False``); returns its URL.
    Callable from sync or async code. The caller drops it with ``drop_pg_database``."""
    return run_blocking(lambda: make_pg_database_async(prefix, migrate=migrate))


def drop_pg_database(url: str) -> None:
    run_blocking(lambda: drop_pg_database_async(url))


async def truncate_pg(url: str) -> None:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        await conn.execute(f"TRUNCATE {', '.join(ALL_TABLES)}")
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    """One migrated database for the whole session (tables are truncated before each test)."""
    url = make_pg_database()
    yield url
    drop_pg_database(url)


async def open_backend(kind: str, request: pytest.FixtureRequest) -> Persistence:
    """A clean store: "sqlite" (in memory), "sqlite-file" (in tmp_path, worker-thread mode) or "postgres"
    (the session database, truncated)."""
    if kind == "sqlite":
        return await open_persistence("sqlite://", create_schema=True)
    if kind == "sqlite-file":
        tmp_path = request.getfixturevalue("tmp_path")
        return await open_persistence(f"sqlite:///{tmp_path / 'durata.db'}", create_schema=True)
    if kind == "postgres":
        url = request.getfixturevalue("pg_database_url")
        await truncate_pg(url)
        return await open_persistence(url)
    raise ValueError(kind)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def persistence(request: pytest.FixtureRequest) -> AsyncIterator[Persistence]:
    store = await open_backend(request.param, request)
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
def open_store(request: pytest.FixtureRequest) -> Callable[[str], Awaitable[Persistence]]:
    """For tests choosing their own backends: ``p = await open_store("sqlite-file")``; the caller closes it."""

    async def opener(kind: str) -> Persistence:
        return await open_backend(kind, request)

    return opener


@pytest.fixture
def fresh_pg_database() -> Iterator[str]:
    """URL of a brand-new, empty (unmigrated) PostgreSQL database, dropped after the test."""
    url = make_pg_database("durata_fresh", migrate=False)
    yield url
    drop_pg_database(url)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when any server process let an exception reach the last-resort guard (see server_guard)."""
    import server_guard

    if server_guard.FINDINGS:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        lines = ["RPCs ended in the last-resort guard (unhandled exceptions):", *server_guard.FINDINGS]
        if reporter is not None:
            reporter.write_line("\n".join(lines), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
