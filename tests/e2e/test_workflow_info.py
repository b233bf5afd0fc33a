"""What the official SDK reads about its own run, as on Temporal 1.32: UUIDv7 run ids, no timeouts when none was
set, a zero-length timer that fires at once, and an accepted update whose run completes under it failing with
Temporal's AcceptedUpdateCompletedWorkflow (not a NOT_FOUND)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from e2e.helpers import wid

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


@workflow.defn(sandboxed=False)
class Info:
    @workflow.run
    async def run(self) -> dict[str, Any]:
        await workflow.sleep(0)  # a zero timer: started, then fired at once
        info = workflow.info()
        return {
            "run_id": info.run_id,
            "execution_timeout": str(info.execution_timeout) if info.execution_timeout is not None else None,
            "run_timeout": str(info.run_timeout) if info.run_timeout is not None else None,
            "task_timeout": str(info.task_timeout),
            "suggested": info.is_continue_as_new_suggested(),
        }


async def test_info_as_on_temporal(client: Client, task_queue: str) -> None:
    async with Worker(client, task_queue=task_queue, workflows=[Info]):
        h = await client.start_workflow(Info.run, id=wid("info"), task_queue=task_queue)
        info = await asyncio.wait_for(h.result(), 30)
        timed = await client.execute_workflow(
            Info.run, id=wid("info-timed"), task_queue=task_queue, execution_timeout=timedelta(minutes=5)
        )
    assert uuid.UUID(info["run_id"]).version == 7
    assert info["execution_timeout"] is None and info["run_timeout"] is None
    assert info["task_timeout"] == "0:00:10"
    assert info["suggested"] is False
    assert timed["execution_timeout"] == "0:05:00" and timed["run_timeout"] == "0:05:00"
    types = [e.event_type for e in (await h.fetch_history()).events]
    assert EventType.EVENT_TYPE_TIMER_STARTED in types and EventType.EVENT_TYPE_TIMER_FIRED in types


@workflow.defn(sandboxed=False)
class EndsUnderUpdate:
    """Completes as soon as its update handler has started, leaving the handler unfinished."""

    def __init__(self) -> None:
        self.started = False

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.started)
        return "done"

    @workflow.update(unfinished_policy=workflow.HandlerUnfinishedPolicy.ABANDON)
    async def hold(self) -> None:
        self.started = True
        await workflow.wait_condition(lambda: False)


async def test_accepted_update_of_a_completed_run_fails_as_on_temporal(client: Client, task_queue: str) -> None:
    async with Worker(client, task_queue=task_queue, workflows=[EndsUnderUpdate]):
        h = await client.start_workflow(EndsUnderUpdate.run, id=wid("ends-under"), task_queue=task_queue)
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await asyncio.wait_for(h.execute_update(EndsUnderUpdate.hold, id="held"), 30)
        assert await h.result() == "done"
        # Asking again after the close gives the same outcome.
        with pytest.raises(WorkflowUpdateFailedError) as again:
            await asyncio.wait_for(h.get_update_handle("held").result(), 30)
    for e in (err.value, again.value):
        assert isinstance(e.cause, ApplicationError)
        assert e.cause.type == "AcceptedUpdateCompletedWorkflow"
        assert e.cause.message == "Workflow Update failed because the Workflow completed before the Update completed."


@workflow.defn(sandboxed=False)
class BuildIdSeen:
    def __init__(self) -> None:
        self.go = False

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self.go)

    @workflow.signal
    def finish(self) -> None:
        self.go = True

    @workflow.query
    def build_id(self) -> str:
        return workflow.info().get_current_build_id()


async def test_build_id_survives_replay(client: Client, task_queue: str) -> None:
    """The completing worker's build id is in its WorkflowTaskCompleted events (where the SDK reads it when
    replaying), so a worker of another build that replays the run still sees the build that ran it."""
    async with Worker(client, task_queue=task_queue, workflows=[BuildIdSeen], build_id="1.0",
                      max_cached_workflows=0):
        h = await client.start_workflow(BuildIdSeen.run, id=wid("build-id"), task_queue=task_queue)
        assert await h.query(BuildIdSeen.build_id) == "1.0"
    async with Worker(client, task_queue=task_queue, workflows=[BuildIdSeen], build_id="1.1",
                      max_cached_workflows=0):
        assert await h.query(BuildIdSeen.build_id) == "1.0"
        completed = [e async for e in h.fetch_history_events() if e.HasField("workflow_task_completed_event_attributes")]
        assert completed[0].workflow_task_completed_event_attributes.worker_version.build_id == "1.0"
        await h.signal(BuildIdSeen.finish)
        await h.result()
