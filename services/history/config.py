"""History service configuration (composed into server/config.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class HistoryConfig:
    # Used only when the cluster metadata row does not exist yet (first start of a cluster).
    num_history_shards: int = 4
    # Shards this host owns; None = all of them (single history host).
    owned_shards: list[int] | None = None
    mutable_state_cache_size: int = 10_000
    # Long-poll budget of GetWorkflowExecutionHistory(wait_new_event=true).
    history_long_poll_seconds: float = 20.0
    default_history_page_size: int = 256
    default_workflow_task_timeout_seconds: float = 10.0
    # A workflow task's Started event suggests continue-as-new from this many events or bytes of history on.
    # BuildIds/BinaryChecksums changed by a workflow task reach visibility with the run's next visibility write
    # or, at the latest, this long after (a timer): a short run pays no visibility write of its own for them.
    build_id_visibility_delay_seconds: float = 5.0
    suggest_continue_as_new_history_count: int = 4 * 1024
    suggest_continue_as_new_history_size_bytes: int = 4 * 1024 * 1024
    max_workflow_task_timeout_seconds: float = 120.0
    # How many times a transaction is retried after an optimistic-concurrency conflict.
    condition_retries: int = 5
    queue_batch_size: int = 100
    # Committed tasks reach the queue processors in memory; the tables are re-read only on shard load, after an
    # overflow, at the timer horizon, after a write of unknown outcome, and by this safety sweep.
    queue_sweep_seconds: float = 15.0
    # Tasks (incl. future timers) a queue processor holds in memory before falling back to database reads.
    queue_max_buffered_tasks: int = 10_000
    # Hand activities scheduled with request_eager_execution straight back in the RespondWorkflowTaskCompleted
    # response (as Temporal's system.enableActivityEagerExecution, default on) instead of through matching.
    enable_activity_eager_execution: bool = True
    # Used when a namespace record has no retention configured.
    default_retention_seconds: float = 86400.0
