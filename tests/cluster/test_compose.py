"""docker-compose.yml cannot run here (no Docker engine), so check what can be checked without it: every Durata
service runs a command the cluster test runs, every build/file reference exists, every DURATA_* variable is a
real config key, and Prometheus and Grafana refer to what Durata serves and exports."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import yaml

from cluster.harness import COMPOSE_FILE, ROLE_COMMANDS, durata_services, load_compose
from server.config import ServerConfig

ROOT = COMPOSE_FILE.parent
ROLES_NEEDED = {"schema": 1, "frontend": 1, "history": 2, "matching": 2, "internal_worker": 1}
CONFIG_ENV = {f"DURATA_{f.name.upper()}" for f in dataclasses.fields(ServerConfig) if f.name != "sections"}


def test_every_durata_service_runs_a_command_the_cluster_test_runs() -> None:
    services = durata_services()  # asserts each command is one of ROLE_COMMANDS
    counts: dict[str, int] = {}
    for role, command, _env in services.values():
        assert command == ROLE_COMMANDS[role]
        counts[role] = counts.get(role, 0) + 1
    assert counts == ROLES_NEEDED
    names = set(load_compose()["services"])
    assert {"postgres", "prometheus", "grafana"} <= names


def test_environment_uses_real_config_keys_and_distinct_addresses() -> None:
    addresses = []
    for name, (role, _cmd, env) in durata_services().items():
        unknown = [k for k in env if k.startswith("DURATA_") and k not in CONFIG_ENV]
        assert not unknown, f"{name}: unknown settings {unknown}"
        assert env.get("DURATA_DB_URL", "").startswith("postgresql://"), name
        own = env.get(f"DURATA_{role.upper()}_ADDRESS")
        if role in ("history", "matching", "frontend"):
            assert own and own.split(":")[0] == name, f"{name} must advertise its own compose host name"
            addresses.append(own)
    assert len(addresses) == len(set(addresses))


def test_build_and_file_references_exist() -> None:
    compose = load_compose()
    for name, svc in compose["services"].items():
        build = svc.get("build")
        if build is not None:
            context = ROOT / (build if isinstance(build, str) else build.get("context", "."))
            assert context.is_dir(), name
            dockerfile = context / (build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile")
            assert dockerfile.is_file(), f"{name}: {dockerfile} missing"
        else:
            assert "image" in svc, f"{name} has neither build nor image"
        for volume in svc.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name}: volume source {source} missing"
        for dep in (svc.get("depends_on") or {}):
            assert dep in compose["services"], f"{name} depends on unknown service {dep}"


def test_dockerfile_entrypoint_is_python_m_server() -> None:
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["python", "-m", "server"]' in text
    for line in text.splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            for src in line.split()[1:-1]:
                assert (ROOT / src).exists() or src == ".", src


def test_prometheus_scrapes_every_durata_process() -> None:
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    targets = {t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    for name, (role, _cmd, env) in durata_services().items():
        if role == "schema":
            continue
        assert f"{name}:{env['DURATA_METRICS_PORT']}" in targets, name


def test_grafana_dashboard_uses_exported_metrics() -> None:
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "dashboards" / "durata.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert exprs
    source = "\n".join(p.read_text() for d in ("server", "services") for p in Path(ROOT, d).rglob("*.py")
                       if "gen" not in p.parts)
    for expr in exprs:
        for metric in re.findall(r"\bdurata_[a-z_]+", expr):
            base = re.sub(r"_(total|bucket|sum|count)$", "", metric)
            assert f'"{base}"' in source, f"dashboard metric {metric} is not exported by Durata"
