"""Every suite workflow replays its own history (CLI JSON and protobuf); a changed workflow fails replay."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from datetime import timedelta

import pytest
from durata import workflow
from durata.client import WorkflowHistory
from durata.exceptions import NondeterminismError
from durata.worker import Replayer, Worker
from temporalio.api.enums.v1.failed_cause_pb2 import WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR

from .conftest import temporal_cli
from .workflows import (
    ALL_ACTIVITIES,
    ALL_WORKFLOWS,
    CancelActivityWorkflow,
    DeterministicWorkflow,
    Greeting,
    HelloWorkflow,
    LoopingWorkflow,
    ParentWorkflow,
    PatchedWorkflow,
    RetryWorkflow,
    SignalQueryUpdateWorkflow,
    SlowStepsWorkflow,
    TimerWorkflow,
    compose,
)


def cli_history_json(target: str, workflow_id: str, run_id: str | None = None) -> str:
    cmd = [temporal_cli(), "workflow", "show", "--address", target, "-w", workflow_id, "--output", "json"]
    if run_id:
        cmd += ["-r", run_id]
    return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=60).stdout


async def _run_all(client, tq: str) -> list[tuple[str, str]]:
    """Start one of each workflow; returns (workflow_id, run_id) of closed runs."""
    starts = [
        (HelloWorkflow.run, ["R"]), (RetryWorkflow.run, []), (CancelActivityWorkflow.run, [False]),
        (TimerWorkflow.run, []), (ParentWorkflow.run, [4]), (LoopingWorkflow.run, [2, 0]),
        (PatchedWorkflow.run, []), (DeterministicWorkflow.run, []), (SlowStepsWorkflow.run, [2]),
    ]
    handles = [await client.start_workflow(wf_, args=args, id=f"replay-{uuid.uuid4()}", task_queue=tq)
               for wf_, args in starts]
    squ = await client.start_workflow(SignalQueryUpdateWorkflow.run, id=f"replay-squ-{uuid.uuid4()}", task_queue=tq)
    await squ.signal(SignalQueryUpdateWorkflow.add, "a")
    await squ.execute_update(SignalQueryUpdateWorkflow.add_and_count, "b")
    try:
        await squ.execute_update(SignalQueryUpdateWorkflow.add_and_count, "")
    except Exception:
        pass
    await squ.signal(SignalQueryUpdateWorkflow.finish)
    handles.append(squ)
    await asyncio.gather(*(h.result() for h in handles))
    out = [(h.id, h.result_run_id) for h in handles]
    # The first run of the continue-as-new chain and the children are histories too.
    out.append((handles[4].id + "-child", None))
    return out


async def test_suite_histories_replay(client, sdk_server, task_queue):
    async with Worker(client, task_queue=task_queue, workflows=ALL_WORKFLOWS, activities=ALL_ACTIVITIES):
        runs = await _run_all(client, task_queue)
    replayer = Replayer(workflows=ALL_WORKFLOWS)
    for wid, run_id in runs:
        handle = client.get_workflow_handle(wid, run_id=run_id)
        proto_hist = await handle.fetch_history()
        from_bytes = WorkflowHistory.from_proto(wid, proto_hist.to_proto().SerializeToString())
        result = await replayer.replay_workflow(from_bytes, raise_on_replay_failure=False)
        assert result.replay_failure is None, f"{wid}: {result.replay_failure}"
        json_hist = WorkflowHistory.from_json(wid, cli_history_json(sdk_server.target, wid, run_id))
        assert len(json_hist.events) == len(proto_hist.events)
        result = await replayer.replay_workflow(json_hist, raise_on_replay_failure=False)
        assert result.replay_failure is None, f"{wid} (json): {result.replay_failure}"
        # to_json round-trips too.
        await replayer.replay_workflow(WorkflowHistory.from_json(wid, proto_hist.to_json()))


@workflow.defn(name="HelloWorkflow")
class HelloWorkflowChanged:
    """Same type name, but the first command is now a timer instead of an activity."""

    @workflow.run
    async def run(self, name: str) -> str:
        await workflow.sleep(timedelta(seconds=1))
        return await workflow.execute_activity(compose, Greeting("Hi", name), start_to_close_timeout=timedelta(seconds=5))


async def test_nondeterminism_is_reported(client, task_queue):
    async with Worker(client, task_queue=task_queue, workflows=ALL_WORKFLOWS, activities=ALL_ACTIVITIES):
        handle = await client.start_workflow(HelloWorkflow.run, "N", id=f"nde-{uuid.uuid4()}", task_queue=task_queue)
        await handle.result()
    history = await handle.fetch_history()
    with pytest.raises(NondeterminismError) as info:
        await Replayer(workflows=[HelloWorkflowChanged]).replay_workflow(history)
    msg = str(info.value)
    assert "HelloWorkflow" in msg and handle.id in msg
    assert "history event 5" in msg
    assert "ActivityTaskScheduled(activity_type='compose', activity_id='1')" in msg
    assert "StartTimer(timer_id='1')" in msg


async def test_nondeterminism_fails_live_task(client, task_queue):
    """A worker running changed code fails the workflow task with NON_DETERMINISTIC_ERROR."""
    async with Worker(client, task_queue=task_queue, workflows=[SignalQueryUpdateWorkflow]):
        handle = await client.start_workflow(SignalQueryUpdateWorkflow.run, id=f"nde-live-{uuid.uuid4()}",
                                             task_queue=task_queue)
        await handle.signal(SignalQueryUpdateWorkflow.add, "a")
        await handle.execute_update(SignalQueryUpdateWorkflow.add_and_count, "b")

    @workflow.defn(name="SignalQueryUpdateWorkflow")
    class Changed(SignalQueryUpdateWorkflow):
        @workflow.run
        async def run(self) -> list[str]:
            await workflow.execute_activity(compose, Greeting("x", "y"), start_to_close_timeout=timedelta(seconds=5))
            return []

    async with Worker(client, task_queue=task_queue, workflows=[Changed], activities=[compose],
                      max_cached_workflows=0):
        await handle.signal(SignalQueryUpdateWorkflow.finish)
        failure = None
        for _ in range(200):
            hist = await handle.fetch_history()
            failed = [e for e in hist.events if e.HasField("workflow_task_failed_event_attributes")]
            if failed:
                failure = failed[0].workflow_task_failed_event_attributes
                break
            await asyncio.sleep(0.1)
    assert failure is not None
    assert failure.cause == WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR
    assert "Nondeterminism" in failure.failure.message and "ScheduleActivityTask" in failure.failure.message
    await handle.terminate()


@workflow.defn(name="PatchDemo")
class PatchDemoV1:
    @workflow.run
    async def run(self) -> str:
        await workflow.sleep(0.05)
        return "v1"


@workflow.defn(name="PatchDemo")
class PatchDemoV2:
    @workflow.run
    async def run(self) -> str:
        if workflow.patched("use-activity"):
            return await workflow.execute_activity(compose, Greeting("v2", "x"), start_to_close_timeout=timedelta(seconds=5))
        await workflow.sleep(0.05)
        return "v1"


@workflow.defn(name="PatchDemo")
class PatchDemoV3:
    @workflow.run
    async def run(self) -> str:
        workflow.deprecate_patch("use-activity")
        return await workflow.execute_activity(compose, Greeting("v2", "x"), start_to_close_timeout=timedelta(seconds=5))


async def test_patching_lifecycle(client, task_queue):
    async def run_with(cls) -> WorkflowHistory:
        tq = f"{task_queue}-{cls.__name__}"
        async with Worker(client, task_queue=tq, workflows=[cls], activities=[compose]):
            h = await client.start_workflow("PatchDemo", id=f"patch-{uuid.uuid4()}", task_queue=tq)
            await h.result()
        return await h.fetch_history()

    v1_history = await run_with(PatchDemoV1)
    v2_history = await run_with(PatchDemoV2)
    v3_history = await run_with(PatchDemoV3)
    # Patched code replays old histories on the old branch and new histories on the new one.
    await Replayer(workflows=[PatchDemoV2]).replay_workflow(v1_history)
    await Replayer(workflows=[PatchDemoV2]).replay_workflow(v2_history)
    # Once no pre-patch runs remain, deprecate_patch code replays patched and deprecated histories.
    await Replayer(workflows=[PatchDemoV3]).replay_workflow(v2_history)
    await Replayer(workflows=[PatchDemoV3]).replay_workflow(v3_history)
    # V3 cannot replay a pre-patch history: that is a non-determinism error.
    with pytest.raises(NondeterminismError):
        await Replayer(workflows=[PatchDemoV3]).replay_workflow(v1_history)
