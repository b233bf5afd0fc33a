"""Benchmark of Temporal-API servers (Durata start-dev, Durata on PostgreSQL, the real Temporal dev server)
driven by the official ``temporalio`` SDK. Run ``python -m bench --help``."""
