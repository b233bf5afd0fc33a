"""A Durata cluster as local processes, started with exactly the commands of ``docker-compose.yml``.

Each Durata service of the compose file becomes one ``python -m server <command>`` process (the image's
entrypoint), with the compose environment adapted to one machine: local ports, the test database, short
membership intervals. ``ROLE_COMMANDS`` is what this harness runs; tests/cluster/test_compose.py checks that the
compose file uses nothing else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from e2e.harness import (
    REPO_ROOT,
    ServerProc,
    free_port,
    health_serving,
    run_cli,
    system_info_answers,
    wait_for,
)

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"

ROLE_COMMANDS: dict[str, list[str]] = {
    "schema": ["schema", "upgrade"],
    "history": ["server", "start", "--services", "history"],
    "matching": ["server", "start", "--services", "matching"],
    "frontend": ["server", "start", "--services", "frontend"],
    "internal_worker": ["server", "start", "--services", "internal_worker"],
}

# Test tuning through the same DURATA_* variables an operator would use: fast failure detection.
TEST_ENV = {
    "DURATA_MEMBERSHIP_HEARTBEAT_SECONDS": "0.25",
    "DURATA_MEMBERSHIP_EXPIRY_SECONDS": "3.0",
    "DURATA_POLL_PARTITION_SLICE_SECONDS": "1",
    # Eight processes share the test server's 100 connections with whatever else runs.
    "DURATA_DB_POOL_MAX_SIZE": "5",
    "DURATA_LOG_FORMAT": "json",
    "DURATA_LOG_LEVEL": "info",
}


def load_compose() -> dict[str, Any]:
    with open(COMPOSE_FILE) as fh:
        data = yaml.safe_load(fh)
    assert isinstance(data, dict)
    return data


def role_of(command: list[str]) -> str | None:
    for role, cmd in ROLE_COMMANDS.items():
        if cmd == command:
            return role
    return None


def durata_services() -> dict[str, tuple[str, list[str], dict[str, str]]]:
    """compose service name -> (role, command, environment) for every service running the Durata image."""
    out = {}
    for name, svc in load_compose()["services"].items():
        command = svc.get("command")
        if "build" not in svc or command is None:
            continue
        env = svc.get("environment") or {}
        if isinstance(env, list):
            env = dict(item.split("=", 1) for item in env)
        role = role_of(list(command))
        assert role is not None, f"compose service {name} runs {command}, which the cluster test never runs"
        out[name] = (role, list(command), {k: str(v) for k, v in env.items()})
    return out


@dataclass
class LocalCluster:
    """The compose services as processes. ``start(name)`` can also start extra copies (``history3``)."""

    db_url: str
    workdir: Path
    procs: dict[str, ServerProc] = field(default_factory=dict)
    addresses: dict[str, str] = field(default_factory=dict)
    metrics_ports: dict[str, int] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)
    frontend_address: str = ""

    def _env(self, name: str, compose_env: dict[str, str]) -> dict[str, str]:
        env = {**compose_env, **TEST_ENV, "DURATA_DB_URL": self.db_url, "DURATA_IP": "127.0.0.1",
               "DURATA_METRICS_HOST": "127.0.0.1"}
        if "DURATA_METRICS_PORT" in compose_env:
            env["DURATA_METRICS_PORT"] = str(self.metrics_ports.setdefault(name, free_port()))
        for role in ("history", "matching", "frontend"):
            key = f"DURATA_{role.upper()}_ADDRESS"
            if f"DURATA_{role.upper()}_PORT" in compose_env:
                port = free_port()
                env[f"DURATA_{role.upper()}_PORT"] = str(port)
                env[key] = self.addresses[name] = f"127.0.0.1:{port}"
            elif key in compose_env and role == "frontend":
                env[key] = self.frontend_address  # a client of the frontend (internal worker)
        return env

    def schema(self) -> None:
        done = run_cli(ROLE_COMMANDS["schema"], env={"DURATA_DB_URL": self.db_url})
        assert done.returncode == 0, done.stdout + done.stderr

    def launch(self, name: str, like: str | None = None) -> ServerProc:
        """Start compose service ``like`` (default ``name``) under the process name ``name``; not yet ready."""
        role, command, compose_env = durata_services()[like or name]
        self.roles[name] = role
        env = self._env(name, compose_env)
        if role == "frontend":
            self.frontend_address = self.addresses[name]
        log_path = self.workdir / f"{name}-{sum(1 for _ in self.workdir.glob(name + '-*.log'))}.log"
        proc = ServerProc(name, command, log_path, env=env)
        proc.start()
        self.procs[name] = proc
        return proc

    def wait_ready(self, name: str) -> None:
        proc = self.procs[name]
        role = self.roles[name]
        if name in self.addresses and role != "frontend":
            proc.wait_ready(lambda: health_serving(self.addresses[name]))
        elif name in self.addresses:
            proc.wait_ready(lambda: system_info_answers(self.addresses[name]))
        else:
            proc.wait_ready(lambda: "internal worker" in proc.stdout())

    def start(self, name: str, like: str | None = None) -> ServerProc:
        proc = self.launch(name, like)
        self.wait_ready(name)
        return proc

    def start_all(self) -> None:
        """Schema job, then every Durata service of the compose file (frontend before its clients)."""
        self.schema()
        services = durata_services()
        order = sorted(services, key=lambda n: ("frontend", "internal_worker").index(services[n][0])
                       if services[n][0] in ("frontend", "internal_worker") else -1)
        for name in order:
            if services[name][0] == "schema":
                continue
            if services[name][0] == "internal_worker":
                self.start(name)
            else:
                self.launch(name)
                if services[name][0] == "frontend":
                    self.wait_ready(name)
        for name in order:
            if services[name][0] in ("history", "matching"):
                self.wait_ready(name)

    def kill(self, name: str) -> None:
        self.procs[name].kill()

    def stop(self) -> None:
        for proc in reversed(list(self.procs.values())):
            proc.terminate()

    def describe(self) -> dict[str, Any]:
        done = run_cli(["admin", "cluster", "describe", "--json"],
                       env={"DURATA_DB_URL": self.db_url, "DURATA_MEMBERSHIP_EXPIRY_SECONDS": "3.0"})
        assert done.returncode == 0, done.stdout + done.stderr
        return dict(json.loads(done.stdout))

    def wait_for_owners(self, histories: list[str], timeout: float = 45.0) -> dict[str, Any]:
        """Until the live history members are exactly ``histories`` (process names) and every shard was
        acquired by the owner the ring of those members gives it (the shards table agrees with the ring)."""
        wanted = {self.addresses[h] for h in histories}
        view: dict[str, Any] = {}

        def settled() -> bool:
            nonlocal view
            view = self.describe()
            live = {m["address"] for m in view["members"] if m["role"] == "history" and m["alive"]}
            return live == wanted and all(s["owner"] == s["recorded_owner"] for s in view["shards"])

        wait_for(settled, timeout, f"shards owned by {sorted(wanted)}", interval=0.3)
        return view

    def log_tails(self) -> str:
        return "\n".join(p.log_tail(40) for p in self.procs.values())
