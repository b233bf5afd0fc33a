"""The ``durata`` argument parser and how flags become a ServerConfig."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from server.cli import _server_config, build_parser

REPO = Path(__file__).resolve().parents[2]


def parse(*argv: str):  # noqa: ANN201
    return build_parser().parse_args(list(argv))


def test_start_dev_defaults_and_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DURATA_DB_URL", raising=False)
    cfg = _server_config(parse("server", "start-dev"), dev=True)
    assert cfg.db_url == "sqlite://" and cfg.dev_mode and cfg.frontend_port == 7233
    assert cfg.services == ["frontend", "history", "matching", "internal_worker"]
    assert cfg.namespaces == ["default"] and cfg.log_format == "console"

    db = tmp_path / "dev.db"
    cfg = _server_config(parse("server", "start-dev", "--port", "7999", "--db-filename", str(db), "--namespace",
                               "a", "--namespace", "b", "--metrics-port", "0", "--log-format", "json",
                               "--set", "internal_worker.retention_interval_seconds=1"), dev=True)
    assert cfg.db_url == f"sqlite:///{db}" and cfg.frontend_port == 7999
    assert cfg.namespaces == ["default", "a", "b"]
    assert cfg.metrics_port == 0 and not cfg.metrics_best_effort and cfg.log_format == "json"
    assert cfg.sections["internal_worker"] == {"retention_interval_seconds": 1}


def test_start_roles_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DURATA_DB_URL", "postgresql://u@h/db")
    cfg = _server_config(parse("server", "start", "--services", "history", "--history-port", "7300",
                               "--matching-address", "m:1"), dev=False)
    assert cfg.services == ["history"] and cfg.history_port == 7300
    assert cfg.db_url == "postgresql://u@h/db" and not cfg.dev_mode
    assert cfg.address_of("matching") == "m:1"
    cfg = _server_config(parse("server", "start", "--service", "matching", "--db", "postgresql://x@y/z"), dev=False)
    assert cfg.services == ["matching"] and cfg.db_url == "postgresql://x@y/z"


def test_python_dash_m_server_help() -> None:
    out = subprocess.run([sys.executable, "-m", "server", "server", "start-dev", "--help"], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "--db-filename" in out.stdout


def test_bad_config_exits_2(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "server", "server", "start", "--services", "web", "--db",
                          "sqlite:///x.db"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "unknown service" in out.stderr
