"""Database URLs accepted by the server, parsed once so every entry point agrees on their meaning."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class DbUrl:
    kind: str  # "sqlite" or "postgresql"
    # SQLite: file path, or None for a private in-memory database.
    path: str | None = None
    # PostgreSQL: the DSN asyncpg understands (postgresql://user@host:port/db).
    dsn: str = ""

    @property
    def in_memory(self) -> bool:
        return self.kind == "sqlite" and self.path is None


def parse_db_url(url: str) -> DbUrl:
    """``sqlite://`` / ``sqlite:///:memory:`` (memory), ``sqlite:////abs.db``, ``sqlite:///rel.db``,
    ``postgresql://user@host:port/db`` (``postgres://`` and ``postgresql+asyncpg://`` are accepted too)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a database URL: {url!r} (expected sqlite:///path.db or postgresql://...)")
    scheme = scheme.lower()
    if scheme in ("sqlite", "sqlite+pysqlite"):
        if rest in ("", "/", "/:memory:"):
            return DbUrl("sqlite")
        if not rest.startswith("/"):
            raise ValueError(f"bad SQLite URL {url!r}: use sqlite:///relative.db or sqlite:////absolute.db")
        path = rest[1:].split("?", 1)[0]
        return DbUrl("sqlite", path=path) if path != ":memory:" else DbUrl("sqlite")
    if scheme in ("postgresql", "postgres", "postgresql+asyncpg", "postgresql+psycopg2"):
        parts = urlsplit(url)
        if not parts.path.strip("/"):
            raise ValueError(f"PostgreSQL URL {url!r} names no database")
        return DbUrl("postgresql", dsn="postgresql://" + rest)
    raise ValueError(f"unsupported database URL scheme {scheme!r} in {url!r}")
