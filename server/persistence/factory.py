"""Open the configured persistence backend from a database URL."""

from __future__ import annotations

import asyncio

from server.persistence.interface import Persistence
from server.persistence.schema_version import (
    check_schema_async,
    sqlite_connection_version,
    upgrade_async,
    upgrade_sqlite_connection,
    verify_version,
)
from server.persistence.urls import parse_db_url


async def open_persistence(url: str, *, create_schema: bool = False, pool_max_size: int = 20) -> Persistence:
    """``create_schema=True`` (start-dev) migrates to head first; otherwise a database that is not exactly at
    head is refused with SchemaVersionError naming the upgrade command. An in-memory SQLite database is always
    created fresh (nothing else can reach it). ``pool_max_size`` bounds a PostgreSQL process's connections."""
    db_url = parse_db_url(url)
    if db_url.kind == "sqlite":
        from server.persistence.sqlite import open_sqlite

        if not create_schema and not db_url.in_memory:
            await check_schema_async(url)  # before opening, so a refused start does not create the file
        if db_url.in_memory:
            persistence, db = open_sqlite(None)
        else:
            persistence, db = await asyncio.to_thread(open_sqlite, db_url.path)
        try:
            if db_url.in_memory:
                upgrade_sqlite_connection(db.conn)
            elif create_schema:
                await asyncio.to_thread(upgrade_sqlite_connection, db.conn, url)
            verify_version(sqlite_connection_version(db.conn), url)
        except BaseException:
            await persistence.close()
            raise
        return persistence

    from server.persistence.postgres import open_postgres

    if create_schema:
        await upgrade_async(url)
    else:
        await check_schema_async(url)
    return await open_postgres(db_url.dsn, min_size=min(2, pool_max_size), max_size=pool_max_size)
