"""Schema versioning, migrations vs. schema.py, URL handling and SQLite file durability."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine
from sqlalchemy.pool import StaticPool

from server.persistence.factory import open_persistence
from server.persistence.interface import NamespaceRecord
from server.persistence.schema import metadata
from server.persistence.schema_version import (
    SchemaVersionError,
    check_schema_async,
    current_version_async,
    head_version,
    upgrade_async,
    upgrade_sqlite_connection,
)
from server.persistence.urls import parse_db_url


def test_parse_db_url() -> None:
    assert parse_db_url("sqlite://").in_memory
    assert parse_db_url("sqlite:///:memory:").in_memory
    assert parse_db_url("sqlite:////abs/x.db").path == "/abs/x.db"
    assert parse_db_url("sqlite:///rel.db").path == "rel.db"
    pg = parse_db_url("postgresql://u@h:5/db")
    assert (pg.kind, pg.dsn) == ("postgresql", "postgresql://u@h:5/db")
    assert parse_db_url("postgres://u@h/db").dsn == "postgresql://u@h/db"
    for bad in ("mysql://x/y", "nonsense", "postgresql://host"):
        with pytest.raises(ValueError):
            parse_db_url(bad)


def test_migrations_match_schema_py() -> None:
    """Autogenerate finds nothing to do: the migrations build exactly the schema defined in schema.py."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    upgrade_sqlite_connection(conn)
    engine = create_engine("sqlite://", creator=lambda: conn, poolclass=StaticPool)
    with engine.connect() as sa_conn:
        diff = compare_metadata(MigrationContext.configure(sa_conn), metadata)
    assert diff == []


async def test_sqlite_file_version_check(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'durata.db'}"
    assert await current_version_async(url) is None
    with pytest.raises(SchemaVersionError, match="not initialized.*durata schema upgrade --db"):
        await open_persistence(url)
    assert not (tmp_path / "durata.db").exists() or await current_version_async(url) is None

    await upgrade_async(url)
    assert await current_version_async(url) == head_version()
    await upgrade_async(url)  # idempotent
    await check_schema_async(url)

    conn = sqlite3.connect(tmp_path / "durata.db")
    conn.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    conn.commit()
    conn.close()
    with pytest.raises(SchemaVersionError) as err:
        await open_persistence(url)
    message = str(err.value)
    assert "9999_from_the_future" in message and head_version() in message
    assert f"durata schema upgrade --db {url}" in message


async def test_sqlite_file_is_durable_and_reopens(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'd.db'}"
    p = await open_persistence(url, create_schema=True)
    conn = p.db.conn  # type: ignore[attr-defined]
    assert (
        conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    )  # FULL: a commit is on disk when acknowledged
    await p.namespaces.create_namespace(NamespaceRecord("id", "default", b"d"))
    await p.close()
    conn = sqlite3.connect(tmp_path / "d.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    p = await open_persistence(url)  # no create_schema: the version check passes
    try:
        got = await p.namespaces.get_namespace_by_name("default")
        assert got is not None and got.data == b"d"
    finally:
        await p.close()


@pytest.mark.postgres
async def test_postgres_version_check(pg_database_url: str, fresh_pg_database: str) -> None:
    assert await current_version_async(pg_database_url) == head_version()
    await check_schema_async(pg_database_url)
    await upgrade_async(pg_database_url)  # idempotent

    fresh = fresh_pg_database
    assert await current_version_async(fresh) is None
    with pytest.raises(SchemaVersionError, match="not initialized"):
        await open_persistence(fresh)
    p = await open_persistence(fresh, create_schema=True)
    await p.close()
    assert await current_version_async(fresh) == head_version()
    conn = await asyncpg.connect(fresh)
    await conn.execute("UPDATE alembic_version SET version_num = '0000_unknown'")
    await conn.close()
    with pytest.raises(SchemaVersionError, match=r"0000_unknown.*durata schema upgrade --db"):
        await open_persistence(fresh)
    with pytest.raises(SchemaVersionError, match="0000_unknown"):
        await upgrade_async(fresh)  # an unknown version is never "upgraded" over


@pytest.mark.postgres
async def test_concurrent_postgres_upgrades_serialize(fresh_pg_database: str) -> None:
    """Several processes starting at once (cluster, docker-compose) may all run the upgrade."""
    await asyncio.gather(*[upgrade_async(fresh_pg_database) for _ in range(4)])
    assert await current_version_async(fresh_pg_database) == head_version()
