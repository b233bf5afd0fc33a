"""The official temporalio SDK against Durata: continue-as-new, cron, child workflows, external signals and
cancels, and workflow updates (History features beyond the basics)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import ContinueAsNewInitiator, EventType
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowUpdateFailedError,
    WorkflowUpdateStage,
)
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, ChildWorkflowError
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from e2e.helpers import assert_dense, type_names, wait_until, wid

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]
RESULT_TIMEOUT = timedelta(seconds=60)


# ---------------------------------------------------------------- workflows


@workflow.defn
class CountdownWorkflow:
    @workflow.run
    async def run(self, n: int, total: int) -> str:
        if n > 0:
            workflow.continue_as_new(args=[n - 1, total + n])
        return f"runs-done total={total} run={workflow.info().run_id == workflow.info().first_execution_run_id}"


@workflow.defn
class CronCounterWorkflow:
    @workflow.run
    async def run(self) -> int:
        last = workflow.get_last_completion_result(type_hint=int)
        return (last or 0) + 1


@workflow.defn
class ChildWorkflow:
    def __init__(self) -> None:
        self.signals: list[str] = []

    @workflow.run
    async def run(self, mode: str) -> str:
        if mode == "fail":
            raise ApplicationError("child failed on purpose", non_retryable=True)
        if mode == "wait":
            await workflow.wait_condition(lambda: False)
        if mode == "signal":
            await workflow.wait_condition(lambda: bool(self.signals))
            return f"child got {self.signals[0]}"
        if mode.startswith("can:"):
            left = int(mode.split(":")[1])
            if left > 0:
                workflow.continue_as_new(f"can:{left - 1}")
            return "child chain done"
        return f"child:{mode}"

    @workflow.signal
    def sig(self, value: str) -> None:
        self.signals.append(value)


@workflow.defn
class ParentWorkflow:
    @workflow.run
    async def run(self, mode: str, child_id: str) -> str:
        if mode == "ok":
            return await workflow.execute_child_workflow(ChildWorkflow.run, "x", id=child_id)
        if mode == "can-child":
            return await workflow.execute_child_workflow(ChildWorkflow.run, "can:2", id=child_id)
        if mode == "fail":
            try:
                await workflow.execute_child_workflow(ChildWorkflow.run, "fail", id=child_id)
            except ChildWorkflowError as err:
                assert isinstance(err.cause, ApplicationError)
                return f"caught: {err.cause.message}"
            return "no error"
        if mode in ("abandon", "terminate"):
            policy = workflow.ParentClosePolicy.ABANDON if mode == "abandon" else workflow.ParentClosePolicy.TERMINATE
            await workflow.start_child_workflow(ChildWorkflow.run, "wait", id=child_id, parent_close_policy=policy)
            return "parent done"
        if mode == "signal-child":
            handle = await workflow.start_child_workflow(ChildWorkflow.run, "signal", id=child_id)
            await handle.signal(ChildWorkflow.sig, "hello")
            return await handle
        if mode == "cancel-child":
            handle = await workflow.start_child_workflow(ChildWorkflow.run, "wait", id=child_id)
            handle.cancel()
            try:
                await handle
            except ChildWorkflowError as err:
                return f"child ended: {type(err.cause).__name__}"
            return "child not cancelled"
        if mode == "external-signal":
            await workflow.get_external_workflow_handle(child_id).signal("sig", "from-outside")
            try:
                await workflow.get_external_workflow_handle(f"{child_id}-missing").signal("sig", "x")
            except Exception as err:  # noqa: BLE001 - the SDK's error for EXTERNAL_WORKFLOW_EXECUTION_NOT_FOUND
                return f"signalled; missing -> {type(err).__name__}"
            return "signalled; missing did not fail"
        if mode == "duplicate":
            await workflow.start_child_workflow(ChildWorkflow.run, "wait", id=child_id, parent_close_policy=workflow.ParentClosePolicy.ABANDON)
            try:
                await workflow.start_child_workflow(ChildWorkflow.run, "wait", id=child_id)
            except Exception as err:  # noqa: BLE001
                return f"duplicate -> {type(err).__name__}"
            return "duplicate started"
        raise ApplicationError(f"unknown mode {mode}")


@workflow.defn
class UpdateWorkflow:
    def __init__(self) -> None:
        self.items: list[str] = []
        self.done = False

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.wait_condition(lambda: self.done)
        return self.items

    @workflow.update
    async def add(self, item: str) -> int:
        self.items.append(item)
        return len(self.items)

    @add.validator
    def validate_add(self, item: str) -> None:
        if not item:
            raise ValueError("empty items are rejected")

    @workflow.update
    async def slow_add(self, item: str) -> int:
        await workflow.sleep(0.5)
        self.items.append(item)
        return len(self.items)

    @workflow.signal
    def finish(self) -> None:
        self.done = True


WORKFLOWS = [CountdownWorkflow, CronCounterWorkflow, ChildWorkflow, ParentWorkflow, UpdateWorkflow]


@asynccontextmanager
async def worker(client: Client, task_queue: str) -> AsyncIterator[Worker]:
    async with Worker(client, task_queue=task_queue, workflows=WORKFLOWS, workflow_runner=UnsandboxedWorkflowRunner()) as w:
        yield w


async def status_of(client: Client, workflow_id: str, run_id: str | None = None) -> WorkflowExecutionStatus | None:
    return (await client.get_workflow_handle(workflow_id, run_id=run_id).describe()).status


# ---------------------------------------------------------------- continue-as-new and cron


async def test_continue_as_new_chain(client: Client, task_queue: str) -> None:
    async with worker(client, task_queue):
        handle = await client.start_workflow(
            CountdownWorkflow.run, args=[3, 0], id=wid("can"), task_queue=task_queue, execution_timeout=RESULT_TIMEOUT
        )
        assert await handle.result() == "runs-done total=6 run=False"
        first = await client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id).fetch_history()
        last = await client.get_workflow_handle(handle.id).fetch_history()
    types = assert_dense(first)
    assert types[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW, type_names(types)
    assert_dense(last)
    started = last.events[0].workflow_execution_started_event_attributes
    assert started.initiator == ContinueAsNewInitiator.CONTINUE_AS_NEW_INITIATOR_WORKFLOW
    assert started.first_execution_run_id == handle.first_execution_run_id
    assert started.original_execution_run_id == (await client.get_workflow_handle(handle.id).describe()).run_id
    assert started.continued_execution_run_id and started.attempt == 1
    assert started.HasField("workflow_execution_expiration_time")


async def test_cron_chain_carries_last_result_until_terminated(client: Client, task_queue: str) -> None:
    workflow_id = wid("cron")
    async with worker(client, task_queue):
        handle = await client.start_workflow(
            CronCounterWorkflow.run, id=workflow_id, task_queue=task_queue, cron_schedule="@every 1s"
        )
        first = (await handle.fetch_history()).events[0].workflow_execution_started_event_attributes
        assert first.cron_schedule == "@every 1s" and first.first_workflow_task_backoff.seconds >= 1

        async def third_run_started() -> bool:
            h = await client.get_workflow_handle(workflow_id).fetch_history()
            s = h.events[0].workflow_execution_started_event_attributes
            if s.initiator != ContinueAsNewInitiator.CONTINUE_AS_NEW_INITIATOR_CRON_SCHEDULE:
                return False
            payloads = s.last_completion_result.payloads
            return bool(payloads) and int(payloads[0].data) >= 2

        await wait_until(third_run_started, 30, "a cron run that saw last_completion_result >= 2")
        current = client.get_workflow_handle(workflow_id)
        await current.terminate("enough")
        assert await status_of(client, workflow_id) == WorkflowExecutionStatus.TERMINATED
        await asyncio.sleep(1.5)  # terminate ends the chain: no further run appears
        assert await status_of(client, workflow_id) == WorkflowExecutionStatus.TERMINATED
        first_run = await client.get_workflow_handle(workflow_id, run_id=handle.result_run_id).fetch_history()
    completed = first_run.events[-1].workflow_execution_completed_event_attributes
    assert completed.new_execution_run_id


# ---------------------------------------------------------------- child workflows


async def test_child_workflow_result_and_history(client: Client, task_queue: str) -> None:
    child_id = wid("child")
    async with worker(client, task_queue):
        handle = await client.start_workflow(
            ParentWorkflow.run, args=["ok", child_id], id=wid("parent"), task_queue=task_queue, execution_timeout=RESULT_TIMEOUT
        )
        assert await handle.result() == "child:x"
        parent_types = assert_dense(await handle.fetch_history())
        child_hist = await client.get_workflow_handle(child_id).fetch_history()
    for t in (
        EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED,
        EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED,
        EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED,
    ):
        assert t in parent_types, type_names(parent_types)
    assert parent_types.index(EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED) < parent_types.index(
        EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED
    )
    assert_dense(child_hist)
    started = child_hist.events[0].workflow_execution_started_event_attributes
    assert started.parent_workflow_execution.workflow_id == handle.id
    assert started.parent_initiated_event_id > 0
    assert started.root_workflow_execution.workflow_id == handle.id


async def test_child_continue_as_new_reports_only_the_chain_end(client: Client, task_queue: str) -> None:
    child_id = wid("child-can")
    async with worker(client, task_queue):
        handle = await client.start_workflow(
            ParentWorkflow.run, args=["can-child", child_id], id=wid("parent-can"), task_queue=task_queue,
            execution_timeout=RESULT_TIMEOUT,
        )
        assert await handle.result() == "child chain done"
        types = assert_dense(await handle.fetch_history())
    assert types.count(EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED) == 1, type_names(types)
    last_child = await client.get_workflow_handle(child_id).fetch_history()
    assert last_child.events[0].workflow_execution_started_event_attributes.parent_workflow_execution.workflow_id == handle.id


async def test_child_failure_is_surfaced(client: Client, task_queue: str) -> None:
    async with worker(client, task_queue):
        result = await client.execute_workflow(
            ParentWorkflow.run, args=["fail", wid("child-fail")], id=wid("parent-fail"), task_queue=task_queue,
            execution_timeout=RESULT_TIMEOUT,
        )
    assert result == "caught: child failed on purpose"


async def test_parent_close_policy_terminate_vs_abandon(client: Client, task_queue: str) -> None:
    terminated_id, abandoned_id = wid("child-term"), wid("child-aband")
    async with worker(client, task_queue):
        for mode, child_id in (("terminate", terminated_id), ("abandon", abandoned_id)):
            assert await client.execute_workflow(
                ParentWorkflow.run, args=[mode, child_id], id=wid(f"parent-{mode}"), task_queue=task_queue,
                execution_timeout=RESULT_TIMEOUT,
            ) == "parent done"

        async def child_terminated() -> bool:
            return await status_of(client, terminated_id) == WorkflowExecutionStatus.TERMINATED

        await wait_until(child_terminated, 20, "the TERMINATE-policy child to be terminated")
        assert await status_of(client, abandoned_id) == WorkflowExecutionStatus.RUNNING
        await client.get_workflow_handle(abandoned_id).terminate("cleanup")


async def test_signal_child_and_external_signal(client: Client, task_queue: str) -> None:
    async with worker(client, task_queue):
        assert await client.execute_workflow(
            ParentWorkflow.run, args=["signal-child", wid("child-sig")], id=wid("parent-sig"), task_queue=task_queue,
            execution_timeout=RESULT_TIMEOUT,
        ) == "child got hello"
        target = await client.start_workflow(
            ChildWorkflow.run, "signal", id=wid("target"), task_queue=task_queue, execution_timeout=RESULT_TIMEOUT
        )
        result = await client.execute_workflow(
            ParentWorkflow.run, args=["external-signal", target.id], id=wid("signaller"), task_queue=task_queue,
            execution_timeout=RESULT_TIMEOUT,
        )
        assert result.startswith("signalled; missing -> "), result
        assert await target.result() == "child got from-outside"
        signaled = [e for e in (await target.fetch_history()).events if e.HasField("workflow_execution_signaled_event_attributes")]
        assert signaled[0].workflow_execution_signaled_event_attributes.external_workflow_execution.workflow_id


async def test_cancel_child(client: Client, task_queue: str) -> None:
    child_id = wid("child-cancel")
    async with worker(client, task_queue):
        result = await client.execute_workflow(
            ParentWorkflow.run, args=["cancel-child", child_id], id=wid("parent-cancel"), task_queue=task_queue,
            execution_timeout=RESULT_TIMEOUT,
        )
    assert result == "child ended: CancelledError"
    assert await status_of(client, child_id) == WorkflowExecutionStatus.CANCELED


async def test_duplicate_child_id_fails_start(client: Client, task_queue: str) -> None:
    child_id = wid("child-dup")
    async with worker(client, task_queue):
        result = await client.execute_workflow(
            ParentWorkflow.run, args=["duplicate", child_id], id=wid("parent-dup"), task_queue=task_queue,
            execution_timeout=RESULT_TIMEOUT, id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        )
        await client.get_workflow_handle(child_id).terminate("cleanup")
    assert result.startswith("duplicate -> "), result


# ---------------------------------------------------------------- updates


async def test_update_accepted_rejected_and_idempotent(client: Client, task_queue: str) -> None:
    async with worker(client, task_queue):
        handle = await client.start_workflow(
            UpdateWorkflow.run, id=wid("upd"), task_queue=task_queue, execution_timeout=RESULT_TIMEOUT
        )
        assert await handle.execute_update(UpdateWorkflow.add, "a", id="upd-1") == 1
        # the same update id again: the same outcome, no second execution
        assert await handle.execute_update(UpdateWorkflow.add, "a", id="upd-1") == 1
        with pytest.raises(WorkflowUpdateFailedError) as info:
            await handle.execute_update(UpdateWorkflow.add, "")
        assert "empty items are rejected" in str(info.value.cause)
        upd = await handle.start_update(UpdateWorkflow.slow_add, "b", id="upd-2", wait_for_stage=WorkflowUpdateStage.ACCEPTED)
        assert await upd.result() == 2
        assert await client.get_workflow_handle(handle.id).get_update_handle("upd-2").result() == 2
        await handle.signal(UpdateWorkflow.finish)
        assert await handle.result() == ["a", "b"]
        types = assert_dense(await handle.fetch_history())
    assert types.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED) == 2, type_names(types)
    assert types.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED) == 2


async def test_update_on_closed_workflow_is_not_found(client: Client, task_queue: str) -> None:
    async with worker(client, task_queue):
        handle = await client.start_workflow(UpdateWorkflow.run, id=wid("upd-closed"), task_queue=task_queue)
        assert await handle.execute_update(UpdateWorkflow.add, "x", id="done-1") == 1
        await handle.signal(UpdateWorkflow.finish)
        await handle.result()
        # a completed update is still answered from history after the run closed
        assert await handle.execute_update(UpdateWorkflow.add, "x", id="done-1") == 1
        with pytest.raises(Exception):  # noqa: B017 - RPCError NOT_FOUND surfaces as an SDK error
            await handle.execute_update(UpdateWorkflow.add, "y", id=str(uuid.uuid4()))
