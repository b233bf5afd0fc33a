"""The official temporalio SDK against Durata: the workflow features users rely on first."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import (
    ApplicationError,
    CancelledError,
    TerminatedError,
    WorkflowAlreadyStartedError,
)

from e2e import workflows as wf
from e2e.helpers import assert_dense, running_worker, type_names, wait_for_event, wid

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

RESULT_TIMEOUT = 60


async def test_hello_activity_and_dense_history(client: Client, task_queue: str) -> None:
    async with running_worker(client, task_queue):
        handle = await client.start_workflow(
            wf.HelloWorkflow.run, "Durata", id=wid("hello"), task_queue=task_queue,
            execution_timeout=timedelta(seconds=RESULT_TIMEOUT),
        )
        assert await handle.result() == "Hello, Durata!"
        history = await handle.fetch_history()
    types = assert_dense(history)
    assert types[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
    for expected in (
        EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
        EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
        EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
        EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
        EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED,
        EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
    ):
        assert expected in types, f"{EventType.Name(expected)} missing from {type_names(types)}"
    assert types.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED) == 1
    desc = await handle.describe()
    assert desc.status == WorkflowExecutionStatus.COMPLETED


async def test_activity_fails_twice_then_succeeds(client: Client, task_queue: str) -> None:
    key = uuid.uuid4().hex
    async with running_worker(client, task_queue):
        result = await client.execute_workflow(
            wf.RetryWorkflow.run, key, id=wid("retry"), task_queue=task_queue,
            execution_timeout=timedelta(seconds=RESULT_TIMEOUT),
        )
    assert result == 3
    assert wf.ATTEMPTS["fail_twice"][key] == 3


async def test_heartbeat_timeout_retry_sees_last_details(client: Client, task_queue: str) -> None:
    key = uuid.uuid4().hex[:8]
    async with running_worker(client, task_queue):
        result = await client.execute_workflow(
            wf.HeartbeatWorkflow.run, key, id=wid("heartbeat"), task_queue=task_queue,
            execution_timeout=timedelta(seconds=RESULT_TIMEOUT),
        )
    assert result == f"attempt=2 details=progress-of-{key}"


async def test_start_to_close_timeout(client: Client, task_queue: str) -> None:
    async with running_worker(client, task_queue):
        result = await client.execute_workflow(
            wf.StartToCloseWorkflow.run, id=wid("s2c"), task_queue=task_queue,
            execution_timeout=timedelta(seconds=RESULT_TIMEOUT),
        )
    assert result == "ActivityError/TimeoutError/START_TO_CLOSE"


async def test_timer(client: Client, task_queue: str) -> None:
    async with running_worker(client, task_queue):
        handle = await client.start_workflow(
            wf.TimerWorkflow.run, 1.0, id=wid("timer"), task_queue=task_queue,
            execution_timeout=timedelta(seconds=RESULT_TIMEOUT),
        )
        assert (await handle.result()).startswith("slept 1")
        types = assert_dense(await handle.fetch_history())
    assert EventType.EVENT_TYPE_TIMER_STARTED in types
    assert EventType.EVENT_TYPE_TIMER_FIRED in types


async def test_signal_then_query(client: Client, task_queue: str) -> None:
    async with running_worker(client, task_queue):
        handle = await client.start_workflow(
            wf.SignalQueryWorkflow.run, id=wid("sigq"), task_queue=task_queue,
            execution_timeout=timedelta(seconds=RESULT_TIMEOUT),
        )
        await handle.signal(wf.SignalQueryWorkflow.add, "one")
        await handle.signal(wf.SignalQueryWorkflow.add, "two")
        assert await handle.query(wf.SignalQueryWorkflow.get_items) == ["one", "two"]
        await handle.signal(wf.SignalQueryWorkflow.finish)
        assert await handle.result() == ["one", "two"]
        types = assert_dense(await handle.fetch_history())
    assert types.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED) == 3


async def test_signal_with_start(client: Client, task_queue: str) -> None:
    workflow_id = wid("sws")
    async with running_worker(client, task_queue):
        handle = await client.start_workflow(
            wf.SignalQueryWorkflow.run, id=workflow_id, task_queue=task_queue,
            start_signal="add", start_signal_args=["first"],
            execution_timeout=timedelta(seconds=RESULT_TIMEOUT),
        )
        # A second signal-with-start on the running workflow signals the same run.
        again = await client.start_workflow(
            wf.SignalQueryWorkflow.run, id=workflow_id, task_queue=task_queue,
            start_signal="add", start_signal_args=["second"],
        )
        assert again.result_run_id == handle.result_run_id
        await handle.signal(wf.SignalQueryWorkflow.finish)
        assert await handle.result() == ["first", "second"]


async def test_cancel_is_seen_by_the_workflow(client: Client, task_queue: str) -> None:
    workflow_id = wid("cancel")
    async with running_worker(client, task_queue):
        handle = await client.start_workflow(
            wf.WaitForeverWorkflow.run, id=workflow_id, task_queue=task_queue,
            execution_timeout=timedelta(seconds=RESULT_TIMEOUT),
        )
        # Make sure the first workflow task ran, so the cancellation reaches running workflow code.
        await wait_for_event(handle, EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
    assert isinstance(info.value.cause, CancelledError)
    assert workflow_id in wf.CLEANUPS  # the workflow caught asyncio.CancelledError and ran its cleanup
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED


async def test_terminate(client: Client, task_queue: str) -> None:
    async with running_worker(client, task_queue):
        handle = await client.start_workflow(
            wf.WaitForeverWorkflow.run, id=wid("terminate"), task_queue=task_queue,
            execution_timeout=timedelta(seconds=RESULT_TIMEOUT),
        )
        await handle.terminate("enough")
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
    assert isinstance(info.value.cause, TerminatedError)
    desc = await handle.describe()
    assert desc.status == WorkflowExecutionStatus.TERMINATED
    types = assert_dense(await handle.fetch_history())
    assert types[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED


async def test_workflow_failure_reaches_the_client(client: Client, task_queue: str) -> None:
    async with running_worker(client, task_queue):
        with pytest.raises(WorkflowFailureError) as info:
            await client.execute_workflow(
                wf.FailingWorkflow.run, "it broke", id=wid("fail"), task_queue=task_queue,
                execution_timeout=timedelta(seconds=RESULT_TIMEOUT),
            )
    cause = info.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.message == "it broke"
    assert cause.type == "E2EFailure"


async def test_duplicate_workflow_id_rejected(client: Client, task_queue: str) -> None:
    workflow_id = wid("dup")
    handle = await client.start_workflow(
        wf.WaitForeverWorkflow.run, id=workflow_id, task_queue=task_queue,
        execution_timeout=timedelta(seconds=RESULT_TIMEOUT),
    )
    try:
        with pytest.raises(WorkflowAlreadyStartedError) as info:
            await client.start_workflow(wf.WaitForeverWorkflow.run, id=workflow_id, task_queue=task_queue)
        assert info.value.workflow_id == workflow_id
    finally:
        await handle.terminate("test cleanup")
