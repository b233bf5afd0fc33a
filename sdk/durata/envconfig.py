"""Client configuration from TOML profiles and ``TEMPORAL_*`` environment variables (temporalio.envconfig names).

Precedence: environment variables override the selected profile of the config file. The file is
``TEMPORAL_CONFIG_FILE`` or ``<user config dir>/temporalio/temporal.toml``; the profile is the argument,
``TEMPORAL_PROFILE`` or ``default``.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._service import TLSConfig

DataSource = Path | str | bytes


def _read(src: DataSource | None) -> bytes | None:
    if src is None:
        return None
    if isinstance(src, Path):
        return src.read_bytes()
    return src.encode() if isinstance(src, str) else src


def _truthy(v: str) -> bool:
    return v.strip().lower() in ("1", "true", "yes", "on")


def default_config_file(env: Mapping[str, str]) -> Path:
    if env.get("TEMPORAL_CONFIG_FILE"):
        return Path(env["TEMPORAL_CONFIG_FILE"])
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    elif sys.platform == "win32":
        base = Path(env.get("APPDATA", Path.home()))
    else:
        base = Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "temporalio" / "temporal.toml"


@dataclasses.dataclass(frozen=True)
class ClientConfigTLS:
    disabled: bool | None = None
    server_name: str | None = None
    server_root_ca_cert: DataSource | None = None
    client_cert: DataSource | None = None
    client_private_key: DataSource | None = None
    disable_host_verification: bool = False

    def to_connect_tls_config(self) -> bool | TLSConfig:
        if self.disabled:
            return False
        return TLSConfig(server_root_ca_cert=_read(self.server_root_ca_cert), domain=self.server_name,
                         client_cert=_read(self.client_cert), client_private_key=_read(self.client_private_key))

    @staticmethod
    def from_dict(d: Mapping[str, Any] | None) -> ClientConfigTLS | None:
        if not d:
            return None

        def src(name: str) -> DataSource | None:
            if d.get(f"{name}_path"):
                return Path(d[f"{name}_path"])
            return d.get(f"{name}_data")

        return ClientConfigTLS(disabled=d.get("disabled"), server_name=d.get("server_name"),
                               server_root_ca_cert=src("server_ca_cert"), client_cert=src("client_cert"),
                               client_private_key=src("client_key"),
                               disable_host_verification=bool(d.get("disable_host_verification", False)))


@dataclasses.dataclass(frozen=True)
class ClientConfigProfile:
    address: str | None = None
    namespace: str | None = None
    api_key: str | None = None
    tls: ClientConfigTLS | None = None
    grpc_meta: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> ClientConfigProfile:
        return ClientConfigProfile(address=d.get("address"), namespace=d.get("namespace"), api_key=d.get("api_key"),
                                   tls=ClientConfigTLS.from_dict(d.get("tls")), grpc_meta=dict(d.get("grpc_meta") or {}))

    def to_client_connect_config(self) -> dict[str, Any]:
        """Keyword arguments for ``Client.connect(**config)``."""
        config: dict[str, Any] = {"target_host": self.address or "localhost:7233"}
        if self.namespace is not None:
            config["namespace"] = self.namespace
        if self.api_key is not None:
            config["api_key"] = self.api_key
            config["tls"] = True
        if self.tls is not None:
            config["tls"] = self.tls.to_connect_tls_config()
        if self.grpc_meta:
            config["rpc_metadata"] = dict(self.grpc_meta)
        return config

    @staticmethod
    def load(profile: str | None = None, *, config_source: DataSource | None = None, disable_file: bool = False,
             disable_env: bool = False, config_file_strict: bool = False,
             override_env_vars: Mapping[str, str] | None = None) -> ClientConfigProfile:
        env = dict(os.environ if override_env_vars is None else override_env_vars)
        name = profile or (None if disable_env else env.get("TEMPORAL_PROFILE")) or "default"
        data: dict[str, Any] = {}
        if not disable_file:
            profiles = _load_file(config_source, env)
            if profile and profile not in profiles and profiles:
                raise ValueError(f"Profile {profile!r} not found in config file")
            data = dict(profiles.get(name, {}))
        if not disable_env:
            data = _apply_env(data, env)
        return ClientConfigProfile.from_dict(data)


def _load_file(source: DataSource | None, env: Mapping[str, str]) -> dict[str, Any]:
    if source is None:
        path = default_config_file(env)
        if not path.exists():
            return {}
        text = path.read_text()
    elif isinstance(source, Path):
        text = source.read_text()
    else:
        text = source.decode() if isinstance(source, bytes) else source
    return dict(tomllib.loads(text).get("profile", {}))


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    for key, var in (("address", "TEMPORAL_ADDRESS"), ("namespace", "TEMPORAL_NAMESPACE"),
                     ("api_key", "TEMPORAL_API_KEY")):
        if env.get(var):
            data[key] = env[var]
    tls = dict(data.get("tls") or {})
    for suffix in ("CLIENT_CERT_PATH", "CLIENT_CERT_DATA", "CLIENT_KEY_PATH", "CLIENT_KEY_DATA",
                   "SERVER_CA_CERT_PATH", "SERVER_CA_CERT_DATA", "SERVER_NAME"):
        if env.get(f"TEMPORAL_TLS_{suffix}"):
            tls[suffix.lower()] = env[f"TEMPORAL_TLS_{suffix}"]
    if env.get("TEMPORAL_TLS_DISABLE_HOST_VERIFICATION"):
        tls["disable_host_verification"] = _truthy(env["TEMPORAL_TLS_DISABLE_HOST_VERIFICATION"])
    if env.get("TEMPORAL_TLS"):
        tls["disabled"] = not _truthy(env["TEMPORAL_TLS"])
    if tls:
        data["tls"] = tls
    meta = dict(data.get("grpc_meta") or {})
    for k, v in env.items():
        if k.startswith("TEMPORAL_GRPC_META_"):
            meta[k.removeprefix("TEMPORAL_GRPC_META_").lower().replace("_", "-")] = v
    if meta:
        data["grpc_meta"] = meta
    return data


@dataclasses.dataclass
class ClientConfig:
    profiles: Mapping[str, ClientConfigProfile]

    @staticmethod
    def load(*, config_source: DataSource | None = None, config_file_strict: bool = False,
             override_env_vars: Mapping[str, str] | None = None) -> ClientConfig:
        env = dict(os.environ if override_env_vars is None else override_env_vars)
        return ClientConfig({k: ClientConfigProfile.from_dict(v) for k, v in _load_file(config_source, env).items()})

    @staticmethod
    def load_client_connect_config(profile: str | None = None, *, config_file: str | None = None,
                                   disable_file: bool = False, disable_env: bool = False,
                                   config_file_strict: bool = False,
                                   override_env_vars: Mapping[str, str] | None = None) -> dict[str, Any]:
        """``Client.connect(**ClientConfig.load_client_connect_config())`` honours TEMPORAL_* variables."""
        source = Path(config_file) if config_file and not disable_file else None
        return ClientConfigProfile.load(profile, config_source=source, disable_file=disable_file,
                                        disable_env=disable_env, config_file_strict=config_file_strict,
                                        override_env_vars=override_env_vars).to_client_connect_config()
