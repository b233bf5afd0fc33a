"""Frontend configuration: defaults suit start-dev; server/config.py composes this into the process config."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta


@dataclass
class FrontendConfig:
    # Reported by GetSystemInfo / GetClusterInfo. Any semver works for the SDKs.
    server_version: str = "1.29.0"
    # Used for namespace replication config when the cluster metadata store has no row yet.
    cluster_name: str = "active"
    # RegisterNamespace without a retention gets this; anything below the minimum is INVALID_ARGUMENT.
    default_namespace_retention: timedelta = field(default_factory=lambda: timedelta(days=3))
    min_namespace_retention: timedelta = field(default_factory=lambda: timedelta(days=1))
    # Name -> id resolution cache. Short so an update made through another frontend is seen quickly.
    namespace_cache_ttl_seconds: float = 2.0
    # Limit for ids, names, task queue names, request ids and identities (the real server's default).
    max_id_length: int = 1000
    # Namespaces advertise worker_poll_complete_on_shutdown (Temporal's frontend.enableCancelWorkerPollsOnShutdown,
    # off by default there too). ShutdownWorker ends the worker's parked polls either way; with the flag the SDK
    # also waits for its in-flight polls instead of dropping them, so a worker with Nexus handlers (whose polls
    # Durata answers UNIMPLEMENTED, retried) or one that outlives its server cannot finish shutting down.
    worker_poll_complete_on_shutdown: bool = False
    # Payloads above this are refused before they reach History (the real server's blob size limit).
    blob_size_limit_bytes: int = 2 * 1024 * 1024
    # Long polls: answer by min(budget, client deadline - margin) so the client never sees DEADLINE_EXCEEDED.
    task_poll_budget_seconds: float = 60.0
    history_long_poll_budget_seconds: float = 20.0
    long_poll_margin_seconds: float = 1.0
    # Page sizes when the request leaves them at 0.
    default_namespace_page_size: int = 100
    default_visibility_page_size: int = 1000
    max_visibility_page_size: int = 1000
    # Batch operations running at once per namespace (Temporal's frontend.MaxConcurrentBatchOperationPerNamespace).
    max_concurrent_batch_operations: int = 1
