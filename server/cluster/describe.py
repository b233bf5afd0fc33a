"""``durata admin cluster describe``: members, roles, shard -> owner, task-queue partition -> owner, read from
the database every process shares (so it works with no server reachable, e.g. after a crash)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from server.cluster.membership import RING_ROLES
from server.cluster.ring import HashRing, partition_key, shard_key

TASK_TYPES = {1: "workflow", 2: "activity", 3: "nexus"}


@dataclass
class MemberView:
    role: str
    address: str
    host_id: str
    alive: bool
    session_start: str
    last_heartbeat_seconds_ago: float


@dataclass
class ShardView:
    shard_id: int
    owner: str  # by the ring of live history members
    recorded_owner: str  # the host that last acquired it (shards.owner)
    range_id: int


@dataclass
class PartitionView:
    namespace_id: str
    task_queue: str
    task_type: str
    partition: int
    owner: str
    range_id: int


@dataclass
class ClusterView:
    cluster_name: str
    num_history_shards: int
    task_queue_partitions: int
    members: list[MemberView] = field(default_factory=list)
    shards: list[ShardView] = field(default_factory=list)
    partitions: list[PartitionView] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def to_text(self) -> str:
        lines = [
            f"cluster {self.cluster_name}: {self.num_history_shards} history shards, "
            f"{self.task_queue_partitions} partitions per task queue",
            "",
            "MEMBERS",
            f"  {'ROLE':<16}{'ADDRESS':<24}{'ALIVE':<7}{'LAST HEARTBEAT':<16}HOST ID",
        ]
        for m in self.members:
            lines.append(f"  {m.role:<16}{m.address or '-':<24}{'yes' if m.alive else 'no':<7}"
                         f"{m.last_heartbeat_seconds_ago:>6.1f}s ago     {m.host_id}")
        lines += ["", "SHARDS", f"  {'SHARD':<7}{'OWNER':<24}{'RANGE':<8}LAST ACQUIRED BY"]
        for s in self.shards:
            lines.append(f"  {s.shard_id:<7}{s.owner or '-':<24}{s.range_id:<8}{s.recorded_owner or '-'}")
        lines += ["", "TASK QUEUE PARTITIONS",
                  f"  {'NAMESPACE ID':<38}{'TASK QUEUE':<30}{'TYPE':<10}{'PART':<6}{'RANGE':<8}OWNER"]
        for p in self.partitions:
            lines.append(f"  {p.namespace_id:<38}{p.task_queue:<30}{p.task_type:<10}{p.partition:<6}"
                         f"{p.range_id:<8}{p.owner or '-'}")
        return "\n".join(lines)


async def describe_cluster(persistence: Any, expiry_seconds: float, max_partitions: int = 1000) -> ClusterView:
    meta = await persistence.cluster.get_cluster_metadata()
    num_shards = meta.num_history_shards if meta is not None else 0
    try:
        partitions = int(json.loads(meta.data or b"{}").get("task_queue_partitions", 0)) if meta else 0
    except ValueError:
        partitions = 0
    view = ClusterView(meta.cluster_name if meta else "(not created)", num_shards, partitions)
    now = datetime.now(UTC)
    horizon = now - timedelta(seconds=expiry_seconds)
    rows = await persistence.membership.list_members()
    for m in sorted(rows, key=lambda r: (r.role, r.rpc_address, r.host_id)):
        view.members.append(MemberView(
            m.role, m.rpc_address, m.host_id, m.last_heartbeat >= horizon, m.session_start.isoformat(),
            round((now - m.last_heartbeat).total_seconds(), 1),
        ))
    rings = {
        role: HashRing.build(m.address for m in view.members if m.role == role and m.alive and m.address)
        for role in RING_ROLES
    }
    recorded: dict[int, tuple[int, str]] = {}
    db = getattr(persistence, "db", None)
    if db is not None:
        for r in await db.fetch("SELECT shard_id, range_id, owner FROM shards ORDER BY shard_id"):
            recorded[int(r[0])] = (int(r[1]), str(r[2]))
    for sid in range(1, num_shards + 1):
        range_id, owner = recorded.get(sid, (0, ""))
        view.shards.append(ShardView(sid, rings["history"].lookup(shard_key(sid)) or "", owner, range_id))
    for q in await persistence.tasks.list_task_queues(max_partitions):
        k = q.key
        owner = rings["matching"].lookup(partition_key(k.namespace_id, k.name, k.task_type, k.partition)) or ""
        view.partitions.append(PartitionView(
            k.namespace_id, k.name, TASK_TYPES.get(k.task_type, str(k.task_type)), k.partition, owner, q.range_id
        ))
    return view
