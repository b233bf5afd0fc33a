"""Batch operations end to end: a system workflow on the internal worker (Durata's own SDK) applies one RPC to
every run a query or a list selects, at a rate limit, with progress in DescribeBatchOperation, stoppable, and
exactly once per run across a crash of the internal worker. Driven with the `temporal` CLI and the official SDK,
on start-dev and the PostgreSQL services."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from temporalio.api.batch.v1 import (
    BatchOperationCancellation,
    BatchOperationDeletion,
    BatchOperationReset,
    BatchOperationSignal,
    BatchOperationTermination,
    BatchOperationUnpauseActivities,
    BatchOperationUpdateWorkflowExecutionOptions,
)
from temporalio.api.common.v1 import Payloads, Priority, ResetOptions, WorkflowExecution
from temporalio.api.enums.v1 import BatchOperationState, BatchOperationType, EventType
from temporalio.api.workflow.v1 import WorkflowExecutionOptions
from temporalio.api.workflowservice.v1 import (
    DescribeBatchOperationRequest,
    DescribeBatchOperationResponse,
    ListBatchOperationsRequest,
    PauseActivityRequest,
    StartBatchOperationRequest,
    StopBatchOperationRequest,
)
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.converter import default as default_converter
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from e2e import workflows as wf
from e2e.activity_command_workflows import ScheduleElsewhere
from e2e.deployments import Deployment
from e2e.helpers import running_worker, wait_until
from e2e.test_temporal_cli import parse_json, temporal

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


async def start_idle(client: Client, prefix: str, count: int, wf_type: str = "BatchTarget") -> list[str]:
    """Runs on a queue nobody polls: they stay Running until the batch acts on them."""
    ids = [f"{prefix}-{i:04d}" for i in range(count)]
    for chunk in range(0, count, 50):
        await asyncio.gather(*(
            client.start_workflow(wf_type, id=w, task_queue=f"{prefix}-nobody") for w in ids[chunk:chunk + 50]
        ))  # fmt: skip
    return ids


async def count(client: Client, query: str) -> int:
    return (await client.count_workflows(query)).count


async def describe(client: Client, job_id: str) -> DescribeBatchOperationResponse:
    return await client.workflow_service.describe_batch_operation(
        DescribeBatchOperationRequest(namespace=client.namespace, job_id=job_id)
    )


async def finished(client: Client, job_id: str, within: float = 120) -> DescribeBatchOperationResponse:
    async def done() -> DescribeBatchOperationResponse | None:
        d = await describe(client, job_id)
        return d if d.state != BatchOperationState.BATCH_OPERATION_STATE_RUNNING else None

    result: DescribeBatchOperationResponse = await wait_until(done, within, f"batch {job_id} finished")
    return result


async def events_of(client: Client, workflow_id: str, event_type: int, run_id: str | None = None) -> int:
    history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    return sum(1 for e in history.events if e.event_type == event_type)


async def test_terminate_by_query_with_the_cli_rate_limited_over_1000_runs(
    deployment: Deployment, task_queue: str
) -> None:
    client = await Client.connect(deployment.address)
    prefix = f"bt-{uuid.uuid4().hex[:6]}"
    ids = await start_idle(client, prefix, 1000)
    query = f"WorkflowId STARTS_WITH '{prefix}'"
    await wait_until(lambda: _is(count(client, query), 1000), 60, "the runs are visible")

    began = time.monotonic()
    out = await temporal(deployment, "workflow", "terminate", "--query", query, "--reason", "cleanup", "--rps", "250",
                         "--yes")  # fmt: skip
    job_id = out.strip().split()[-1]
    # Progress shows while it runs: the total is known up front, the done count grows.
    progress = await wait_until(
        lambda: _running_with_progress(client, job_id), 30, "progress while the batch runs", interval=0.05
    )
    assert progress.total_operation_count == 1000 and 0 < progress.complete_operation_count < 1000
    done = await finished(client, job_id)
    elapsed = time.monotonic() - began
    assert done.state == BatchOperationState.BATCH_OPERATION_STATE_COMPLETED
    assert (done.total_operation_count, done.complete_operation_count, done.failure_operation_count) == (1000, 1000, 0)
    assert done.operation_type == BatchOperationType.BATCH_OPERATION_TYPE_TERMINATE_WORKFLOW
    assert done.reason == "cleanup" and done.query == query
    assert elapsed >= 3.0, f"1000 operations at 250/s took {elapsed:.1f} s"  # the rate limit held

    assert await count(client, f"{query} AND ExecutionStatus = 'Terminated'") == 1000
    for w in ids[::50]:
        assert await events_of(client, w, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED) == 1

    # The job is a system workflow: listed as a batch, never among the user's workflows.
    listed = parse_json(await temporal(deployment, "batch", "list", "-o", "json"))
    assert job_id in [j["jobId"] for j in listed]
    described = parse_json(await temporal(deployment, "batch", "describe", "--job-id", job_id, "-o", "json"))
    assert described["state"] == "BATCH_OPERATION_STATE_COMPLETED" and described["completeOperationCount"] == "1000"
    assert await count(client, f"WorkflowId = '{job_id}'") == 0


async def _running_with_progress(client: Client, job_id: str) -> DescribeBatchOperationResponse | None:
    d = await describe(client, job_id)
    running = d.state == BatchOperationState.BATCH_OPERATION_STATE_RUNNING
    return d if running and d.complete_operation_count > 0 else None


async def test_signal_cancel_delete_and_reset(deployment: Deployment, task_queue: str) -> None:
    client = await Client.connect(deployment.address)
    svc = client.workflow_service
    prefix = f"bs-{uuid.uuid4().hex[:6]}"
    targets = await start_idle(client, prefix, 6)
    await wait_until(lambda: _is(count(client, f"WorkflowId STARTS_WITH '{prefix}'"), 6), 30, "visible")

    # Signal an explicit list.
    job = f"{prefix}-signal"
    payloads = Payloads(payloads=[default_converter().payload_converter.to_payload("hello")])
    await svc.start_batch_operation(StartBatchOperationRequest(
        namespace=client.namespace, job_id=job, reason="greet",
        executions=[WorkflowExecution(workflow_id=w) for w in targets[:3]],
        signal_operation=BatchOperationSignal(signal="greet", input=payloads, identity="me"),
    ))  # fmt: skip
    done = await finished(client, job)
    assert done.complete_operation_count == 3 and done.identity == "me"
    assert [e.business_id for e in done.executions] == targets[:3]
    for w in targets:
        expected = 1 if w in targets[:3] else 0
        assert await events_of(client, w, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED) == expected

    # Cancel by query: a cancel request each.
    job = f"{prefix}-cancel"
    await svc.start_batch_operation(StartBatchOperationRequest(
        namespace=client.namespace, job_id=job, reason="stop", visibility_query=f"WorkflowId STARTS_WITH '{prefix}'",
        cancellation_operation=BatchOperationCancellation(),
    ))  # fmt: skip
    assert (await finished(client, job)).complete_operation_count == 6
    for w in targets:
        assert await events_of(client, w, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED) == 1

    # Delete an explicit list: gone from visibility and history.
    job = f"{prefix}-delete"
    await svc.start_batch_operation(StartBatchOperationRequest(
        namespace=client.namespace, job_id=job, reason="gone",
        executions=[WorkflowExecution(workflow_id=w) for w in targets[3:]], deletion_operation=BatchOperationDeletion(),
    ))  # fmt: skip
    assert (await finished(client, job)).complete_operation_count == 3
    await wait_until(lambda: _is(count(client, f"WorkflowId STARTS_WITH '{prefix}'"), 3), 30, "deleted runs gone")

    # Reset to the first workflow task: runs that a worker ran get a new run each.
    async with running_worker(client, task_queue):
        handles = [
            await client.start_workflow(wf.SignalQueryWorkflow.run, id=f"{prefix}-reset-{i}", task_queue=task_queue)
            for i in range(3)
        ]
        for h in handles:
            await h.signal(wf.SignalQueryWorkflow.add, "a")
        for h in handles:
            await wait_until(lambda h=h: h.query(wf.SignalQueryWorkflow.get_items), 30, "signal handled")
        job = f"{prefix}-reset"
        await svc.start_batch_operation(StartBatchOperationRequest(
            namespace=client.namespace, job_id=job, reason="redo",
            visibility_query=f"WorkflowId STARTS_WITH '{prefix}-reset-'",
            reset_operation=BatchOperationReset(options=ResetOptions(first_workflow_task=_empty())),
        ))  # fmt: skip
        assert (await finished(client, job)).complete_operation_count == 3
        for h in handles:
            old = await client.get_workflow_handle(h.id, run_id=h.result_run_id).describe()
            assert old.status == WorkflowExecutionStatus.TERMINATED
            new = await client.get_workflow_handle(h.id).describe()
            assert new.run_id != h.result_run_id and new.status == WorkflowExecutionStatus.RUNNING
            await client.get_workflow_handle(h.id).signal(wf.SignalQueryWorkflow.finish)
            assert await client.get_workflow_handle(h.id).result() == ["a"]  # the signal was re-applied
    for w in targets[:3]:
        await client.get_workflow_handle(w).terminate("done")


def _empty() -> Any:
    from google.protobuf.empty_pb2 import Empty

    return Empty()


async def test_stop_and_bad_requests(deployment: Deployment, task_queue: str) -> None:
    client = await Client.connect(deployment.address)
    svc = client.workflow_service
    prefix = f"bx-{uuid.uuid4().hex[:6]}"
    await start_idle(client, prefix, 40)
    query = f"WorkflowId STARTS_WITH '{prefix}'"
    await wait_until(lambda: _is(count(client, query), 40), 30, "visible")
    job = f"{prefix}-slow"
    await svc.start_batch_operation(StartBatchOperationRequest(
        namespace=client.namespace, job_id=job, reason="slow", visibility_query=query, max_operations_per_second=4,
        termination_operation=BatchOperationTermination(),
    ))  # fmt: skip
    await wait_until(lambda: _running_with_progress(client, job), 30, "the slow batch makes progress")

    # One batch at a time per namespace (Temporal's default), the same job id never twice.
    with pytest.raises(RPCError) as err:
        await svc.start_batch_operation(StartBatchOperationRequest(
            namespace=client.namespace, job_id=f"{prefix}-second", reason="x", visibility_query=query,
            termination_operation=BatchOperationTermination(),
        ))  # fmt: skip
    assert err.value.status == RPCStatusCode.RESOURCE_EXHAUSTED
    assert err.value.message == "Max concurrent batch operations is reached"

    await svc.stop_batch_operation(StopBatchOperationRequest(namespace=client.namespace, job_id=job, reason="enough"))
    stopped = await finished(client, job)
    assert stopped.state == BatchOperationState.BATCH_OPERATION_STATE_FAILED
    # The activity learns of the stop from its next heartbeat (each second): after that, nothing more happens.
    seen: list[int] = []

    async def settled() -> bool:
        seen.append(await count(client, f"{query} AND ExecutionStatus = 'Terminated'"))
        return len(seen) >= 8 and len(set(seen[-8:])) == 1

    await wait_until(settled, 30, "the stopped batch to act no more", interval=0.25)
    assert 0 < seen[-1] < 40

    bad: list[tuple[StartBatchOperationRequest, str]] = [
        (StartBatchOperationRequest(namespace=client.namespace, job_id="j", visibility_query=query,
                                    termination_operation=BatchOperationTermination()),
         "must provide required parameters: BatchType,Reason,Namespace, AND one of (Query OR Executions OR "
         "TargetExecutions)"),
        (StartBatchOperationRequest(namespace=client.namespace, reason="r", visibility_query=query,
                                    termination_operation=BatchOperationTermination()),
         "JobId is not set on request."),
        (StartBatchOperationRequest(namespace=client.namespace, job_id="j", reason="r", visibility_query=query,
                                    executions=[WorkflowExecution(workflow_id="x")],
                                    termination_operation=BatchOperationTermination()),
         "visibility query, executions, and target executions are mutually exclusive"),
        (StartBatchOperationRequest(namespace=client.namespace, job_id="j", reason="r", visibility_query=query,
                                    signal_operation=BatchOperationSignal()),
         "must provide signal name"),
        (StartBatchOperationRequest(namespace=client.namespace, job_id="j", reason="r",
                                    visibility_query="WorkflowId = ", termination_operation=BatchOperationTermination()),
         "invalid visibility query: "),
    ]  # fmt: skip
    for request, message in bad:
        with pytest.raises(RPCError) as err:
            await svc.start_batch_operation(request)
        assert err.value.status == RPCStatusCode.INVALID_ARGUMENT, message
        assert err.value.message.startswith(message), err.value.message
    for stop in (StopBatchOperationRequest(namespace=client.namespace, reason="r"),
                 StopBatchOperationRequest(namespace=client.namespace, job_id="j")):  # fmt: skip
        with pytest.raises(RPCError) as err:
            await svc.stop_batch_operation(stop)
        assert err.value.status == RPCStatusCode.INVALID_ARGUMENT
    with pytest.raises(RPCError) as err:
        await describe(client, f"{prefix}-no-such-job")
    assert err.value.status == RPCStatusCode.NOT_FOUND

    page = await svc.list_batch_operations(ListBatchOperationsRequest(namespace=client.namespace, page_size=1000))
    assert job in [o.job_id for o in page.operation_info]
    await _terminate_rest(client, query)


async def _terminate_rest(client: Client, query: str) -> None:
    async for w in client.list_workflows(f"{query} AND ExecutionStatus = 'Running'"):
        await client.get_workflow_handle(w.id).terminate("done")


async def test_update_options_and_unpause_activities(deployment: Deployment, task_queue: str) -> None:
    client = await Client.connect(deployment.address)
    svc = client.workflow_service
    prefix = f"bu-{uuid.uuid4().hex[:6]}"
    idle = await start_idle(client, prefix, 3)
    await wait_until(lambda: _is(count(client, f"WorkflowId STARTS_WITH '{prefix}'"), 3), 30, "visible")
    job = f"{prefix}-options"
    await svc.start_batch_operation(StartBatchOperationRequest(
        namespace=client.namespace, job_id=job, reason="prioritise", visibility_query=f"WorkflowId STARTS_WITH '{prefix}'",
        update_workflow_options_operation=BatchOperationUpdateWorkflowExecutionOptions(
            workflow_execution_options=WorkflowExecutionOptions(priority=Priority(priority_key=2)),
            update_mask=FieldMask(paths=["priority"]),
        ),
    ))  # fmt: skip
    assert (await finished(client, job)).complete_operation_count == 3
    for w in idle:
        desc = await client.get_workflow_handle(w).describe()
        assert desc.raw_description.workflow_execution_info.priority.priority_key == 2
        await client.get_workflow_handle(w).terminate("done")

    # Unpause by activity type: the runs are found through TemporalPauseInfo.
    elsewhere = f"{prefix}-nobody"
    async with Worker(client, task_queue=task_queue, workflows=[ScheduleElsewhere]):
        handles = [
            await client.start_workflow(ScheduleElsewhere.run, elsewhere, id=f"{prefix}-act-{i}", task_queue=task_queue)
            for i in range(3)
        ]
        for h in handles:
            await wait_until(lambda h=h: _pending_activity(h), 30, "activity scheduled")
            await svc.pause_activity(PauseActivityRequest(
                namespace=client.namespace, execution=WorkflowExecution(workflow_id=h.id), type="remote",
            ))  # fmt: skip
        paused = "TemporalPauseInfo = 'property:activityType=remote'"
        await wait_until(lambda: _is(count(client, f"{paused} AND WorkflowId STARTS_WITH '{prefix}'"), 3), 30,
                         "paused runs visible")  # fmt: skip
        job = f"{prefix}-unpause"
        await svc.start_batch_operation(StartBatchOperationRequest(
            namespace=client.namespace, job_id=job, reason="resume", visibility_query=f"WorkflowId STARTS_WITH '{prefix}'",
            unpause_activities_operation=BatchOperationUnpauseActivities(type="remote"),
        ))  # fmt: skip
        assert (await finished(client, job)).complete_operation_count == 3
        for h in handles:
            pending = await _pending_activity(h)
            assert pending is not None and not pending.paused
            await h.terminate("done")


async def _pending_activity(h: Any) -> Any:
    desc = await h.describe()
    pending = desc.raw_description.pending_activities
    return pending[0] if pending else None


async def test_a_crash_of_the_internal_worker_loses_nothing_and_repeats_nothing(fresh_cluster: Deployment) -> None:
    """SIGKILL the internal worker mid-batch over 1,000 runs: the batch resumes from its heartbeat after the
    restart, every run is signalled exactly once (the redone page's signals carry the same request ids) and the
    counts add up."""
    client = await Client.connect(fresh_cluster.address)
    prefix = f"bc-{uuid.uuid4().hex[:6]}"
    ids = await start_idle(client, prefix, 1000)
    query = f"WorkflowId STARTS_WITH '{prefix}'"
    await wait_until(lambda: _is(count(client, query), 1000), 120, "visible")
    job = f"{prefix}-signal"
    await client.workflow_service.start_batch_operation(StartBatchOperationRequest(
        namespace=client.namespace, job_id=job, reason="crash test", visibility_query=query,
        max_operations_per_second=100, signal_operation=BatchOperationSignal(signal="ping"),
    ))  # fmt: skip

    async def some_progress() -> bool:
        d = await describe(client, job)
        return 100 <= d.complete_operation_count < 700

    await wait_until(some_progress, 60, "the batch is part-way", interval=0.05)
    await asyncio.to_thread(fresh_cluster.kill, ["internal_worker"])
    await asyncio.to_thread(fresh_cluster.restart, ["internal_worker"])
    done = await finished(client, job, within=180)
    assert done.state == BatchOperationState.BATCH_OPERATION_STATE_COMPLETED
    assert (done.complete_operation_count, done.failure_operation_count) == (1000, 0)
    counts: list[int] = []
    for chunk in range(0, len(ids), 50):
        counts += await asyncio.gather(
            *(events_of(client, w, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED) for w in ids[chunk:chunk + 50])
        )
    assert counts == [1] * 1000


async def _is(value: Any, expected: Any) -> bool:
    return await value == expected
