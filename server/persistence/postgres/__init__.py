"""PostgreSQL backend (asyncpg): the clustered deployment."""

from server.persistence.postgres.db import PostgresDatabase, open_postgres

__all__ = ["PostgresDatabase", "open_postgres"]
