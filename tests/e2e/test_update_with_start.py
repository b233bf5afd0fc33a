"""Update-with-start (ExecuteMultiOperation) end to end with the official SDK and the Temporal CLI."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from temporalio.api.enums.v1 import EventType, UpdateWorkflowExecutionLifecycleStage
from temporalio.api.errordetails.v1 import message_pb2 as errordetails
from temporalio.api.failure.v1 import message_pb2 as failure_pb2
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv1
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
    WorkflowUpdateStage,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from e2e.deployments import Deployment
from e2e.helpers import wid
from e2e.test_temporal_cli import temporal
from e2e.uws_workflows import UwsCounter

pytestmark = pytest.mark.asyncio


def _op(workflow_id: str, tq: str, policy: WorkflowIDConflictPolicy, **kw: object) -> WithStartWorkflowOperation:
    return WithStartWorkflowOperation(
        UwsCounter.run, 10, id=workflow_id, task_queue=tq, id_conflict_policy=policy, **kw  # type: ignore[arg-type]
    )


async def test_start_and_update_then_use_existing(client: Client, task_queue: str) -> None:
    async with Worker(client, task_queue=task_queue, workflows=[UwsCounter]):
        w = wid("uws")
        op = _op(w, task_queue, WorkflowIDConflictPolicy.USE_EXISTING)
        assert await client.execute_update_with_start_workflow(UwsCounter.add, 1, start_workflow_operation=op) == 1
        first = await op.workflow_handle()
        # USE_EXISTING: the second call attaches its update to the running workflow.
        op2 = _op(w, task_queue, WorkflowIDConflictPolicy.USE_EXISTING)
        h = await client.start_update_with_start_workflow(
            UwsCounter.add, 5, start_workflow_operation=op2, wait_for_stage=WorkflowUpdateStage.ACCEPTED, id="u2"
        )
        assert await h.result() == 6
        assert (await op2.workflow_handle()).result_run_id == first.result_run_id
        # The same update id again: attaches to the completed update, no second increment.
        op3 = _op(w, task_queue, WorkflowIDConflictPolicy.FAIL)
        h3 = await client.start_update_with_start_workflow(
            UwsCounter.add, 5, start_workflow_operation=op3, wait_for_stage=WorkflowUpdateStage.COMPLETED, id="u2"
        )
        assert await h3.result() == 6
        await first.signal(UwsCounter.finish)
        assert await first.result() == 6
        # Closed workflow, completed update id: still answered from the closed run.
        op4 = _op(w, task_queue, WorkflowIDConflictPolicy.FAIL)
        h4 = await client.start_update_with_start_workflow(
            UwsCounter.add, 5, start_workflow_operation=op4, wait_for_stage=WorkflowUpdateStage.COMPLETED, id="u2"
        )
        assert await h4.result() == 6
        assert (await op4.workflow_handle()).result_run_id == first.result_run_id


async def test_fail_policy_gives_already_started(client: Client, task_queue: str) -> None:
    async with Worker(client, task_queue=task_queue, workflows=[UwsCounter]):
        w = wid("uws-fail")
        handle = await client.start_workflow(UwsCounter.run, 0, id=w, task_queue=task_queue)
        op = _op(w, task_queue, WorkflowIDConflictPolicy.FAIL)
        with pytest.raises(WorkflowAlreadyStartedError) as ei:
            await client.execute_update_with_start_workflow(UwsCounter.add, 1, start_workflow_operation=op)
        assert ei.value.run_id == handle.result_run_id
        with pytest.raises(WorkflowAlreadyStartedError):
            await op.workflow_handle()
        await handle.signal(UwsCounter.finish)
        assert await handle.result() == 0


async def test_terminate_existing_starts_new_run(client: Client, task_queue: str) -> None:
    async with Worker(client, task_queue=task_queue, workflows=[UwsCounter]):
        w = wid("uws-term")
        old = await client.start_workflow(UwsCounter.run, 0, id=w, task_queue=task_queue)
        op = _op(w, task_queue, WorkflowIDConflictPolicy.TERMINATE_EXISTING)
        assert await client.execute_update_with_start_workflow(UwsCounter.add, 2, start_workflow_operation=op) == 2
        new = await op.workflow_handle()
        assert new.result_run_id != old.result_run_id
        assert (await client.get_workflow_handle(w, run_id=old.result_run_id).describe()).status.name == "TERMINATED"  # type: ignore[union-attr]


async def test_reuse_policy_reject_on_closed(client: Client, task_queue: str) -> None:
    async with Worker(client, task_queue=task_queue, workflows=[UwsCounter]):
        w = wid("uws-reuse")
        h = await client.start_workflow(UwsCounter.run, 0, id=w, task_queue=task_queue)
        await h.signal(UwsCounter.finish)
        await h.result()
        op = _op(w, task_queue, WorkflowIDConflictPolicy.FAIL, id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
        with pytest.raises(WorkflowAlreadyStartedError):
            await client.execute_update_with_start_workflow(UwsCounter.add, 1, start_workflow_operation=op)
        op2 = _op(w, task_queue, WorkflowIDConflictPolicy.FAIL)  # ALLOW_DUPLICATE: a new run
        assert await client.execute_update_with_start_workflow(UwsCounter.add, 1, start_workflow_operation=op2) == 1
        assert (await op2.workflow_handle()).result_run_id != h.result_run_id


async def test_rejected_update_after_start(client: Client, task_queue: str) -> None:
    async with Worker(client, task_queue=task_queue, workflows=[UwsCounter]):
        w = wid("uws-rej")
        op = _op(w, task_queue, WorkflowIDConflictPolicy.FAIL)
        with pytest.raises(WorkflowUpdateFailedError):
            await client.execute_update_with_start_workflow(UwsCounter.add, -1, start_workflow_operation=op)
        handle = await op.workflow_handle()  # the start itself succeeded
        assert (await handle.describe()).status.name == "RUNNING"  # type: ignore[union-attr]
        events = [e async for e in handle.fetch_history_events()]
        assert not any(e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED for e in events)
        await handle.signal(UwsCounter.finish)


def _multiop(w: str, tq: str, *, update_wid: str | None = None, swap: bool = False, cron: str = "") -> wsv1.ExecuteMultiOperationRequest:
    start = wsv1.StartWorkflowExecutionRequest(
        namespace="default", workflow_id=w, workflow_type={"name": "UwsCounter"}, task_queue={"name": tq},
        request_id=str(uuid.uuid4()), cron_schedule=cron,
    )
    upd = wsv1.UpdateWorkflowExecutionRequest(namespace="default")
    upd.workflow_execution.workflow_id = update_wid or w
    upd.request.meta.update_id = "u"
    upd.request.input.name = "add"
    ops = [
        wsv1.ExecuteMultiOperationRequest.Operation(start_workflow=start),
        wsv1.ExecuteMultiOperationRequest.Operation(update_workflow=upd),
    ]
    return wsv1.ExecuteMultiOperationRequest(namespace="default", operations=ops[::-1] if swap else ops)


def _statuses(err: RPCError) -> list[errordetails.MultiOperationExecutionFailure.OperationStatus]:
    detail = errordetails.MultiOperationExecutionFailure()
    assert err.grpc_status.details[0].Unpack(detail)
    return list(detail.statuses)


async def test_validation_errors(client: Client, task_queue: str) -> None:
    svc = client.workflow_service
    with pytest.raises(RPCError) as ei:
        await svc.execute_multi_operation(_multiop(wid("v"), task_queue, swap=True))
    assert ei.value.status == RPCStatusCode.INVALID_ARGUMENT
    assert ei.value.message == "Operations have to be exactly [Start, Update]."
    with pytest.raises(RPCError) as ei:
        await svc.execute_multi_operation(wsv1.ExecuteMultiOperationRequest(namespace="default"))
    assert ei.value.message == "Operations have to be exactly [Start, Update]."

    with pytest.raises(RPCError) as ei:
        await svc.execute_multi_operation(_multiop(wid("v"), task_queue, update_wid="other"))
    assert ei.value.status == RPCStatusCode.INVALID_ARGUMENT
    assert ei.value.message == "Update-with-Start could not be executed."
    st = _statuses(ei.value)
    assert [s.code for s in st] == [RPCStatusCode.ABORTED, RPCStatusCode.INVALID_ARGUMENT]
    assert st[0].details[0].Is(failure_pb2.MultiOperationExecutionAborted.DESCRIPTOR)
    assert st[1].message == "WorkflowId is not consistent with previous operation(s)."

    with pytest.raises(RPCError) as ei:
        await svc.execute_multi_operation(_multiop(wid("v"), task_queue, cron="* * * * *"))
    st = _statuses(ei.value)
    assert [s.code for s in st] == [RPCStatusCode.INVALID_ARGUMENT, RPCStatusCode.ABORTED]
    assert st[0].message == "CronSchedule is not allowed."


async def test_already_started_status_shape(client: Client, task_queue: str) -> None:
    w = wid("shape")
    handle = await client.start_workflow(UwsCounter.run, 0, id=w, task_queue=task_queue)
    with pytest.raises(RPCError) as ei:
        await client.workflow_service.execute_multi_operation(_multiop(w, task_queue))
    assert ei.value.message == "Update-with-Start could not be executed."
    st = _statuses(ei.value)
    assert [s.code for s in st] == [RPCStatusCode.ALREADY_EXISTS, RPCStatusCode.ABORTED]
    started = errordetails.WorkflowExecutionAlreadyStartedFailure()
    assert st[0].details[0].Unpack(started) and started.run_id == handle.result_run_id
    await handle.terminate()


async def test_cli_update_with_start(dev_deployment: Deployment, task_queue: str) -> None:
    client = await Client.connect(dev_deployment.address, namespace="default")
    async with Worker(client, task_queue=task_queue, workflows=[UwsCounter]):
        w = wid("uws-cli")
        out = await temporal(
            dev_deployment, "workflow", "execute-update-with-start", "--update-name", "add", "--update-id", "c1",
            "--update-input", "3", "--workflow-id", w, "--type", "UwsCounter", "--task-queue", task_queue,
            "--id-conflict-policy", "UseExisting", "--input", "10",
        )
        assert "3" in out
        out2 = await temporal(
            dev_deployment, "workflow", "start-update-with-start", "--update-name", "add", "--update-id", "c2",
            "--update-input", "4", "--workflow-id", w, "--type", "UwsCounter", "--task-queue", task_queue,
            "--id-conflict-policy", "UseExisting", "--input", "10", "--update-wait-for-stage", "accepted",
        )
        assert "c2" in out2
        handle = client.get_workflow_handle(w)
        await handle.signal(UwsCounter.finish)
        assert await handle.result() == 7


async def test_poll_update_stages_and_deadlines(client: Client, task_queue: str) -> None:
    async with Worker(client, task_queue=task_queue, workflows=[UwsCounter]):
        w = wid("poll")
        handle = await client.start_workflow(UwsCounter.run, 0, id=w, task_queue=task_queue)
        upd = await handle.start_update(UwsCounter.slow, id="slow", wait_for_stage=WorkflowUpdateStage.ACCEPTED)
        ref = {"workflow_execution": {"workflow_id": w}, "update_id": "slow"}
        loop = asyncio.get_running_loop()
        began = loop.time()
        resp = await client.workflow_service.poll_workflow_execution_update(
            wsv1.PollWorkflowExecutionUpdateRequest(namespace="default", update_ref=ref)  # type: ignore[arg-type]
        )
        assert resp.stage == UpdateWorkflowExecutionLifecycleStage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ACCEPTED
        assert not resp.HasField("outcome") and loop.time() - began < 5
        # A short client deadline: the server waits it out instead of answering early (no hot re-poll loop).
        began = loop.time()
        with pytest.raises(WorkflowUpdateRPCTimeoutOrCancelledError):
            await upd.result(rpc_timeout=timedelta(seconds=1))
        assert loop.time() - began >= 0.9
        bad = wsv1.UpdateWorkflowExecutionRequest(namespace="default", first_execution_run_id=str(uuid.uuid4()))
        bad.workflow_execution.workflow_id = w
        bad.request.meta.update_id = "x"
        bad.request.input.name = "add"
        with pytest.raises(RPCError) as ei:
            await client.workflow_service.update_workflow_execution(bad)
        assert ei.value.status == RPCStatusCode.NOT_FOUND and ei.value.message == "workflow execution not found"
        await handle.signal(UwsCounter.finish)
        assert await upd.result() == 0


async def test_first_workflow_task_carries_the_update(client: Client, task_queue: str) -> None:
    """The update is admitted with the start (under the run's lock), so the run's very first workflow task
    delivers it: accepted and completed right after that task, with no second task for the update."""
    async with Worker(client, task_queue=task_queue, workflows=[UwsCounter]):
        for n in range(3):
            op = _op(wid(f"uws-first-{n}"), task_queue, WorkflowIDConflictPolicy.FAIL)
            assert await client.execute_update_with_start_workflow(UwsCounter.add, 2, start_workflow_operation=op) == 2
            h = await op.workflow_handle()
            types = [e.event_type async for e in h.fetch_history_events()][:6]
            assert types == [
                EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
                EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
                EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
                EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
                EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
                EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED,
            ]
            await h.signal(UwsCounter.finish)
            await h.result()
