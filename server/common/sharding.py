"""Shard placement: all runs of one workflow id live on one shard."""

from __future__ import annotations

import zlib


def shard_for(namespace_id: str, workflow_id: str, num_shards: int) -> int:
    """Stable across processes and versions (crc32, not Python's salted hash). Shard ids start at 1."""
    key = f"{namespace_id}_{workflow_id}".encode()
    return zlib.crc32(key) % num_shards + 1


def task_id_range(range_id: int) -> tuple[int, int]:
    """Task ids a shard owner may allocate under ``range_id``: [range_id << 20, (range_id + 1) << 20)."""
    return range_id << 20, (range_id + 1) << 20
