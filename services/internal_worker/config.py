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
    # Namespace deletion: how often to look for namespaces in the DELETED state, how long to wait after first
    # seeing one (every frontend's namespace cache must have expired so no new run can start there: keep it above
    # frontend.namespace_cache_ttl_seconds), and how many reclaim steps (OperatorService.DeleteNamespace on the
    # tombstone name, up to 100 runs each) to run per namespace per sweep.
    delete_namespace_enabled: bool = True
    delete_namespace_interval_seconds: float = 5.0
    delete_namespace_grace_seconds: float = 5.0
    delete_namespace_max_steps_per_sweep: int = 50
    # System workflows (batch operations) on Durata's SDK: one worker per namespace, the namespace list re-read
    # this often; batch jobs that set no max_operations_per_second get batch_rps, with batch_concurrency calls
    # in flight (Temporal's worker.batcherRPS / batcherConcurrency defaults).
    system_workers_enabled: bool = True
    system_workers_refresh_seconds: float = 2.0
    batch_rps: float = 50.0
    batch_concurrency: int = 5
    # Deadline of each call to the frontend.
    rpc_timeout_seconds: float = 10.0
    identity: str = "durata-internal-worker"
