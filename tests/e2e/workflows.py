"""Workflows and activities for the e2e tests (module level, as the temporalio sandbox requires).

Activities run in the test process, so they record what happened in module-level dicts the tests read.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

# activity name -> key -> number of attempts seen (the tests' view of at-least-once delivery)
ATTEMPTS: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
CLEANUPS: list[str] = []
FAST_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=100), backoff_coefficient=1.0,
                         maximum_interval=timedelta(milliseconds=100), maximum_attempts=5)


@activity.defn
async def say_hello(name: str) -> str:
    return f"Hello, {name}!"


@activity.defn
async def fail_twice(key: str) -> int:
    ATTEMPTS["fail_twice"][key] += 1
    attempt = activity.info().attempt
    if attempt < 3:
        raise ApplicationError(f"attempt {attempt} fails on purpose")
    return attempt


@activity.defn
async def heartbeat_then_stall(key: str) -> str:
    """Attempt 1 heartbeats once and stalls past the heartbeat timeout; attempt 2 returns what it inherits."""
    info = activity.info()
    ATTEMPTS["heartbeat"][key] += 1
    if info.attempt == 1:
        activity.heartbeat(f"progress-of-{key}")
        await asyncio.sleep(60)  # cancelled by the worker once the server times the attempt out
        return "stalled attempt should not win"
    details = list(info.heartbeat_details)
    return f"attempt={info.attempt} details={details[0] if details else None}"


@activity.defn
async def sleep_for(seconds: float) -> str:
    ATTEMPTS["sleep_for"][activity.info().workflow_id or ""] += 1
    await asyncio.sleep(seconds)
    return f"slept {seconds}"


@activity.defn
async def record_cleanup(workflow_id: str) -> None:
    CLEANUPS.append(workflow_id)


ACTIVITIES = [say_hello, fail_twice, heartbeat_then_stall, sleep_for, record_cleanup]


@workflow.defn
class HelloWorkflow:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(say_hello, name, start_to_close_timeout=timedelta(seconds=10))


@workflow.defn
class RetryWorkflow:
    @workflow.run
    async def run(self, key: str) -> int:
        return await workflow.execute_activity(
            fail_twice, key, start_to_close_timeout=timedelta(seconds=10), retry_policy=FAST_RETRY
        )


@workflow.defn
class HeartbeatWorkflow:
    @workflow.run
    async def run(self, key: str) -> str:
        return await workflow.execute_activity(
            heartbeat_then_stall, key,
            start_to_close_timeout=timedelta(seconds=30),
            heartbeat_timeout=timedelta(seconds=2),
            retry_policy=FAST_RETRY,
        )


@workflow.defn
class StartToCloseWorkflow:
    """Reports how the activity failed: the client checks it was a start-to-close timeout."""

    @workflow.run
    async def run(self) -> str:
        try:
            await workflow.execute_activity(
                sleep_for, 10.0, start_to_close_timeout=timedelta(seconds=1),
                retry_policy=RetryPolicy(maximum_attempts=1),
            )
        except ActivityError as err:
            cause = err.cause
            kind = getattr(cause, "type", None)
            return f"{type(err).__name__}/{type(cause).__name__}/{getattr(kind, 'name', kind)}"
        return "no error"


@workflow.defn
class TimerWorkflow:
    @workflow.run
    async def run(self, seconds: float) -> str:
        start = workflow.now()
        await workflow.sleep(seconds)
        return f"slept {(workflow.now() - start).total_seconds():.1f}"


@workflow.defn
class SignalQueryWorkflow:
    def __init__(self) -> None:
        self.items: list[str] = []
        self.done = False

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.wait_condition(lambda: self.done)
        return self.items

    @workflow.signal
    def add(self, item: str) -> None:
        self.items.append(item)

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.query
    def get_items(self) -> list[str]:
        return self.items


@workflow.defn
class WaitForeverWorkflow:
    """Waits until cancelled; on cancellation runs a cleanup activity, then lets the cancellation through."""

    @workflow.run
    async def run(self) -> None:
        try:
            await workflow.wait_condition(lambda: False)
        except asyncio.CancelledError:
            await workflow.execute_activity(
                record_cleanup, workflow.info().workflow_id, start_to_close_timeout=timedelta(seconds=10)
            )
            raise


@workflow.defn
class FailingWorkflow:
    @workflow.run
    async def run(self, message: str) -> None:
        raise ApplicationError(message, type="E2EFailure", non_retryable=True)


@workflow.defn
class LongActivityWorkflow:
    """For crash tests: one activity that runs for a while, then a timer."""

    @workflow.run
    async def run(self, seconds: float) -> str:
        out = await workflow.execute_activity(
            sleep_for, seconds, start_to_close_timeout=timedelta(seconds=60), retry_policy=FAST_RETRY
        )
        await workflow.sleep(0.5)
        return out


WORKFLOWS = [
    HelloWorkflow, RetryWorkflow, HeartbeatWorkflow, StartToCloseWorkflow, TimerWorkflow, SignalQueryWorkflow,
    WaitForeverWorkflow, FailingWorkflow, LongActivityWorkflow,
]
