"""envconfig: TEMPORAL_* variables and TOML profiles produce Client.connect keyword arguments."""

from __future__ import annotations

from durata.client import Client
from durata.envconfig import ClientConfig, ClientConfigProfile

TOML = """
[profile.default]
address = "file-host:7233"
namespace = "file-ns"

[profile.prod]
address = "prod:7233"
api_key = "secret"
[profile.prod.grpc_meta]
x-team = "a"
"""


def test_env_overrides_file(tmp_path):
    f = tmp_path / "temporal.toml"
    f.write_text(TOML)
    cfg = ClientConfig.load_client_connect_config(
        config_file=str(f), override_env_vars={"TEMPORAL_NAMESPACE": "env-ns"})
    assert cfg == {"target_host": "file-host:7233", "namespace": "env-ns"}
    prod = ClientConfig.load_client_connect_config("prod", config_file=str(f), override_env_vars={})
    assert prod["api_key"] == "secret" and prod["tls"] is True and prod["rpc_metadata"] == {"x-team": "a"}
    assert set(ClientConfig.load(config_source=f.read_text()).profiles) == {"default", "prod"}


def test_env_only_tls_and_meta(tmp_path):
    env = {"TEMPORAL_CONFIG_FILE": str(tmp_path / "missing.toml"), "TEMPORAL_ADDRESS": "h:1", "TEMPORAL_TLS": "true",
           "TEMPORAL_TLS_SERVER_NAME": "srv", "TEMPORAL_GRPC_META_X_ID": "7"}
    prof = ClientConfigProfile.load(override_env_vars=env)
    cfg = prof.to_client_connect_config()
    assert cfg["target_host"] == "h:1" and cfg["tls"].domain == "srv" and cfg["rpc_metadata"] == {"x-id": "7"}


async def test_connect_with_env(sdk_server):
    cfg = ClientConfig.load_client_connect_config(
        override_env_vars={"TEMPORAL_ADDRESS": sdk_server.target, "TEMPORAL_NAMESPACE": "default",
                           "TEMPORAL_CONFIG_FILE": "/nonexistent/temporal.toml"})
    client = await Client.connect(**cfg)
    assert client.namespace == "default"
    await client.service.close()
