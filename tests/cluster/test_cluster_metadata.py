"""Cluster-wide constants chosen at creation, and a one-process cluster node wired through its routers."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.app import DurataProcess, StartupError
from server.cluster.routing import HistoryRouter
from server.config import ServerConfig
from server.persistence.schema_version import upgrade_async


def cluster_config(db_url: str, **overrides: object) -> ServerConfig:
    cfg = ServerConfig(db_url=db_url, services=["history", "matching", "frontend"], frontend_port=0,
                       history_port=0, matching_port=0, shutdown_grace_seconds=1.0,
                       membership_heartbeat_seconds=0.2, membership_expiry_seconds=1.0)
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return cfg


async def test_shard_count_is_fixed_at_creation(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'cluster.db'}"
    await upgrade_async(db_url)
    first = DurataProcess(cluster_config(db_url, num_history_shards=8, task_queue_partitions=2))
    await first.start()
    try:
        assert first.cfg.num_history_shards == 8
        # Cluster mode: every service reaches History and Matching through the ring-routing clients.
        assert isinstance(first.roles["frontend"].service.history_client, HistoryRouter)
        history = first.roles["history"].service
        assert sorted(history.engine.shards) == list(range(1, 9))  # the only history host owns every shard
        assert history.host_identity == f"127.0.0.1:{first.bound_ports['history']}"
    finally:
        await first.stop()

    # Unset: the process takes the cluster's values.
    second = DurataProcess(cluster_config(db_url))
    await second.start()
    assert (second.cfg.num_history_shards, second.cfg.task_queue_partitions) == (8, 2)
    await second.stop()

    for wrong, match in (({"num_history_shards": 4}, "num_history_shards=8"),
                         ({"task_queue_partitions": 4}, "task_queue_partitions=2")):
        refused = DurataProcess(cluster_config(db_url, **wrong))
        with pytest.raises(StartupError, match=match):
            await refused.start()
        await refused.stop()
