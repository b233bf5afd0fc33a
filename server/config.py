"""Server configuration: defaults, then a TOML file, then ``DURATA_*`` environment variables, then flags.

The top-level keys (``ServerConfig`` fields) say which roles run, where they listen and how others reach them.
Each service's own tuning lives in its package's ``config.py`` dataclass; the TOML file (or ``--set
section.key=value``) fills those from the ``[history]``, ``[matching]``, ``[frontend]`` and ``[internal_worker]``
tables. Example ``durata.toml``::

    db_url = "postgresql://durata:secret@db:5432/durata"
    services = ["frontend", "history", "matching", "internal_worker"]
    ip = "0.0.0.0"                      # listen address of the gRPC servers
    frontend_port = 7233                # public WorkflowService/OperatorService
    history_port = 7234                 # internal HistoryService
    matching_port = 7235                # internal MatchingService
    history_address = "history:7234"    # where other processes reach each role
    matching_address = "matching:7235"
    frontend_address = "frontend:7233"
    metrics_port = 9090                 # Prometheus /metrics; 0 = off
    log_level = "info"                  # debug, info, warning, error
    log_format = "json"                 # json or console
    num_history_shards = 4              # fixed when the cluster is created (unset: the cluster's value)
    task_queue_partitions = 4           # partitions per normal task queue, also fixed at creation
    membership_heartbeat_seconds = 1    # cluster membership: heartbeat / ring refresh interval
    membership_expiry_seconds = 6       # a member silent this long is dead; its shards and partitions move
    poll_partition_slice_seconds = 2    # a task poll waits this long on one partition before trying the next
    route_retry_seconds = 15            # how long a call keeps following a moved shard / partition
    db_pool_max_size = 20               # PostgreSQL connections per process at most
    namespaces = ["default"]            # created at frontend start if missing
    shutdown_grace_seconds = 5          # SIGTERM: how long in-flight RPCs may finish

    [frontend]                          # services/frontend/config.py FrontendConfig
    min_namespace_retention = 86400     # seconds (start-dev defaults to 1)
    [history]                           # services/history/config.py HistoryConfig
    [matching]                          # services/matching/config.py MatchingConfig
    [internal_worker]                   # services/internal_worker/config.py InternalWorkerConfig
    retention_interval_seconds = 60

Every top-level key also reads from the environment as ``DURATA_<KEY>`` (``DURATA_DB_URL``, ``DURATA_SERVICES``
as a comma list, ``DURATA_HISTORY_ADDRESS``...). Durations in sections are seconds. ``--set KEY=VALUE`` and
``--set section.key=VALUE`` override anything from the command line.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

ROLES = ("frontend", "history", "matching", "internal_worker")
SERVICE_SECTIONS = ROLES

DEFAULT_PORTS = {"frontend": 7233, "history": 7234, "matching": 7235}


class ConfigError(ValueError):
    """A configuration mistake a person can fix; the CLI prints it and exits with status 2."""


@dataclass
class ServerConfig:
    db_url: str = ""
    services: list[str] = field(default_factory=lambda: list(ROLES))
    ip: str = "127.0.0.1"
    frontend_port: int = DEFAULT_PORTS["frontend"]
    history_port: int = DEFAULT_PORTS["history"]
    matching_port: int = DEFAULT_PORTS["matching"]
    # Where the *other* processes are; empty = "<ip>:<port>" of this config (same host).
    frontend_address: str = ""
    history_address: str = ""
    matching_address: str = ""
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0
    # start-dev's default metrics port is best effort: if it is taken the server runs without metrics.
    metrics_best_effort: bool = False
    log_level: str = "info"
    log_format: str = "json"
    # 0 = unset: use the cluster's stored value (4 when this start creates the cluster). Any other value must
    # match the stored one: the shard count of a cluster never changes.
    num_history_shards: int = 0
    task_queue_partitions: int = 0
    membership_heartbeat_seconds: float = 1.0
    membership_expiry_seconds: float = 6.0
    poll_partition_slice_seconds: float = 2.0
    route_retry_seconds: float = 15.0
    # PostgreSQL connections per process at most (a cluster needs processes x this within max_connections).
    db_pool_max_size: int = 20
    namespaces: list[str] = field(default_factory=lambda: ["default"])
    # start-dev --search-attribute NAME=TYPE: custom search attributes registered in the start-up namespaces.
    search_attributes: list[str] = field(default_factory=list)
    # Dev mode creates/upgrades the schema itself; a cluster refuses to start on an unknown schema version.
    dev_mode: bool = False
    # How long SIGTERM waits for in-flight RPCs (long polls are ended first) before cancelling them.
    shutdown_grace_seconds: float = 5.0
    # Per-service sections, passed to each package's config dataclass.
    sections: dict[str, dict[str, Any]] = field(default_factory=lambda: {s: {} for s in SERVICE_SECTIONS})

    def address_of(self, role: str) -> str:
        explicit = getattr(self, f"{role}_address")
        if explicit:
            return explicit
        host = "127.0.0.1" if self.ip in ("0.0.0.0", "::", "") else self.ip
        return f"{host}:{getattr(self, f'{role}_port')}"

    def validate(self) -> None:
        unknown = [s for s in self.services if s not in ROLES]
        if unknown:
            raise ConfigError(f"unknown service(s) {', '.join(unknown)}; choose from {', '.join(ROLES)}")
        if not self.services:
            raise ConfigError("no services selected")
        if not self.db_url and any(r in self.services for r in ("frontend", "history", "matching")):
            raise ConfigError("no database: pass --db URL, set DURATA_DB_URL, or set db_url in the config file")
        if self.db_pool_max_size < 1:
            raise ConfigError("db_pool_max_size must be >= 1")
        if self.num_history_shards < 0:
            raise ConfigError("num_history_shards must be >= 1")
        if self.task_queue_partitions < 0 or self.task_queue_partitions > 64:
            raise ConfigError("task_queue_partitions must be between 1 and 64")
        if self.membership_heartbeat_seconds <= 0 or self.membership_expiry_seconds < 2 * self.membership_heartbeat_seconds:
            raise ConfigError("membership_expiry_seconds must be at least twice membership_heartbeat_seconds (> 0)")
        for sec in self.sections:
            if sec not in SERVICE_SECTIONS:
                raise ConfigError(f"unknown config section [{sec}]; choose from {', '.join(SERVICE_SECTIONS)}")


_TOP_LEVEL = {f.name: f for f in dataclasses.fields(ServerConfig) if f.name != "sections"}


def _coerce(name: str, value: Any, target: Any) -> Any:
    """Turn a TOML/env/flag value into the type of the default ``target``."""
    if isinstance(target, bool):
        if isinstance(value, str):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ConfigError(f"{name}: expected true/false, got {value!r}")
        return bool(value)
    if isinstance(target, int) and not isinstance(target, bool):
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name}: expected an integer, got {value!r}") from None
    if isinstance(target, float):
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name}: expected a number, got {value!r}") from None
    if isinstance(target, timedelta):
        if isinstance(value, timedelta):
            return value
        try:
            return timedelta(seconds=float(value))
        except (TypeError, ValueError):
            raise ConfigError(f"{name}: expected seconds, got {value!r}") from None
    if isinstance(target, list):
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, list | tuple):
            return [str(v) for v in value]
        raise ConfigError(f"{name}: expected a list, got {value!r}")
    if isinstance(target, str):
        return str(value)
    return value


def _apply_top_level(cfg: ServerConfig, values: Mapping[str, Any], origin: str) -> None:
    for key, value in values.items():
        if key not in _TOP_LEVEL:
            raise ConfigError(f"{origin}: unknown key {key!r}; known keys: {', '.join(sorted(_TOP_LEVEL))}")
        setattr(cfg, key, _coerce(key, value, getattr(cfg, key)))


def load_file(path: str | Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"config file {path}: {err}") from None


def apply_file(cfg: ServerConfig, data: Mapping[str, Any], origin: str) -> None:
    top = {k: v for k, v in data.items() if not isinstance(v, dict)}
    _apply_top_level(cfg, top, origin)
    for section, values in data.items():
        if not isinstance(values, dict):
            continue
        if section not in SERVICE_SECTIONS:
            raise ConfigError(f"{origin}: unknown section [{section}]; known: {', '.join(SERVICE_SECTIONS)}")
        cfg.sections.setdefault(section, {}).update(values)


def apply_env(cfg: ServerConfig, env: Mapping[str, str]) -> None:
    values = {}
    for key in _TOP_LEVEL:
        raw = env.get(f"DURATA_{key.upper()}")
        if raw is not None and raw != "":
            values[key] = raw
    _apply_top_level(cfg, values, "environment")


def apply_overrides(cfg: ServerConfig, settings: list[str]) -> None:
    """``--set key=value`` / ``--set section.key=value``; the value is read as a TOML value, else a string."""
    for item in settings:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        section, dot, name = key.strip().partition(".")
        if dot:
            if section not in SERVICE_SECTIONS:
                raise ConfigError(f"--set {item!r}: unknown section {section!r}")
            cfg.sections.setdefault(section, {})[name] = value
        else:
            _apply_top_level(cfg, {section: value}, "--set")


def build_service_config(cls: type, values: Mapping[str, Any], section: str) -> Any:
    """Instantiate a service's config dataclass from its section, with type coercion and clear errors."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    known = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in values if k not in known]
    if unknown:
        raise ConfigError(
            f"[{section}]: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(sorted(known))}"
        )
    default = cls()
    kwargs = {k: _coerce(f"{section}.{k}", v, getattr(default, k)) for k, v in values.items()}
    return dataclasses.replace(default, **kwargs)


def load_config(
    *,
    config_file: str | None = None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
    overrides: list[str] | None = None,
    base: ServerConfig | None = None,
) -> ServerConfig:
    """Defaults < config file < environment < flags < ``--set`` overrides. Flags with value None are unset."""
    cfg = base if base is not None else ServerConfig()
    if config_file:
        apply_file(cfg, load_file(config_file), config_file)
    apply_env(cfg, os.environ if env is None else env)
    if flags:
        _apply_top_level(cfg, {k: v for k, v in flags.items() if v is not None}, "flags")
    if overrides:
        apply_overrides(cfg, overrides)
    return cfg
