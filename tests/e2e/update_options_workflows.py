"""Workflows for tests/e2e/test_update_options.py."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError


@workflow.defn
class SlowRetry:
    """Runs ``flaky`` (fails on attempt 1) with a one-hour retry interval: it only completes soon if an operator
    shortens the retry policy."""

    @workflow.run
    async def run(self, key: str) -> str:
        result: str = await workflow.execute_activity(
            "flaky", key, activity_id="flaky",
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=RetryPolicy(initial_interval=timedelta(hours=1), backoff_coefficient=1.0),
        )
        return result


@workflow.defn
class LongSleep:
    """Runs ``sleeper`` (never returns by itself) once with a 60 s start-to-close timeout; reports a timeout."""

    @workflow.run
    async def run(self, key: str) -> str:
        try:
            await workflow.execute_activity(
                "sleeper", key, activity_id="sleeper",
                start_to_close_timeout=timedelta(seconds=60),
                retry_policy=RetryPolicy(maximum_attempts=1),
            )
        except ActivityError as e:
            return f"failed: {e.cause}"
        return "completed"
