"""Alembic environment shared by SQLite and PostgreSQL.

Where the database comes from, in order: ``config.attributes['connection']`` (a SQLAlchemy Connection handed over
by ``server.persistence.schema_version``, e.g. for an in-memory SQLite database the server keeps using),
``-x url=...`` on the command line, ``sqlalchemy.url`` in the config, then ``$DURATA_DB_URL``. Offline mode
(``--sql``) renders the DDL as text; schema_version uses that for PostgreSQL so no sync driver is needed.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine, pool

from server.persistence.schema import metadata

config = context.config
target_metadata = metadata


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    url = url or os.environ.get("DURATA_DB_URL", "")
    if not url:
        raise RuntimeError("no database URL: pass `-x url=...` or set DURATA_DB_URL")
    return url


def run_migrations_offline() -> None:
    context.configure(
        url=_url(), target_metadata=target_metadata, literal_binds=True, transaction_per_migration=False
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
