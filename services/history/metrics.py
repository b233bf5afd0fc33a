"""Light Prometheus metrics of the history service."""

from __future__ import annotations

from prometheus_client import Counter

WORKFLOW_TASK_OUTCOMES = Counter(
    "durata_history_workflow_task_outcomes_total", "Workflow task completions by outcome", ["outcome"]
)
TASKS_PROCESSED = Counter(
    "durata_history_queue_tasks_total", "History queue tasks processed", ["category", "result"]
)


def workflow_task_outcome(outcome: str) -> None:
    WORKFLOW_TASK_OUTCOMES.labels(outcome).inc()


def task_processed(category: str, result: str) -> None:
    TASKS_PROCESSED.labels(category, result).inc()
