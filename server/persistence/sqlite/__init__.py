"""SQLite backend (stdlib sqlite3): start-dev and single-process deployments."""

from server.persistence.sqlite.db import SqliteDatabase, open_sqlite

__all__ = ["SqliteDatabase", "open_sqlite"]
