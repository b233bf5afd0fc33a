"""Matching settings. Defaults match the real server's budgets; tests shrink them to stay fast."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class MatchingConfig:
    # Longest a task poll is held before answering with an all-default (empty) response.
    long_poll_timeout: float = 60.0
    # A poll answers at least this long before the caller's deadline so the empty answer arrives in time.
    poll_deadline_margin: float = 1.0
    # A sticky queue with no poller for this long refuses new tasks (StickyWorkerUnavailable).
    sticky_liveness: float = 10.0
    # Pollers seen within this window are listed by DescribeTaskQueue.
    poller_history_ttl: float = 300.0
    # How long AddTask waits for a sync-matched poller to get History's record-started answer before it
    # persists the task anyway (a duplicate is harmless: History drops the stale copy).
    sync_match_wait: float = 5.0
    # Backlog tasks written to the database per insert (concurrent adds are batched up to this).
    backlog_write_batch: int = 100
    # Backlog tasks read from the database per query, and kept in memory at most.
    backlog_read_batch: int = 200
    backlog_buffer_max: int = 1000
    # The in-memory buffer is refilled from the database when it holds fewer tasks than this.
    backlog_low_water: int = 50
    # How often a moved ack level is persisted (and delivered backlog rows deleted).
    ack_flush_interval: float = 1.0
    # After History failed with a retryable error, the poll waits this long and returns empty.
    dispatch_error_backoff: float = 0.5
    # Retry delay for a failed backlog read.
    backlog_read_retry: float = 1.0
    # QueryWorkflow without a caller deadline waits this long for the worker's answer.
    default_query_timeout: float = 30.0
    # Idle queues are unloaded after this long (sticky queues of gone workers included).
    idle_unload_after: float = 600.0
    janitor_interval: float = 30.0
    # Reported as rate_per_second for pollers that did not set task_queue_metadata.max_tasks_per_second.
    default_poller_rate: float = 100000.0
