"""PauseWorkflowExecution / UnpauseWorkflowExecution with the official SDK and the ``temporal`` CLI: nothing of a
paused run reaches a worker (no workflow task, no activity attempt, its timer waits), signals are recorded and
delivered after the unpause, updates are refused and queries rejected, describe shows status PAUSED and the pause
info, the events are in history, and the errors are Temporal's.

The Python SDK (1.35) has no PAUSED member in ``temporalio.client.WorkflowExecutionStatus``, so
``handle.describe()`` / ``handle.query()`` cannot decode a paused run (as against Temporal itself): these tests use
the raw WorkflowService calls for those."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import defaultdict

import pytest
from temporalio import activity
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType, WorkflowExecutionStatus
from temporalio.api.query.v1 import WorkflowQuery
from temporalio.api.workflowservice.v1 import (
    DescribeWorkflowExecutionRequest,
    DescribeWorkflowExecutionResponse,
    ListWorkflowExecutionsRequest,
    PauseWorkflowExecutionRequest,
    QueryWorkflowRequest,
    UnpauseWorkflowExecutionRequest,
)
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from e2e.deployments import Deployment
from e2e.helpers import wait_until, wid
from e2e.test_temporal_cli import TEMPORAL, parse_json, temporal
from e2e.workflow_pause_workflows import Pausable, SleepThenReturn, WaitForFinish

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]
TQ = "workflow-pause-tq"
PAUSED = WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_PAUSED
RUNNING = WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING

GATES: dict[str, asyncio.Event] = defaultdict(asyncio.Event)
STARTED: dict[str, int] = defaultdict(int)


@activity.defn(name="gated")
async def gated(key: str) -> str:
    STARTED[key] += 1
    await GATES[key].wait()
    return "act-done"


async def pause(client: Client, workflow_id: str, *, request_id: str = "", identity: str = "op", run_id: str = "") -> None:
    await client.workflow_service.pause_workflow_execution(
        PauseWorkflowExecutionRequest(
            namespace="default", workflow_id=workflow_id, run_id=run_id, identity=identity, reason="maintenance",
            request_id=request_id or str(uuid.uuid4()),
        )
    )


async def unpause(client: Client, workflow_id: str, *, identity: str = "op2") -> None:
    await client.workflow_service.unpause_workflow_execution(
        UnpauseWorkflowExecutionRequest(
            namespace="default", workflow_id=workflow_id, identity=identity, reason="done", request_id=str(uuid.uuid4())
        )
    )


async def describe(client: Client, workflow_id: str) -> DescribeWorkflowExecutionResponse:
    return await client.workflow_service.describe_workflow_execution(
        DescribeWorkflowExecutionRequest(namespace="default", execution=WorkflowExecution(workflow_id=workflow_id))
    )


async def event_types(h: WorkflowHandle) -> list[int]:  # type: ignore[type-arg]
    return [int(e.event_type) for e in (await h.fetch_history()).events]


async def rpc_error(call: object) -> RPCError:
    with pytest.raises(RPCError) as e:
        await call  # type: ignore[misc]
    return e.value


async def test_pause_holds_the_run_and_unpause_resumes_it(deployment: Deployment, client: Client) -> None:
    key = wid("pause")
    async with Worker(client, task_queue=TQ, workflows=[Pausable], activities=[gated]):
        h = await client.start_workflow(Pausable.run, key, id=key, task_queue=TQ)
        await wait_until(lambda: asyncio.sleep(0, result=STARTED[key] == 1), 30, "activity started")
        await pause(client, key)

        desc = await describe(client, key)
        assert desc.workflow_execution_info.status == PAUSED
        assert not desc.workflow_execution_info.HasField("close_time")
        info = desc.workflow_extended_info.pause_info
        assert (info.identity, info.reason) == ("op", "maintenance") and info.HasField("paused_time")

        # The running attempt may still finish; a signal is recorded. Neither gets a workflow task.
        await h.signal(Pausable.add, "a")
        GATES[key].set()

        async def activity_completed() -> bool:
            return EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED in await event_types(h)

        await wait_until(activity_completed, 30, "activity completion recorded")
        await asyncio.sleep(1.5)
        types = await event_types(h)
        after_pause = types[types.index(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_PAUSED):]
        assert EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED not in after_pause
        assert EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED in after_pause
        assert EventType.EVENT_TYPE_TIMER_STARTED not in types
        assert (await describe(client, key)).workflow_execution_info.status == PAUSED

        async def listed_as_paused() -> bool:
            resp = await client.workflow_service.list_workflow_executions(ListWorkflowExecutionsRequest(
                namespace="default", query=f"WorkflowId = '{key}' AND ExecutionStatus = 'Paused'"
            ))
            return [e.execution.workflow_id for e in resp.executions] == [key]

        await wait_until(listed_as_paused, 30, "visibility lists the run as Paused")

        # Updates are refused, queries rejected with status PAUSED.
        err = await rpc_error(h.execute_update(Pausable.touch, "x"))
        assert err.status == RPCStatusCode.FAILED_PRECONDITION and err.message == "Workflow is paused. Cannot update the workflow."
        q = await client.workflow_service.query_workflow(
            QueryWorkflowRequest(namespace="default", execution=WorkflowExecution(workflow_id=key), query=WorkflowQuery(query_type="seen"))
        )
        assert q.query_rejected.status == PAUSED

        await unpause(client, key)
        assert (await describe(client, key)).workflow_execution_info.status == RUNNING
        assert not (await describe(client, key)).workflow_extended_info.HasField("pause_info")
        assert await h.query(Pausable.seen) == ["a"]
        assert await h.execute_update(Pausable.touch, "y") == "touched:y"
        await h.signal(Pausable.add, "finish")
        assert await h.result() == "act-done|a,finish"

    events = (await h.fetch_history()).events
    paused = [e for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_PAUSED]
    unpaused = [e for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UNPAUSED]
    assert len(paused) == 1 and len(unpaused) == 1
    assert paused[0].worker_may_ignore and unpaused[0].worker_may_ignore
    assert paused[0].workflow_execution_paused_event_attributes.identity == "op"
    assert paused[0].workflow_execution_paused_event_attributes.reason == "maintenance"
    assert unpaused[0].workflow_execution_unpaused_event_attributes.identity == "op2"
    assert paused[0].event_id < unpaused[0].event_id
    assert STARTED[key] == 1


async def test_timer_fires_while_paused_but_the_workflow_waits(deployment: Deployment, client: Client) -> None:
    key = wid("pause-timer")
    async with Worker(client, task_queue=TQ, workflows=[SleepThenReturn]):
        h = await client.start_workflow(SleepThenReturn.run, id=key, task_queue=TQ)

        async def has(event_type: int) -> bool:
            return event_type in await event_types(h)

        await wait_until(lambda: has(EventType.EVENT_TYPE_TIMER_STARTED), 30, "timer started")
        await pause(client, key)
        await wait_until(lambda: has(EventType.EVENT_TYPE_TIMER_FIRED), 30, "timer fired")
        await asyncio.sleep(1.0)
        types = await event_types(h)
        assert EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED not in types[types.index(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_PAUSED):]
        assert (await describe(client, key)).workflow_execution_info.status == PAUSED
        await unpause(client, key)
        assert await h.result() == "slept"


async def test_pause_before_any_worker_then_unpause(deployment: Deployment, client: Client) -> None:
    """The first workflow task was never delivered: pausing fails it; unpausing schedules a fresh one."""
    key = wid("pause-first")
    tq = f"{TQ}-{key}"
    h = await client.start_workflow(WaitForFinish.run, id=key, task_queue=tq)
    await pause(client, key)
    types = await event_types(h)
    assert types == [
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
        EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_PAUSED,
    ]
    await unpause(client, key)
    async with Worker(client, task_queue=tq, workflows=[WaitForFinish]):
        await h.signal(WaitForFinish.finish)
        assert await h.result() == "finished"


async def test_pause_errors(deployment: Deployment, client: Client) -> None:
    key = wid("pause-err")
    h = await client.start_workflow(WaitForFinish.run, id=key, task_queue=f"{TQ}-idle")

    err = await rpc_error(unpause(client, key))
    assert (err.status, err.message) == (RPCStatusCode.FAILED_PRECONDITION, "workflow is not paused.")
    await pause(client, key, request_id="same")
    await pause(client, key, request_id="same")  # a retried request is a no-op
    assert (await event_types(h)).count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_PAUSED) == 1
    err = await rpc_error(pause(client, key, request_id="other"))
    assert (err.status, err.message) == (RPCStatusCode.FAILED_PRECONDITION, "workflow is already paused.")

    err = await rpc_error(pause(client, key, identity="i" * 1001))
    assert (err.status, err.message) == (RPCStatusCode.INVALID_ARGUMENT, "identity is too long.")
    err = await rpc_error(unpause(client, key, identity="i" * 1001))
    assert (err.status, err.message) == (RPCStatusCode.INVALID_ARGUMENT, "identity is too long.")
    err = await rpc_error(pause(client, key, run_id="not-a-uuid"))
    assert (err.status, err.message) == (RPCStatusCode.INVALID_ARGUMENT, "RunId is not valid UUID.")
    err = await rpc_error(pause(client, wid("no-such-workflow")))
    assert err.status == RPCStatusCode.NOT_FOUND

    # A paused run can still be terminated; a closed run cannot be paused or unpaused.
    await h.terminate("while paused")
    assert (await describe(client, key)).workflow_execution_info.status == WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_TERMINATED
    for call in (pause(client, key), unpause(client, key)):
        err = await rpc_error(call)
        assert (err.status, err.message) == (RPCStatusCode.NOT_FOUND, "workflow execution already completed")


async def cli_error(dep: Deployment, *args: str) -> tuple[int, str]:
    """Run the CLI expecting a failure: (exit code, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        TEMPORAL, *args, "--address", dep.address, "--namespace", "default", "--color", "never",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ, "HOME": str(dep.workdir)},
    )
    _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    return proc.returncode or 0, err.decode()


