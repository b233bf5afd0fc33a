"""Consistent hashing with virtual nodes: which live member of a role owns a key (shard, task-queue partition).

Why this shape: every process builds the ring from the same member list, so they agree on owners without
talking to each other; adding or removing one member moves only about 1/n of the keys. The hash is blake2b
(stable across processes and Python versions, unlike ``hash()``).
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

DEFAULT_VNODES = 64


def _point(value: str) -> int:
    return int.from_bytes(hashlib.blake2b(value.encode(), digest_size=8).digest(), "big")


def shard_key(shard_id: int) -> str:
    return f"shard/{shard_id}"


def partition_key(namespace_id: str, name: str, task_type: int, partition: int) -> str:
    return f"{namespace_id}/{name}/{task_type}/{partition}"


def partition_rpc_name(name: str, partition: int) -> str:
    """A partition's public name, as Temporal spells it: the root is the queue itself, the others live under the
    reserved ``/_sys/`` prefix (what ``ListTaskQueuePartitions`` and the CLI show)."""
    return name if partition == 0 else f"/_sys/{name}/{partition}"


@dataclass(frozen=True)
class HashRing:
    """Immutable ring over ``members`` (their identities, e.g. rpc addresses)."""

    members: tuple[str, ...] = ()
    vnodes: int = DEFAULT_VNODES
    _points: tuple[int, ...] = field(default=(), repr=False, compare=False)
    _owners: tuple[str, ...] = field(default=(), repr=False, compare=False)

    @classmethod
    def build(cls, members: Iterable[str], vnodes: int = DEFAULT_VNODES) -> HashRing:
        unique = tuple(sorted(set(members)))
        pairs = sorted((_point(f"{m}#{i}"), m) for m in unique for i in range(vnodes))
        return cls(unique, vnodes, tuple(p for p, _ in pairs), tuple(m for _, m in pairs))

    def __bool__(self) -> bool:
        return bool(self.members)

    def lookup(self, key: str) -> str | None:
        """The owner of ``key``, or None if the ring is empty."""
        if not self._points:
            return None
        i = bisect.bisect_right(self._points, _point(key))
        return self._owners[i % len(self._owners)]
