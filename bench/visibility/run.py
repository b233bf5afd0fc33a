"""Create a fresh PostgreSQL database, migrate it with the project's migrations, load N runs, VACUUM ANALYZE,
measure the query suite and the write path, print a table (and JSON), drop the database."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import sys
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from alembic import command

from bench.report import percentile
from bench.visibility import fixture as fx
from bench.visibility.suite import TARGET_MS, Result, WriteResult, cases, measure, measure_writes, write_plan
from server.persistence.factory import open_persistence
from server.persistence.schema_version import _alembic_lock, alembic_config, upgrade_async


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.visibility", description=__doc__)
    p.add_argument("--rows", type=int, default=100_000, help="runs to load (default 100000)")
    p.add_argument("--repetitions", type=int, default=50, help="measured repetitions per query (default 50)")
    p.add_argument("--warmup", type=int, default=3, help="unmeasured repetitions per query first (default 3)")
    p.add_argument("--writes", type=int, default=2000, help="upserts per write phase (default 2000)")
    p.add_argument("--write-concurrency", type=int, default=16, help="writers in the concurrent phase")
    p.add_argument("--pg-url", default=os.environ.get("DURATA_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
                   help="maintenance database URL (CREATE/DROP DATABASE)")  # fmt: skip
    p.add_argument(
        "--revision", default="head", help="migrate only to this Alembic revision (compare designs)"
    )
    p.add_argument("--drop-index", default="", help="comma-separated indexes to drop after migrating")
    p.add_argument("--keep", action="store_true", help="keep the database (its URL is printed)")
    p.add_argument(
        "--reuse", default="", help="measure an existing, loaded database (URL); nothing is dropped"
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", default="", help="write the results as JSON to this file")
    p.add_argument("--quiet", action="store_true")
    return p.parse_args(argv)


def _url(admin: str, database: str) -> str:
    return urlunsplit(urlsplit(admin)._replace(path="/" + database))


async def _migrate(url: str, revision: str) -> None:
    if revision == "head":
        await upgrade_async(url)
        return
    out = io.StringIO()

    def render() -> str:
        with _alembic_lock:
            command.upgrade(alembic_config("postgresql://", out), revision, sql=True)
        return out.getvalue()

    script = await asyncio.to_thread(render)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(script)
    finally:
        await conn.close()


def _log(args: argparse.Namespace, text: str) -> None:
    if not args.quiet:
        print(text, file=sys.stderr, flush=True)


async def _prepare(args: argparse.Namespace, url: str, layout: fx.Layout) -> dict[str, float]:
    """Migrate, bulk-load and VACUUM ANALYZE; returns the timings of each step."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    await _migrate(url, args.revision)
    conn = await asyncpg.connect(url)
    try:
        for name in filter(None, args.drop_index.split(",")):
            await conn.execute(f"DROP INDEX {name}")
        timings["migrate_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        await fx.bulk_load(conn, layout)
        timings["load_s"] = time.perf_counter() - t0
        _log(args, f"loaded {layout.rows} runs in {timings['load_s']:.1f}s")
        t0 = time.perf_counter()
        # Fair for a fixture: a live table gets the same from autovacuum (statistics, visibility map).
        await conn.execute("VACUUM (ANALYZE) executions_visibility")
        timings["vacuum_analyze_s"] = time.perf_counter() - t0
    finally:
        await conn.close()
    return timings


async def _sizes(url: str) -> dict[str, int]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT c.relname, pg_relation_size(c.oid) FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid "
            "WHERE i.indrelid = 'executions_visibility'::regclass ORDER BY 2 DESC"
        )
        table = await conn.fetchval("SELECT pg_table_size('executions_visibility')")
    finally:
        await conn.close()
    return {"table": int(table), **{r[0]: int(r[1]) for r in rows}}


async def run(args: argparse.Namespace) -> dict[str, object]:
    layout = fx.Layout(args.rows)
    created = not args.reuse
    url = args.reuse or _url(args.pg_url, f"durata_visbench_{uuid.uuid4().hex[:10]}")
    report: dict[str, object] = {"rows": args.rows, "repetitions": args.repetitions, "database": url}
    if created:
        admin = await asyncpg.connect(args.pg_url, timeout=10)
        try:
            await admin.execute(f'CREATE DATABASE "{url.rsplit("/", 1)[-1]}"')
        finally:
            await admin.close()
    try:
        if created:
            report["prepare"] = await _prepare(args, url, layout)
        report["sizes"] = await _sizes(url)
        persistence = await open_persistence(url)
        try:
            store = persistence.visibility
            results: list[Result] = []
            for case in cases(layout):
                results.append(await measure(store, case, args.repetitions, args.warmup, args.seed))
                _log(args, f"{case.name}: p50 {results[-1].p50:.1f} ms, p99 {results[-1].p99:.1f} ms")
            report["queries"] = [asdict(r) | {"p50_ms": r.p50, "p99_ms": r.p99} for r in results]
            writes: list[WriteResult] = []
            if args.writes:
                # New runs get row numbers past the fixture; on a reused database, past any earlier run's too.
                first_new = args.rows + (uuid.uuid4().int % 10**9 * 10**4 if args.reuse else 10**7)
                plan = write_plan(layout, args.writes * 2, first_new, skip_open=0)
                half = len(plan) // 2
                writes.append(await measure_writes(store, layout, plan[:half], 1, "sequential"))
                writes.append(
                    await measure_writes(store, layout, plan[half:], args.write_concurrency, "concurrent")
                )
            report["writes"] = [
                {"label": w.label, "concurrency": w.concurrency, "count": len(w.samples_ms),
                 "p50_ms": percentile(w.samples_ms, 50), "p99_ms": percentile(w.samples_ms, 99),
                 "rows_per_s": w.rows_per_s}
                for w in writes
            ]  # fmt: skip
            _print(args, report, results, writes)
        finally:
            await persistence.close()
    finally:
        if created and not args.keep:
            admin = await asyncpg.connect(args.pg_url, timeout=10)
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[-1]}" WITH (FORCE)')
            finally:
                await admin.close()
        elif created:
            _log(args, f"kept {url}")
    return report


def _print(
    args: argparse.Namespace, report: dict[str, object], results: list[Result], writes: list[WriteResult]
) -> None:
    print(
        f"\nexecutions_visibility: {args.rows:,} runs, {args.repetitions} repetitions per query (page {100})"
    )
    print(f"{'operation':<42} {'p50 ms':>8} {'p99 ms':>8} {'target':>7} {'ok':>3} {'rows (median)':>14}")
    for r in results:
        target = TARGET_MS[r.kind]
        rows = sorted(r.rows)[len(r.rows) // 2] if r.rows else 0
        ok = "yes" if r.p99 <= target else "NO"
        print(f"{r.name:<42} {r.p50:>8.2f} {r.p99:>8.2f} {target:>7.0f} {ok:>3} {rows:>14,}")
    for w in writes:
        print(f"upsert_execution, {w.label} (x{w.concurrency}, {len(w.samples_ms)}): p50 "
              f"{percentile(w.samples_ms, 50):.2f} ms, p99 {percentile(w.samples_ms, 99):.2f} ms, "
              f"{w.rows_per_s:,.0f} rows/s")  # fmt: skip
    sizes = report.get("sizes", {})
    if isinstance(sizes, dict):
        print("sizes (MB): " + ", ".join(f"{k} {v / 1e6:.1f}" for k, v in sizes.items()))


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    report = asyncio.run(run(args))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str))
    return 0
