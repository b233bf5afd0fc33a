"""Misuse produces clear errors rather than hangs."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from durata import workflow
from durata.client import WorkflowFailureError
from durata.exceptions import ActivityError, ApplicationError
from durata.worker import Worker

from .conftest import wait_for
from .workflows import ALL_ACTIVITIES, ALL_WORKFLOWS, HelloWorkflow, compose_sync


@workflow.defn
class NoTimeoutWorkflow:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity(compose_sync, "x")


@workflow.defn
class BadArgWorkflow:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity(compose_sync, object(), start_to_close_timeout=timedelta(seconds=5))


@workflow.defn
class UnknownActivityWorkflow:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity("no_such_activity", start_to_close_timeout=timedelta(seconds=5),
                                               retry_policy=__import__("durata.common").common.RetryPolicy(maximum_attempts=1))


async def _task_failure(handle) -> str | None:
    hist = await handle.fetch_history()
    for e in hist.events:
        if e.HasField("workflow_task_failed_event_attributes"):
            return e.workflow_task_failed_event_attributes.failure.message
    return None


async def test_unregistered_workflow_type(client, task_queue):
    async with Worker(client, task_queue=task_queue, workflows=ALL_WORKFLOWS, activities=ALL_ACTIVITIES):
        handle = await client.start_workflow("NoSuchWorkflow", id=f"bad-{uuid.uuid4()}", task_queue=task_queue)
        msg = await wait_for(lambda: _task_failure(handle))
    assert "NoSuchWorkflow" in msg and "not registered" in msg
    assert "HelloWorkflow" in msg and "SignalQueryUpdateWorkflow" in msg
    await handle.terminate()


async def test_missing_activity_timeout(client, task_queue):
    async with Worker(client, task_queue=task_queue, workflows=[NoTimeoutWorkflow], activities=ALL_ACTIVITIES):
        handle = await client.start_workflow(NoTimeoutWorkflow.run, id=f"bad-{uuid.uuid4()}", task_queue=task_queue)
        msg = await wait_for(lambda: _task_failure(handle))
    assert "start_to_close_timeout" in msg and "compose_sync" in msg
    await handle.terminate()


async def test_non_serializable_arguments(client, task_queue):
    with pytest.raises(TypeError, match="not serializable"):
        await client.start_workflow(HelloWorkflow.run, object(), id=f"bad-{uuid.uuid4()}", task_queue=task_queue)
    async with Worker(client, task_queue=task_queue, workflows=[BadArgWorkflow], activities=ALL_ACTIVITIES):
        handle = await client.start_workflow(BadArgWorkflow.run, id=f"bad-{uuid.uuid4()}", task_queue=task_queue)
        msg = await wait_for(lambda: _task_failure(handle))
    assert "not serializable" in msg and "object" in msg
    await handle.terminate()


async def test_unregistered_activity(client, task_queue):
    async with Worker(client, task_queue=task_queue, workflows=[UnknownActivityWorkflow], activities=ALL_ACTIVITIES):
        with pytest.raises(WorkflowFailureError) as info:
            await client.execute_workflow(UnknownActivityWorkflow.run, id=f"bad-{uuid.uuid4()}", task_queue=task_queue)
    act_err = info.value.__cause__
    assert isinstance(act_err, ActivityError)
    app = act_err.__cause__
    assert isinstance(app, ApplicationError) and app.type == "NotFoundError"
    assert "no_such_activity" in app.message and "compose_sync" in app.message


def test_activity_and_workflow_decorator_errors():
    with pytest.raises(ValueError, match="no @workflow.run"):
        @workflow.defn
        class NoRun:
            pass
    with pytest.raises(TypeError, match="not a workflow"):
        Worker.__init__  # noqa: B018 - reference only
        from durata.workflow import _get_definition

        _get_definition(object)


async def test_unknown_namespace_fails_worker_start(sdk_server, task_queue):
    from durata.client import Client

    client = await Client.connect(sdk_server.target, namespace=f"missing-{uuid.uuid4().hex[:6]}")
    worker = Worker(client, task_queue=task_queue, workflows=[HelloWorkflow])
    with pytest.raises(RuntimeError, match="not found"):
        await worker.run()
    await client.service.close()
