"""ResetStickyTaskQueue: the run forgets its sticky worker; the next task goes to the normal queue."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType, TaskQueueKind, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    DescribeTaskQueueRequest,
    PollWorkflowTaskQueueRequest,
    ResetStickyTaskQueueRequest,
    RespondWorkflowTaskCompletedRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from e2e.helpers import wait_until, wid

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]


async def test_reset_sticky_sends_the_next_task_to_the_normal_queue(client: Client) -> None:
    svc = client.workflow_service
    queue, sticky = wid("sticky-normal"), wid("sticky-worker")
    handle = await client.start_workflow("Anything", id=wid("sticky"), task_queue=queue)
    first = await svc.poll_workflow_task_queue(PollWorkflowTaskQueueRequest(
        namespace="default", task_queue=TaskQueue(name=queue), identity="w1"))
    # Complete with a sticky queue: the run now sends its tasks to "sticky" with partial history.
    from temporalio.api.taskqueue.v1 import StickyExecutionAttributes

    await svc.respond_workflow_task_completed(RespondWorkflowTaskCompletedRequest(
        namespace="default", task_token=first.task_token, identity="w1",
        sticky_attributes=StickyExecutionAttributes(
            worker_task_queue=TaskQueue(name=sticky, normal_name=queue), schedule_to_start_timeout=Duration(seconds=60))))
    # The sticky worker is alive (a poll parked on its queue), so only the reset can move the next task away.
    sticky_queue = TaskQueue(name=sticky, kind=TaskQueueKind.TASK_QUEUE_KIND_STICKY, normal_name=queue)
    parked = asyncio.ensure_future(svc.poll_workflow_task_queue(
        PollWorkflowTaskQueueRequest(namespace="default", task_queue=sticky_queue, identity="w1"),
        timeout=timedelta(seconds=30)))

    async def sticky_poller_seen() -> bool:
        described = await svc.describe_task_queue(DescribeTaskQueueRequest(
            namespace="default", task_queue=sticky_queue, task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW))
        return bool(described.pollers)

    await wait_until(sticky_poller_seen, 10, "the sticky poll parked")
    await svc.reset_sticky_task_queue(ResetStickyTaskQueueRequest(
        namespace="default", execution=WorkflowExecution(workflow_id=handle.id)))
    await handle.signal("poke")
    # Well inside the sticky schedule-to-start timeout: only the reset can bring the task here this soon.
    second = await svc.poll_workflow_task_queue(PollWorkflowTaskQueueRequest(
        namespace="default", task_queue=TaskQueue(name=queue), identity="w2"), timeout=timedelta(seconds=5))
    assert second.task_token, "the task stayed on the forgotten sticky queue"
    assert second.history.events[0].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED  # full history
    parked.cancel()

    await handle.terminate()
    with pytest.raises(RPCError) as err:
        await svc.reset_sticky_task_queue(ResetStickyTaskQueueRequest(
            namespace="default", execution=WorkflowExecution(workflow_id=handle.id)))
    assert err.value.status == RPCStatusCode.NOT_FOUND
