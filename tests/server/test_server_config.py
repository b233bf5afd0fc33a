"""Config layering: defaults < TOML file < DURATA_* environment < flags < --set."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest

from server.config import ConfigError, ServerConfig, build_service_config, load_config


def test_layering(tmp_path: Path) -> None:
    path = tmp_path / "durata.toml"
    path.write_text(
        'db_url = "postgresql://file@h/db"\nservices = ["history"]\nhistory_port = 1111\nmetrics_port = 9100\n'
        "[internal_worker]\nretention_interval_seconds = 30\n"
    )
    env = {"DURATA_DB_URL": "postgresql://env@h/db", "DURATA_HISTORY_PORT": "2222", "DURATA_SERVICES": "a,b"}
    cfg = load_config(
        config_file=str(path),
        env={k: v for k, v in env.items() if k != "DURATA_SERVICES"},
        flags={"history_port": 3333, "db_url": None},
        overrides=["internal_worker.retention_interval_seconds=1.5", "num_history_shards=8"],
    )
    assert cfg.db_url == "postgresql://env@h/db"  # env beats file; a None flag is "not given"
    assert cfg.history_port == 3333  # flag beats env
    assert cfg.metrics_port == 9100  # file beats default
    assert cfg.services == ["history"]
    assert cfg.sections["internal_worker"]["retention_interval_seconds"] == 1.5
    assert cfg.num_history_shards == 8


def test_env_list_and_addresses() -> None:
    cfg = load_config(env={"DURATA_SERVICES": "frontend, matching", "DURATA_HISTORY_ADDRESS": "h:1"})
    assert cfg.services == ["frontend", "matching"]
    assert cfg.address_of("history") == "h:1"
    assert cfg.address_of("matching") == "127.0.0.1:7235"
    cfg.ip = "0.0.0.0"
    assert cfg.address_of("frontend") == "127.0.0.1:7233"


@pytest.mark.parametrize(
    "content, message",
    [
        ("bogus = 1\n", "unknown key 'bogus'"),
        ("[nope]\nx = 1\n", "unknown section [nope]"),
        ("history_port = 'abc'\n", "expected an integer"),
        ("this is not toml", "config file"),
    ],
)
def test_file_errors_are_actionable(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_config(config_file=str(path), env={})


def test_validate() -> None:
    with pytest.raises(ConfigError, match="no database"):
        ServerConfig(db_url="").validate()
    with pytest.raises(ConfigError, match="unknown service"):
        ServerConfig(db_url="sqlite://", services=["history", "web"]).validate()
    ServerConfig(db_url="", services=["internal_worker"]).validate()  # needs only the frontend


@dataclass
class _Example:
    interval: float = 1.0
    count: int = 3
    ttl: timedelta = field(default_factory=lambda: timedelta(days=1))
    names: list[str] = field(default_factory=list)


def test_build_service_config_coerces_and_rejects_unknown() -> None:
    cfg = build_service_config(_Example, {"interval": "2.5", "count": 7, "ttl": 1, "names": "a,b"}, "x")
    assert cfg == _Example(interval=2.5, count=7, ttl=timedelta(seconds=1), names=["a", "b"])
    with pytest.raises(ConfigError, match=r"\[x\]: unknown key\(s\) nope"):
        build_service_config(_Example, {"nope": 1}, "x")


def test_documented_example_is_valid(tmp_path: Path) -> None:
    """The example in server/config.py's docstring loads and builds every service config."""
    import textwrap

    import server.config as config_module
    from services.frontend.config import FrontendConfig
    from services.history.config import HistoryConfig
    from services.internal_worker.config import InternalWorkerConfig
    from services.matching.config import MatchingConfig

    doc = config_module.__doc__ or ""
    block = doc.split("::\n", 1)[1].split("\n\nEvery top-level key", 1)[0]
    path = tmp_path / "example.toml"
    path.write_text(textwrap.dedent(block))
    cfg = load_config(config_file=str(path), env={})
    cfg.validate()
    assert cfg.services == ["frontend", "history", "matching", "internal_worker"]
    for section, cls in (("frontend", FrontendConfig), ("history", HistoryConfig), ("matching", MatchingConfig),
                         ("internal_worker", InternalWorkerConfig)):
        build_service_config(cls, cfg.sections.get(section, {}), section)
    assert cfg.sections["frontend"]["min_namespace_retention"] == 86400
