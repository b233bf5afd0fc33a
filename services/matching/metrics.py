"""Prometheus metrics of the matching service (registered once per process on the shared registry)."""

from __future__ import annotations

import contextlib
from typing import Any

from prometheus_client import Counter, Gauge

from server.metrics import REGISTRY

TASKS_ADDED = Counter(
    "durata_matching_tasks_added",
    "Tasks added to task queues, by task type and how they were placed (sync, backlog, sticky_unavailable)",
    ["task_type", "outcome"],
    registry=REGISTRY,
)
TASKS_DISPATCHED = Counter(
    "durata_matching_tasks_dispatched",
    "Tasks handed to pollers after History recorded them started, by task type and source (sync, backlog, query)",
    ["task_type", "source"],
    registry=REGISTRY,
)
POLL_OUTCOMES = Counter(
    "durata_matching_poll_outcomes",
    "Finished polls by task type and outcome (task, empty, cancelled, error); stale = tasks dropped during polls",
    ["task_type", "outcome"],
    registry=REGISTRY,
)
BACKLOG_SIZE = Gauge(
    "durata_matching_backlog_size",
    "Approximate number of persisted tasks not yet delivered, per loaded task queue",
    ["namespace_id", "task_queue", "task_type"],
    registry=REGISTRY,
)
LOADED_QUEUES = Gauge(
    "durata_matching_loaded_task_queues",
    "Task queues loaded on this matching host, by kind (normal, sticky)",
    ["kind"],
    registry=REGISTRY,
)


def task_type_label(task_type: int) -> str:
    return {1: "workflow", 2: "activity", 3: "nexus"}.get(task_type, str(task_type))
PARTITION_OWNED = Gauge(
    "durata_matching_partition_owned",
    "1 for each normal task-queue partition loaded (leased) on this matching host",
    ["namespace_id", "task_queue", "task_type", "partition", "host"],
    registry=REGISTRY,
)
_owned_labels: set[tuple[str, str, str, str, str]] = set()


def set_owned_partitions(host: str, keys: list[Any]) -> None:
    """Export exactly ``keys`` (TaskQueueKeys) as this host's partitions."""
    now = {(k.namespace_id, k.name, task_type_label(k.task_type), str(k.partition), host) for k in keys}
    for labels in _owned_labels - now:
        with contextlib.suppress(KeyError):
            PARTITION_OWNED.remove(*labels)
    for labels in now - _owned_labels:
        PARTITION_OWNED.labels(*labels).set(1)
    _owned_labels.clear()
    _owned_labels.update(now)
