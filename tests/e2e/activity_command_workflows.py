"""Workflows for tests/e2e/test_activity_commands.py."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy


@workflow.defn
class RunBeater:
    """Runs the heartbeating activity ``beater`` with id "beat" and returns its result."""

    @workflow.run
    async def run(self, key: str) -> str:
        result: str = await workflow.execute_activity(
            "beater", key, activity_id="beat",
            start_to_close_timeout=timedelta(seconds=60), heartbeat_timeout=timedelta(seconds=20),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=300), backoff_coefficient=1.0),
        )
        return result


@workflow.defn
class ScheduleElsewhere:
    """Schedules activity "remote" on a queue nobody polls, so it stays pending (test_batch_operations)."""

    @workflow.run
    async def run(self, task_queue: str) -> str:
        result: str = await workflow.execute_activity(
            "remote", task_queue=task_queue, start_to_close_timeout=timedelta(seconds=600)
        )
        return result
