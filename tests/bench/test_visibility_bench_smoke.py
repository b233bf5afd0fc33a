"""Smoke test of ``python -m bench.visibility``: 2,000 runs on PostgreSQL, so CI proves the benchmark still
migrates a fresh database, loads it, runs every query through the store, measures writes, reports JSON and
drops its database. Skipped when PostgreSQL is not reachable (this is a harness check, not a persistence test)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def pg_admin_url() -> str:
    """The maintenance database, as tests/conftest.py finds it (DURATA_TEST_PG_URL or the local server)."""
    return os.environ.get("DURATA_TEST_PG_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"


async def _databases() -> set[str] | None:
    try:
        conn = await asyncpg.connect(pg_admin_url(), timeout=5)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return None
    try:
        return {r[0] for r in await conn.fetch("SELECT datname FROM pg_database")}
    finally:
        await conn.close()


def test_visibility_bench_runs_and_cleans_up(tmp_path: Path) -> None:
    if asyncio.run(_databases()) is None:
        pytest.skip(f"PostgreSQL not reachable at {pg_admin_url()}")
    out = tmp_path / "vis.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.visibility", "--rows", "2000", "--repetitions", "3", "--warmup", "1",
         "--writes", "40", "--write-concurrency", "4", "--pg-url", pg_admin_url(), "--json", str(out), "--quiet"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert "list: WorkflowType + ExecutionStatus" in done.stdout and "upsert_execution" in done.stdout
    report = json.loads(out.read_text())
    queries = {q["name"]: q for q in report["queries"]}
    assert len(queries) == 14
    for q in queries.values():
        assert len(q["samples_ms"]) == 3 and all(s > 0 for s in q["samples_ms"]), q["name"]
    # The store answers from the loaded fixture: every run is counted, the grouped counts add up, pages fill.
    assert queries["count: all"]["rows"] == [2000, 2000, 2000]
    assert queries["count: GROUP BY ExecutionStatus"]["rows"] == [2000, 2000, 2000]
    assert queries["list: all, newest first"]["rows"] == [100, 100, 100]
    assert 0 < max(queries["count: ExecutionStatus = Running"]["rows"]) < 2000
    assert max(queries["count: KeywordList (Tags = / IN)"]["rows"]) > 0
    writes = {w["label"]: w for w in report["writes"]}
    assert writes["sequential"]["count"] == 40 and writes["concurrent"]["count"] == 40
    assert writes["concurrent"]["rows_per_s"] > 0
    remaining = asyncio.run(_databases()) or set()
    assert report["database"].rsplit("/", 1)[-1] not in remaining
