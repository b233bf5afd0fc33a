"""Store logic shared by the SQLite and PostgreSQL backends (they differ only in how a transaction runs)."""
