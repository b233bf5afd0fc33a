"""Durata's own Prometheus counters, scraped before and after a measured window and diffed.

What the benchmark reads: ``durata_rpc_requests_total{service,method,status}`` (handled gRPC calls; in a single
process the roles call each other in-process, so only the public WorkflowService calls show up there) and the
``_count`` of ``durata_persistence_latency_seconds{store,operation}`` (one sample per store call, and every store
call is one database transaction). Counters of several processes (a split cluster) are summed.
"""

from __future__ import annotations

import asyncio
import urllib.request
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

RPC_SAMPLE = "durata_rpc_requests_total"
PERSISTENCE_SAMPLE = "durata_persistence_latency_seconds_count"
PERSISTENCE_SECONDS = "durata_persistence_latency_seconds_sum"
# Operations that only read; everything else a store does is a write transaction.
_READ_PREFIXES = ("get_", "read_", "list_", "count_", "describe")
# Writes that advance a workflow's mutable state: Temporal's "state transitions".
STATE_TRANSITION_OPS = ("executions.create_workflow_execution", "executions.update_workflow_execution")


def is_read(operation_key: str) -> bool:
    """``store.operation`` -> True if the operation is read-only (``get_or_create_shard`` counts as a write)."""
    op = operation_key.split(".", 1)[1]
    return op.startswith(_READ_PREFIXES) and not op.startswith("get_or_create")


@dataclass
class Snapshot:
    """Counter values at one instant: RPCs keyed ``Service.Method`` and store calls keyed ``store.operation``."""

    rpcs: dict[str, float] = field(default_factory=dict)
    persistence: dict[str, float] = field(default_factory=dict)
    # Seconds spent in store calls (queueing for SQLite's writer thread included), keyed like ``persistence``.
    persistence_seconds: dict[str, float] = field(default_factory=dict)

    def minus(self, earlier: Snapshot) -> Snapshot:
        def diff(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
            out = {k: v - b.get(k, 0.0) for k, v in a.items()}
            return {k: v for k, v in out.items() if v > 0}

        return Snapshot(diff(self.rpcs, earlier.rpcs), diff(self.persistence, earlier.persistence),
                        diff(self.persistence_seconds, earlier.persistence_seconds))


def parse(text: str, into: Snapshot) -> None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == RPC_SAMPLE:
                key = f"{sample.labels['service']}.{sample.labels['method']}"
                into.rpcs[key] = into.rpcs.get(key, 0.0) + sample.value
            elif sample.name in (PERSISTENCE_SAMPLE, PERSISTENCE_SECONDS):
                key = f"{sample.labels['store']}.{sample.labels['operation']}"
                target = into.persistence if sample.name == PERSISTENCE_SAMPLE else into.persistence_seconds
                target[key] = target.get(key, 0.0) + sample.value


def _fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return str(resp.read().decode())


async def scrape(urls: list[str]) -> Snapshot:
    """Sum of the counters of every process; an empty snapshot when the server exports none (Temporal)."""
    snap = Snapshot()
    for text in await asyncio.gather(*(asyncio.to_thread(_fetch, u) for u in urls)):
        parse(text, snap)
    return snap
