"""The ``durata`` command line: ``server start-dev``, ``server start``, ``schema upgrade|version``,
``admin cluster describe``.

Flags win over ``DURATA_*`` environment variables, which win over the ``--config`` TOML file (keys documented in
``server/config.py``), which wins over defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
from collections.abc import Coroutine, Sequence
from typing import Any

from server.config import ROLES, ConfigError, ServerConfig, load_config
from server.logging import LOG_FORMATS, LOG_LEVELS, configure_logging


def _add_common_server_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="TOML config file (see server/config.py for the keys)")
    p.add_argument("--ip", help="address the gRPC servers listen on")
    p.add_argument("--metrics-port", type=int, help="Prometheus /metrics port (0 = off)")
    p.add_argument("--metrics-host", help="address of the /metrics endpoint")
    p.add_argument("--log-level", choices=LOG_LEVELS, help="log level")
    p.add_argument("--log-format", choices=LOG_FORMATS, help="json (one object per line) or console")
    p.add_argument("--num-history-shards", type=int, help="shard count when the cluster is created")
    p.add_argument("--namespace", dest="namespaces", action="append", metavar="NAME",
                   help="namespace to create at start (repeatable; 'default' is always created)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config key, e.g. --set internal_worker.retention_interval_seconds=5")
    p.add_argument("--no-uvloop", action="store_true", help="use the default asyncio event loop")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="durata", description="Durata: a Temporal-compatible server")
    sub = parser.add_subparsers(dest="group", required=True)

    server = sub.add_parser("server", help="run the server")
    server_sub = server.add_subparsers(dest="command", required=True)

    dev = server_sub.add_parser("start-dev", help="all services in one process on SQLite")
    _add_common_server_flags(dev)
    dev.add_argument("--port", type=int, help="public gRPC port (default 7233)")
    dev.add_argument("--db-filename", metavar="FILE", help="SQLite file (default: in memory, lost at exit)")
    dev.add_argument("--search-attribute", dest="search_attributes", action="append", default=[],
                     metavar="NAME=TYPE", help="custom search attribute to register in the start-up namespaces "
                     "(repeatable; TYPE: Keyword, Text, Int, Double, Bool, Datetime, KeywordList)")

    start = server_sub.add_parser("start", help="selected services on PostgreSQL (one role per process or several)")
    _add_common_server_flags(start)
    start.add_argument("--services", "--service", dest="services", metavar="LIST",
                       help=f"comma-separated roles: {','.join(ROLES)} (default: all)")
    start.add_argument("--db", dest="db_url", metavar="URL", help="database URL (or DURATA_DB_URL)")
    for role in ("frontend", "history", "matching"):
        start.add_argument(f"--{role}-port", type=int, help=f"port the {role} role listens on")
        start.add_argument(f"--{role}-address", metavar="HOST:PORT", help=f"where other processes reach {role}")

    admin = sub.add_parser("admin", help="operate a running cluster")
    admin_sub = admin.add_subparsers(dest="command", required=True)
    cluster = admin_sub.add_parser("cluster", help="cluster membership and ownership")
    cluster_sub = cluster.add_subparsers(dest="action", required=True)
    describe = cluster_sub.add_parser("describe", help="members, roles, shard -> owner, partition -> owner")
    describe.add_argument("--db", dest="db_url", metavar="URL", help="database URL (or DURATA_DB_URL)")
    describe.add_argument("--config", metavar="FILE", help="TOML config file with db_url")
    describe.add_argument("--json", action="store_true", help="machine-readable output")

    schema = sub.add_parser("schema", help="database schema management")
    schema_sub = schema.add_subparsers(dest="command", required=True)
    for name, help_text in (("upgrade", "create or upgrade the schema to this build's version"),
                            ("version", "print the schema version of the database and of this build")):
        p = schema_sub.add_parser(name, help=help_text)
        p.add_argument("--db", dest="db_url", metavar="URL", help="database URL (or DURATA_DB_URL)")
        p.add_argument("--config", metavar="FILE", help="TOML config file with db_url")
    return parser


def _server_config(args: argparse.Namespace, dev: bool) -> ServerConfig:
    base = ServerConfig()
    if dev:
        base.dev_mode = True
        base.log_format = "console"
        base.log_level = "warning"
        base.metrics_port = 9090
        base.metrics_best_effort = True
    flags: dict[str, Any] = {
        "ip": args.ip,
        "metrics_port": args.metrics_port,
        "metrics_host": args.metrics_host,
        "log_level": args.log_level,
        "log_format": args.log_format,
        "num_history_shards": args.num_history_shards,
    }
    if args.metrics_port is not None:
        base.metrics_best_effort = False
    if dev:
        flags["frontend_port"] = args.port
        db = "sqlite://" if not args.db_filename else f"sqlite:///{os.path.abspath(args.db_filename)}"
        flags["services"] = list(ROLES)
    else:
        flags["services"] = args.services
        flags["db_url"] = args.db_url
        for role in ("frontend", "history", "matching"):
            flags[f"{role}_port"] = getattr(args, f"{role}_port")
            flags[f"{role}_address"] = getattr(args, f"{role}_address")
    cfg = load_config(config_file=args.config, flags=flags, overrides=args.overrides, base=base)
    if dev:
        cfg.db_url = db  # start-dev is SQLite by definition; only --db-filename chooses the file
        cfg.dev_mode = True
        cfg.services = list(ROLES)
        cfg.search_attributes = [*cfg.search_attributes, *args.search_attributes]
    extra = args.namespaces or []
    cfg.namespaces = list(dict.fromkeys(["default", *cfg.namespaces, *extra]))
    return cfg


def _tune_gc() -> None:
    """A server allocates many short-lived objects per request (protobuf messages, futures) and holds a large,
    long-lived heap (caches): with CPython's default gen-0 threshold of 700 the collector runs thousands of
    times a second, mostly re-walking the same survivors. DURATA_GC_THRESHOLD=700 restores the default."""
    threshold = int(os.environ.get("DURATA_GC_THRESHOLD", "50000"))
    gc.set_threshold(threshold, 20, 50)


def _run(coro: Coroutine[Any, Any, int], use_uvloop: bool) -> int:
    _tune_gc()
    if use_uvloop and not os.environ.get("DURATA_NO_UVLOOP"):
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.run(coro)
    return asyncio.run(coro)


def _schema_db_url(args: argparse.Namespace) -> str:
    cfg = load_config(config_file=args.config, flags={"db_url": args.db_url})
    if not cfg.db_url:
        raise ConfigError("no database: pass --db URL, set DURATA_DB_URL, or set db_url in the config file")
    return cfg.db_url


async def _schema_command(command: str, db_url: str) -> int:
    from server.persistence.schema_version import (
        SchemaVersionError,
        current_version_async,
        head_version,
        upgrade_async,
    )

    head = head_version()
    try:
        if command == "upgrade":
            before = await current_version_async(db_url)
            await upgrade_async(db_url)
            after = await current_version_async(db_url)
            if before == after:
                print(f"schema already at version {after}")
            else:
                print(f"schema upgraded from {before or 'empty'} to {after}")
            return 0
        current = await current_version_async(db_url)
    except SchemaVersionError as err:
        print(f"durata: {err}", file=sys.stderr)
        return 1
    print(f"database schema version: {current or 'none (empty database)'}")
    print(f"this build's schema version: {head}")
    if current != head:
        print(f"run: durata schema upgrade --db '{db_url}'")
        return 1
    return 0


async def _admin_describe(args: argparse.Namespace) -> int:
    from server.cluster.describe import describe_cluster
    from server.persistence.factory import open_persistence
    from server.persistence.schema_version import SchemaVersionError

    cfg = load_config(config_file=args.config, flags={"db_url": args.db_url})
    if not cfg.db_url:
        raise ConfigError("no database: pass --db URL, set DURATA_DB_URL, or set db_url in the config file")
    try:
        persistence = await open_persistence(cfg.db_url)
    except SchemaVersionError as err:
        print(f"durata: {err}", file=sys.stderr)
        return 1
    try:
        view = await describe_cluster(persistence, cfg.membership_expiry_seconds)
    finally:
        await persistence.close()
    print(view.to_json() if args.json else view.to_text())
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.group == "admin":
            configure_logging("warning", "console")
            sys.exit(_run(_admin_describe(args), use_uvloop=False))
        if args.group == "schema":
            configure_logging("warning", "console")
            sys.exit(_run(_schema_command(args.command, _schema_db_url(args)), use_uvloop=False))
        cfg = _server_config(args, dev=args.command == "start-dev")
        cfg.validate()
        configure_logging(cfg.log_level, cfg.log_format)
    except ConfigError as err:
        print(f"durata: {err}", file=sys.stderr)
        sys.exit(2)
    from server.app import run

    try:
        code = _run(run(cfg), use_uvloop=not args.no_uvloop)
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)
