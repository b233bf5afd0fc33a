"""Tuning for the internal worker (the ``[internal_worker]`` config section)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class InternalWorkerConfig:
    # Retention: how often to look for closed runs older than their namespace's retention.
    retention_enabled: bool = True
    retention_interval_seconds: float = 60.0
    # Runs listed per ListWorkflowExecutions page and deleted concurrently.
    retention_page_size: int = 100
    retention_delete_concurrency: int = 8
    # Upper bound on deletions per namespace per sweep, so one huge namespace cannot starve the others.
    retention_max_deletes_per_sweep: int = 10_000
    # Deadline of each call to the frontend.
    rpc_timeout_seconds: float = 10.0
    identity: str = "durata-internal-worker"
