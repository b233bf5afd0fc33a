"""Async activity completion, deadlock detection, unfinished-handler warnings, workflow-task heartbeats for long
local activities."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import timedelta

import pytest
from durata import activity, workflow
from durata.client import AsyncActivityCancelledError, WorkflowUpdateStage
from durata.common import RetryPolicy
from durata.exceptions import ActivityError, ApplicationError
from durata.worker import Replayer, Worker
from temporalio.api.enums.v1.event_type_pb2 import EventType

from .conftest import wait_for
from .workflows import compose_sync

# ---------------------------------------------------------------- async activity completion

_pending: dict[str, activity.Info] = {}


@activity.defn
async def complete_later() -> str:
    info = activity.info()
    _pending[info.workflow_id] = info
    activity.raise_complete_async()


@workflow.defn
class AsyncCompletionWorkflow:
    def __init__(self) -> None:
        self.cancel_requested = False

    @workflow.signal
    def cancel_activity(self) -> None:
        self.cancel_requested = True

    @workflow.run
    async def run(self) -> str:
        handle = workflow.start_activity(
            complete_later, start_to_close_timeout=timedelta(seconds=60), retry_policy=RetryPolicy(maximum_attempts=1),
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED)
        await workflow.wait_condition(lambda: handle.done() or self.cancel_requested)
        if not handle.done():
            handle.cancel()
        try:
            return f"completed: {await handle}"
        except ActivityError as err:
            cause = err.cause
            return f"{type(cause).__name__}: {getattr(cause, 'message', '')} {list(getattr(cause, 'details', []))}"


async def _started(client, task_queue: str) -> tuple[object, activity.Info]:
    handle = await client.start_workflow(AsyncCompletionWorkflow.run, id=f"async-{uuid.uuid4()}",
                                         task_queue=task_queue)
    info = await wait_for(lambda: _pending.get(handle.id))
    return handle, info


def _async_worker(client, task_queue: str) -> Worker:
    return Worker(client, task_queue=task_queue, workflows=[AsyncCompletionWorkflow], activities=[complete_later])


async def test_async_activity_complete_by_task_token(client, task_queue):
    async with _async_worker(client, task_queue):
        handle, info = await _started(client, task_queue)
        assert info.task_token
        act = client.get_async_activity_handle(task_token=info.task_token)
        await act.heartbeat("working")
        await act.complete("from outside")
        assert await handle.result() == "completed: from outside"


async def test_async_activity_fail_by_ids(client, task_queue):
    async with _async_worker(client, task_queue):
        handle, info = await _started(client, task_queue)
        act = client.get_async_activity_handle(workflow_id=info.workflow_id, run_id=info.workflow_run_id,
                                               activity_id=info.activity_id)
        await act.heartbeat("progress", 1)
        await act.fail(ApplicationError("gave up", "why", type="External", non_retryable=True))
        assert await handle.result() == "ApplicationError: gave up ['why']"


async def test_async_activity_report_cancellation(client, task_queue):
    async with _async_worker(client, task_queue):
        handle, info = await _started(client, task_queue)
        act = client.get_async_activity_handle(task_token=info.task_token)
        await handle.signal(AsyncCompletionWorkflow.cancel_activity)

        async def cancelled() -> bool:
            try:
                await act.heartbeat()
            except AsyncActivityCancelledError:
                return True
            return False

        await wait_for(cancelled)
        await act.report_cancellation("bye")
        assert await handle.result() == "CancelledError: Activity cancelled ['bye']"
    with pytest.raises(ValueError, match="Task token cannot be present"):
        client.get_async_activity_handle(task_token=b"x", activity_id="a")


# ---------------------------------------------------------------- deadlock detection

_deadlocked: set[str] = set()


@workflow.defn
class DeadlockWorkflow:
    @workflow.run
    async def run(self) -> str:
        wid = workflow.info().workflow_id
        if wid not in _deadlocked:  # the first attempt blocks the workflow thread (never do this in a workflow)
            _deadlocked.add(wid)
            time.sleep(3)  # noqa: ASYNC251 - the deadlock under test
        return "recovered"


async def test_deadlock_fails_the_workflow_task(client, task_queue):
    async with Worker(client, task_queue=task_queue, workflows=[DeadlockWorkflow], activities=[compose_sync]):
        handle = await client.start_workflow(DeadlockWorkflow.run, id=f"deadlock-{uuid.uuid4()}",
                                             task_queue=task_queue)
        started = time.monotonic()
        assert await handle.result() == "recovered"
        assert time.monotonic() - started < 15
    failures = [e.workflow_task_failed_event_attributes.failure async for e in handle.fetch_history_events()
                if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]
    assert len(failures) == 1
    assert "Potential deadlock detected" in failures[0].message
    assert "DeadlockWorkflow" in failures[0].message and handle.id in failures[0].message
    assert "time.sleep(3)" in failures[0].stack_trace  # the blocked thread's stack


_interrupted: set[str] = set()


@workflow.defn
class BusyLoopWorkflow:
    @workflow.run
    async def run(self) -> str:
        wid = workflow.info().workflow_id
        if wid not in _deadlocked:
            _deadlocked.add(wid)
            try:
                while True:  # spins until the worker interrupts the deadlocked thread
                    pass
            finally:
                _interrupted.add(wid)
        return "recovered"


async def test_deadlocked_busy_loop_is_interrupted(client, task_queue):
    async with Worker(client, task_queue=task_queue, workflows=[BusyLoopWorkflow], activities=[compose_sync]):
        handle = await client.start_workflow(BusyLoopWorkflow.run, id=f"busy-{uuid.uuid4()}", task_queue=task_queue)
        assert await handle.result() == "recovered"
        await wait_for(lambda: handle.id in _interrupted, timeout=5)


# ---------------------------------------------------------------- unfinished handlers


@workflow.defn
class UnfinishedHandlersWorkflow:
    def __init__(self) -> None:
        self.started = 0

    @workflow.update
    async def slow_update(self) -> str:
        self.started += 1
        await asyncio.sleep(3600)
        return "late"

    @workflow.signal
    async def slow_signal(self) -> None:
        self.started += 1
        await asyncio.sleep(3600)

    @workflow.signal(unfinished_policy=workflow.HandlerUnfinishedPolicy.ABANDON)
    async def quiet_signal(self) -> None:
        self.started += 1
        await asyncio.sleep(3600)

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.started >= 3)
        return "done"


async def test_warning_when_finishing_with_running_handlers(client, task_queue, caplog, recwarn):
    caplog.set_level(logging.WARNING, logger="durata.worker")
    async with Worker(client, task_queue=task_queue, workflows=[UnfinishedHandlersWorkflow],
                      activities=[compose_sync]):
        handle = await client.start_workflow(UnfinishedHandlersWorkflow.run, id=f"unfinished-{uuid.uuid4()}",
                                             task_queue=task_queue)
        await handle.signal(UnfinishedHandlersWorkflow.slow_signal)
        await handle.signal(UnfinishedHandlersWorkflow.quiet_signal)
        await handle.start_update(UnfinishedHandlersWorkflow.slow_update, id="upd-1",
                                  wait_for_stage=WorkflowUpdateStage.ACCEPTED)
        assert await handle.result() == "done"
    msgs = [r.getMessage() for r in caplog.records if "[TMPRL1102]" in r.getMessage()]
    updates = [m for m in msgs if "update handlers are still running" in m]
    signals = [m for m in msgs if "signal handlers are still running" in m]
    assert len(updates) == 1 and len(signals) == 1
    assert handle.id in updates[0] and '{"name": "slow_update", "id": "upd-1"}' in updates[0]
    assert '{"name": "slow_signal", "count": 1}' in signals[0] and "quiet_signal" not in signals[0]
    categories = {w.category for w in recwarn}  # also warnings.warn'ed, like temporalio
    assert {workflow.UnfinishedUpdateHandlersWarning, workflow.UnfinishedSignalHandlersWarning} <= categories


# ---------------------------------------------------------------- long local activities


@activity.defn
async def slow_local(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return f"slept {seconds}"


@workflow.defn
class LongLocalActivityWorkflow:
    def __init__(self) -> None:
        self.signals: list[str] = []

    @workflow.signal
    def note(self, value: str) -> None:
        self.signals.append(value)

    @workflow.run
    async def run(self) -> list:
        regular = workflow.start_activity(compose_sync, "meanwhile", start_to_close_timeout=timedelta(seconds=10))
        slow = await workflow.execute_local_activity(slow_local, 4.0, start_to_close_timeout=timedelta(seconds=30))
        return [slow, await regular, self.signals]


async def test_long_local_activity_heartbeats_the_workflow_task(client, task_queue):
    async with Worker(client, task_queue=task_queue, workflows=[LongLocalActivityWorkflow],
                      activities=[slow_local, compose_sync]):
        handle = await client.start_workflow(LongLocalActivityWorkflow.run, id=f"longla-{uuid.uuid4()}",
                                             task_queue=task_queue, task_timeout=timedelta(seconds=2))
        await asyncio.sleep(1)
        await handle.signal(LongLocalActivityWorkflow.note, "during")  # delivered by a heartbeat's new task
        assert await handle.result() == ["slept 4.0", "sync hello, meanwhile", ["during"]]
    history = await handle.fetch_history()
    types = [e.event_type for e in history.events]
    assert EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT not in types
    assert EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED not in types
    marker = types.index(EventType.EVENT_TYPE_MARKER_RECORDED)
    # Heartbeats at ~1.6 s and ~3.2 s: the activity was scheduled by the first one, before the marker.
    assert types[:marker].count(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED) >= 3
    assert types.index(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED) < marker
    assert types.index(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED) < marker
    await Replayer(workflows=[LongLocalActivityWorkflow]).replay_workflow(history)
