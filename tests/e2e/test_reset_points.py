"""Auto-reset points with the official SDK: each worker build that completes a workflow task of a run gets one
point in DescribeWorkflowExecution, and resetting to a point's event undoes what that build did. (The SDK sends
its build id as the binary checksum, since Durata does not advertise build-id versioning; it is kept as both.
The CLI's ``reset --type BuildId`` is a batch operation, the schedules/batch issue's.)"""

from __future__ import annotations

import uuid

import pytest
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.worker import Worker

from e2e.deployments import Deployment
from e2e.helpers import wait_until, wid
from e2e.reset_workflows import CollectSignals

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


async def _points(client: Client, workflow_id: str, run_id: str | None = None) -> list[tuple[str, str, int, bool]]:
    desc = await client.get_workflow_handle(workflow_id, run_id=run_id).describe()
    return [
        (p.build_id, p.run_id, p.first_workflow_task_completed_id, p.resettable)
        for p in desc.raw_description.workflow_execution_info.auto_reset_points.points
    ]


async def test_one_point_per_build(deployment: Deployment, client: Client) -> None:
    tq = f"reset-points-{uuid.uuid4()}"
    async with Worker(client, task_queue=tq, workflows=[CollectSignals], build_id="build-one"):
        h = await client.start_workflow(CollectSignals.run, 3, id=wid("points"), task_queue=tq)
        await wait_until(lambda: _points(client, h.id), 30, "first reset point")
        await h.signal(CollectSignals.add, "a")
        await wait_until(lambda: _signal_seen(client, h.id), 30, "the signal's WFT completed")
    assert await _points(client, h.id) == [("build-one", h.result_run_id, 4, True)]
    async with Worker(client, task_queue=tq, workflows=[CollectSignals], build_id="build-two"):
        await h.signal(CollectSignals.add, "b")
        await h.signal(CollectSignals.add, "c")
        assert await h.result() == ["a", "b", "c"]
    points = await _points(client, h.id)
    assert [(b, r) for b, r, _, _ in points] == [("build-one", h.result_run_id), ("build-two", h.result_run_id)]
    assert points[1][2] > 4


async def _signal_seen(client: Client, workflow_id: str) -> bool:
    events = [e async for e in client.get_workflow_handle(workflow_id).fetch_history_events()]
    return sum(1 for e in events if e.HasField("workflow_task_completed_event_attributes")) >= 2


async def test_reset_to_a_builds_first_task(deployment: Deployment, client: Client) -> None:
    tq = f"reset-build-{uuid.uuid4()}"
    async with Worker(client, task_queue=tq, workflows=[CollectSignals], build_id="good-build"):
        h = await client.start_workflow(CollectSignals.run, 3, id=wid("reset-build"), task_queue=tq)
        await wait_until(lambda: _points(client, h.id), 30, "first reset point")
        await h.signal(CollectSignals.add, "a")
        await wait_until(lambda: _signal_seen(client, h.id), 30, "the signal's WFT completed")
    async with Worker(client, task_queue=tq, workflows=[CollectSignals], build_id="bad-build"):
        await h.signal(CollectSignals.add, "b")
        await h.signal(CollectSignals.add, "c")
        assert await h.result() == ["a", "b", "c"]
        bad = (await _points(client, h.id))[1]
        assert bad[0] == "bad-build"
        resp = await client.workflow_service.reset_workflow_execution(ResetWorkflowExecutionRequest(
            namespace="default", workflow_execution=WorkflowExecution(workflow_id=h.id, run_id=bad[1]),
            reason="bad build", workflow_task_finish_event_id=bad[2], request_id=str(uuid.uuid4()),
        ))
        new = client.get_workflow_handle(h.id, run_id=resp.run_id)
        # Everything before the bad build's first completed task is copied (signal "b", which caused that task,
        # included); its completion and what followed are not.
        failed = [e async for e in new.fetch_history_events() if e.HasField("workflow_task_failed_event_attributes")]
        assert failed[0].event_id == bad[2]
        # The new run keeps the good build's point, now naming the new run, and not the bad one's.
        assert [(b, r) for b, r, _, _ in await _points(client, h.id, resp.run_id)][0] == ("good-build", resp.run_id)
        # The signals the bad build saw are copied or re-applied after the cut, so the replay completes alike.
        assert await new.result() == ["a", "b", "c"]