async def test_pause_and_unpause_with_the_cli(deployment: Deployment, client: Client) -> None:
    key = wid("pause-cli")
    async with Worker(client, task_queue=TQ, workflows=[WaitForFinish]):
        h = await client.start_workflow(WaitForFinish.run, id=key, task_queue=TQ)

        async def first_task_done() -> bool:
            return EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED in await event_types(h)

        await wait_until(first_task_done, 30, "first workflow task completed")
        await temporal(deployment, "workflow", "pause", "--workflow-id", key, "--reason", "from the cli")
        desc = await describe(client, key)
        assert desc.workflow_execution_info.status == PAUSED
        assert desc.workflow_extended_info.pause_info.reason == "from the cli"
        shown = parse_json(await temporal(deployment, "workflow", "describe", "--workflow-id", key, "-o", "json"))
        assert "PAUSED" in str(shown.get("workflowExecutionInfo", {}).get("status", "")).upper()

        code, err = await cli_error(deployment, "workflow", "pause", "--workflow-id", key)
        assert code != 0 and "workflow is already paused." in err
        await h.signal(WaitForFinish.finish)
        await asyncio.sleep(1.0)
        assert (await describe(client, key)).workflow_execution_info.status == PAUSED

        await temporal(deployment, "workflow", "unpause", "--workflow-id", key, "--reason", "resume")
        assert await h.result() == "finished"
