"""The two ways the e2e tests run Durata: ``start-dev`` (one process, SQLite file) and a cluster (one process per
role on PostgreSQL). Both expose the public address, the database for direct SQL checks, and crash/restart."""

from __future__ import annotations

import sqlite3
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import server_guard

from e2e.harness import ServerProc, free_port, health_serving, run_cli, system_info_answers

# Retention sweeps every second and namespaces may have a retention of one second (tests only).
TEST_OVERRIDES = [
    "--set", "internal_worker.retention_interval_seconds=1",
    "--set", "frontend.min_namespace_retention=1",
]
ROLE_ORDER = ("history", "matching", "frontend", "internal_worker")


@dataclass
class Deployment:
    kind: str
    workdir: Path
    address: str = ""
    db_url: str = ""
    procs: dict[str, ServerProc] = field(default_factory=dict)
    metrics_ports: dict[str, int] = field(default_factory=dict)
    extra_args: list[str] = field(default_factory=list)

    def start(self) -> None:
        raise NotImplementedError

    def _launch(self, name: str, args: list[str], env: dict[str, str] | None = None) -> ServerProc:
        log_path = self.workdir / f"{name}-{len(list(self.workdir.glob(name + '*.log')))}.log"
        proc = ServerProc(name, args, log_path, env=dict(env or {}))
        proc.start()
        self.procs[name] = proc
        return proc

    def stop(self) -> dict[str, int | None]:
        """Graceful SIGTERM of every process (reverse start order); returns their exit codes."""
        codes = {}
        for name in reversed(list(self.procs)):
            if name in self.metrics_ports and self.procs[name].alive():
                server_guard.scrape(name, self.metrics_ports[name])
            codes[name] = self.procs[name].terminate()
        return codes

    def kill(self, roles: list[str] | None = None) -> None:
        for name, proc in self.procs.items():
            if roles is None or name in roles:
                proc.kill()

    def restart(self, roles: list[str] | None = None) -> None:
        raise NotImplementedError

    def metrics_text(self, role: str = "frontend") -> str:
        port = self.metrics_ports[role]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            return resp.read().decode()

    def logs(self, role: str = "frontend") -> str:
        return self.procs[role].stderr()

    def log_tails(self) -> str:
        return "\n".join(p.log_tail(30) for p in self.procs.values())

    # Direct database access, for checks the API cannot make (rows really gone).
    def count_rows(self, table: str, **where: Any) -> int:
        cond = " AND ".join(f"{k} = %s" for k in where) or "TRUE"
        if self.db_url.startswith("sqlite"):
            path = self.db_url.split("sqlite:///", 1)[1]
            conn = sqlite3.connect(path, timeout=10)
            try:
                row = conn.execute(f"SELECT COUNT(*) FROM {table} WHERE {cond.replace('%s', '?')}",
                                   tuple(where.values())).fetchone()
                return int(row[0])
            finally:
                conn.close()
        import psycopg2

        conn = psycopg2.connect(self.db_url)
        try:
            with conn.cursor() as cur:
                cur.execute(f"SELECT COUNT(*) FROM {table} WHERE {cond}", tuple(where.values()))
                return int(cur.fetchone()[0])
        finally:
            conn.close()


@dataclass
class DevDeployment(Deployment):
    """``durata server start-dev`` on a SQLite file."""

    port: int = 0

    def start(self) -> None:
        self.port = self.port or free_port()
        self.metrics_ports["frontend"] = self.metrics_ports.get("frontend") or free_port()
        db_file = self.workdir / "durata.db"
        self.db_url = f"sqlite:///{db_file}"
        self.address = f"127.0.0.1:{self.port}"
        args = [
            "server", "start-dev", "--ip", "127.0.0.1", "--port", str(self.port), "--db-filename", str(db_file),
            "--metrics-port", str(self.metrics_ports["frontend"]), "--log-format", "json", "--log-level", "info",
            *TEST_OVERRIDES, *self.extra_args,
        ]
        self._launch("frontend", args).wait_ready(lambda: system_info_answers(self.address))

    def restart(self, roles: list[str] | None = None) -> None:
        self.start()


@dataclass
class ClusterDeployment(Deployment):
    """One ``durata server start --services <role>`` process per role, on PostgreSQL."""

    ports: dict[str, int] = field(default_factory=dict)

    def _common(self) -> list[str]:
        return [
            "--ip", "127.0.0.1",
            "--frontend-port", str(self.ports["frontend"]),
            "--history-port", str(self.ports["history"]),
            "--matching-port", str(self.ports["matching"]),
            "--frontend-address", f"127.0.0.1:{self.ports['frontend']}",
            "--history-address", f"127.0.0.1:{self.ports['history']}",
            "--matching-address", f"127.0.0.1:{self.ports['matching']}",
            "--log-format", "json", "--log-level", "info", *TEST_OVERRIDES, *self.extra_args,
        ]

    def start(self) -> None:
        for role in ("frontend", "history", "matching"):
            self.ports.setdefault(role, free_port())
        for role in ROLE_ORDER:
            self.metrics_ports.setdefault(role, free_port())
        self.address = f"127.0.0.1:{self.ports['frontend']}"
        done = run_cli(["schema", "upgrade", "--db", self.db_url])
        if done.returncode != 0:
            raise RuntimeError(f"schema upgrade failed:\n{done.stdout}\n{done.stderr}")
        for role in ROLE_ORDER:
            self.start_role(role)

    def start_role(self, role: str) -> None:
        """The database reaches each role a different way, to cover them all: --db for history and frontend,
        DURATA_DB_URL for matching, none at all for the internal worker (it only talks to the frontend)."""
        args = ["server", "start", "--services", role, "--metrics-port", str(self.metrics_ports[role]),
                *self._common()]
        env = {}
        if role in ("history", "frontend"):
            args += ["--db", self.db_url]
        elif role == "matching":
            env["DURATA_DB_URL"] = self.db_url
        proc = self._launch(role, args, env)
        if role == "frontend":
            proc.wait_ready(lambda: system_info_answers(self.address))
        elif role in ("history", "matching"):
            address = f"127.0.0.1:{self.ports[role]}"
            proc.wait_ready(lambda: health_serving(address))
        else:
            proc.wait_ready(lambda: "internal worker" in proc.stdout())

    def restart(self, roles: list[str] | None = None) -> None:
        for role in ROLE_ORDER:
            if (roles is None or role in roles) and not self.procs[role].alive():
                self.start_role(role)
