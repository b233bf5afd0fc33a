"""PauseWorkflowExecution / UnpauseWorkflowExecution through the History handler (SQLite and PostgreSQL): what
is held back while paused, the events, describe, and the errors Temporal gives."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from temporalio.api.common.v1 import message_pb2 as common_pb2
from temporalio.api.enums.v1 import failed_cause_pb2 as fc
from temporalio.api.enums.v1 import workflow_pb2 as wf_enums
from temporalio.api.query.v1 import message_pb2 as query_pb2
from temporalio.api.update.v1 import message_pb2 as update_pb2
from temporalio.api.workflowservice.v1 import request_response_pb2 as ws

from server.common.errors import FailedPrecondition, InvalidArgument, NotFound
from server.gen.durata.internal.history.v1 import service_pb2 as hs
from services.history.api import workflow_pause

from .conftest import Env
from .helpers import Driver, cmd_activity, cmd_complete, cmd_timer, names, payloads

ST = wf_enums.WorkflowExecutionStatus
WFE = common_pb2.WorkflowExecution


async def pause(env: Env, workflow_id: str, run_id: str = "", request_id: str = "", reason: str = "why") -> None:
    req = ws.PauseWorkflowExecutionRequest(
        namespace="default", workflow_id=workflow_id, run_id=run_id, identity="op", reason=reason,
        request_id=request_id or str(uuid.uuid4()),
    )
    await env.handler.PauseWorkflowExecution(hs.PauseWorkflowExecutionRequest(namespace_id=env.namespace_id, request=req))


async def unpause(env: Env, workflow_id: str, run_id: str = "") -> None:
    req = ws.UnpauseWorkflowExecutionRequest(
        namespace="default", workflow_id=workflow_id, run_id=run_id, identity="op2", reason="go on",
        request_id=str(uuid.uuid4()),
    )
    await env.handler.UnpauseWorkflowExecution(hs.UnpauseWorkflowExecutionRequest(namespace_id=env.namespace_id, request=req))


async def describe(env: Env, workflow_id: str) -> ws.DescribeWorkflowExecutionResponse:
    req = ws.DescribeWorkflowExecutionRequest(namespace="default", execution=WFE(workflow_id=workflow_id))
    return await env.handler.DescribeWorkflowExecution(hs.DescribeWorkflowExecutionRequest(namespace_id=env.namespace_id, request=req))


async def signal(env: Env, workflow_id: str, name: str = "sig") -> None:
    req = ws.SignalWorkflowExecutionRequest(
        namespace="default", workflow_execution=WFE(workflow_id=workflow_id), signal_name=name, request_id=str(uuid.uuid4())
    )
    await env.handler.SignalWorkflowExecution(hs.SignalWorkflowExecutionRequest(namespace_id=env.namespace_id, request=req))


async def wait_history(d: Driver, workflow_id: str, event_name: str) -> list[Any]:
    events: list[Any] = []
    for _ in range(250):
        events = await d.history(workflow_id)
        if event_name in names(events):
            return events
        await asyncio.sleep(0.02)
    raise AssertionError(f"{event_name} never appeared in {workflow_id}: {names(events)}")


async def settle() -> None:
    """Give the queue processors a moment to run whatever was committed (to show that nothing was dispatched)."""
    await asyncio.sleep(0.3)


def pause_entries(desc: ws.DescribeWorkflowExecutionResponse) -> list[str] | None:
    p = desc.workflow_execution_info.search_attributes.indexed_fields.get("TemporalPauseInfo")
    return None if p is None else json.loads(p.data)


async def test_pause_fails_undelivered_wft_and_unpause_schedules_a_new_one(env: Env) -> None:
    d = Driver(env)
    await d.start("p-pending")
    await d.next_wft_add()  # scheduled, never started
    await pause(env, "p-pending", reason="maintenance")
    events = await d.history("p-pending")
    assert names(events) == ["WORKFLOW_EXECUTION_STARTED", "WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_FAILED", "WORKFLOW_EXECUTION_PAUSED"]
    failed = events[2].workflow_task_failed_event_attributes
    assert failed.cause == fc.WORKFLOW_TASK_FAILED_CAUSE_WORKFLOW_PAUSE_REQUESTED_BEFORE_TASK_STARTED
    assert failed.scheduled_event_id == 2 and failed.started_event_id == 0 and failed.identity == "history-service"
    paused = events[3]
    assert paused.worker_may_ignore
    assert paused.workflow_execution_paused_event_attributes.identity == "op"
    assert paused.workflow_execution_paused_event_attributes.reason == "maintenance"

    desc = await describe(env, "p-pending")
    assert desc.workflow_execution_info.status == ST.WORKFLOW_EXECUTION_STATUS_PAUSED
    assert not desc.HasField("pending_workflow_task")
    pi = desc.workflow_extended_info.pause_info
    assert pi.identity == "op" and pi.reason == "maintenance" and pi.HasField("paused_time")
    assert not desc.workflow_execution_info.HasField("close_time")
    assert pause_entries(desc) == ["Workflow:p-pending", "Reason:maintenance"]

    await unpause(env, "p-pending")
    events = await d.history("p-pending")
    assert names(events)[4:] == ["WORKFLOW_EXECUTION_UNPAUSED", "WORKFLOW_TASK_SCHEDULED"]
    assert events[4].worker_may_ignore and events[4].workflow_execution_unpaused_event_attributes.reason == "go on"
    assert events[5].workflow_task_scheduled_event_attributes.attempt == 1
    desc = await describe(env, "p-pending")
    assert desc.workflow_execution_info.status == ST.WORKFLOW_EXECUTION_STATUS_RUNNING
    assert not desc.workflow_extended_info.HasField("pause_info")
    assert pause_entries(desc) is None
    task = await d.poll_wft()
    await d.complete(task, [cmd_complete()])
    assert (await describe(env, "p-pending")).workflow_execution_info.status == ST.WORKFLOW_EXECUTION_STATUS_COMPLETED


async def test_started_wft_completes_while_paused_but_nothing_new_is_dispatched(env: Env) -> None:
    d = Driver(env)
    await d.start("p-inflight")
    task = await d.poll_wft()
    await pause(env, "p-inflight")
    assert len(await d.history("p-inflight")) == 3  # the Paused event waits behind the started task
    await d.complete(task, [cmd_activity("a1", request_eager_execution=True), cmd_activity("a2")])
    events = await d.history("p-inflight")
    assert names(events)[3:] == [
        "WORKFLOW_TASK_COMPLETED", "ACTIVITY_TASK_SCHEDULED", "ACTIVITY_TASK_SCHEDULED", "WORKFLOW_EXECUTION_PAUSED",
    ]
    assert events[-1].worker_may_ignore
    await settle()
    assert env.matching.activity_tasks == [] and len(env.matching.workflow_tasks) == 1
    await unpause(env, "p-inflight")
    await env.matching.wait_for(lambda: len(env.matching.activity_tasks) == 2)
    assert sorted(a.scheduled_event_id for a in env.matching.activity_tasks) == [5, 6]
    assert names(await d.history("p-inflight"))[-2:] == ["WORKFLOW_EXECUTION_UNPAUSED", "WORKFLOW_TASK_SCHEDULED"]
    started = await d.poll_activity()
    assert started.activity_id in ("a1", "a2")


async def test_signals_and_timers_recorded_while_paused_and_delivered_after(env: Env) -> None:
    d = Driver(env)
    await d.start("p-timer")
    task = await d.poll_wft()
    await d.complete(task, [cmd_timer("t1", 5)])
    await pause(env, "p-timer")
    await signal(env, "p-timer")
    env.clock.advance(6)
    events = await wait_history(d, "p-timer", "TIMER_FIRED")
    assert names(events)[-3:] == ["WORKFLOW_EXECUTION_PAUSED", "WORKFLOW_EXECUTION_SIGNALED", "TIMER_FIRED"]
    await settle()
    assert len(env.matching.workflow_tasks) == 1
    assert not (await describe(env, "p-timer")).HasField("pending_workflow_task")
    await unpause(env, "p-timer")
    task = await d.poll_wft()
    got = names(list(task.history.events))
    assert got[-5:] == [
        "WORKFLOW_EXECUTION_PAUSED", "WORKFLOW_EXECUTION_SIGNALED", "TIMER_FIRED", "WORKFLOW_EXECUTION_UNPAUSED",
        "WORKFLOW_TASK_SCHEDULED",
    ] or got[-6:-1] == [
        "WORKFLOW_EXECUTION_PAUSED", "WORKFLOW_EXECUTION_SIGNALED", "TIMER_FIRED", "WORKFLOW_EXECUTION_UNPAUSED",
        "WORKFLOW_TASK_SCHEDULED",
    ]
    await d.complete(task, [cmd_complete()])


async def test_running_activity_completes_but_its_retry_waits_for_unpause(env: Env) -> None:
    d = Driver(env)
    await d.start("p-act")
    task = await d.poll_wft()
    await d.complete(task, [cmd_activity("a1")])
    first = await d.poll_activity()
    await pause(env, "p-act")
    # The running attempt may still heartbeat and report; its retry is not dispatched while paused.
    await env.handler.RecordActivityTaskHeartbeat(
        hs.RecordActivityTaskHeartbeatRequest(
            namespace_id=env.namespace_id, request=ws.RecordActivityTaskHeartbeatRequest(task_token=first.task_token)
        )
    )
    await env.handler.RespondActivityTaskFailed(
        hs.RespondActivityTaskFailedRequest(
            namespace_id=env.namespace_id,
            request=ws.RespondActivityTaskFailedRequest(task_token=first.task_token, identity="act-worker"),
        )
    )
    env.clock.advance(5)
    await settle()
    assert len(env.matching.activity_tasks) == 1
    desc = await describe(env, "p-act")
    assert desc.pending_activities[0].attempt == 2 and not desc.pending_activities[0].paused
    await unpause(env, "p-act")
    second = await d.poll_activity()
    assert second.attempt == 2
    await env.handler.RespondActivityTaskCompleted(
        hs.RespondActivityTaskCompletedRequest(
            namespace_id=env.namespace_id,
            request=ws.RespondActivityTaskCompletedRequest(task_token=second.task_token, result=payloads(b'"ok"')),
        )
    )
    await wait_history(d, "p-act", "ACTIVITY_TASK_COMPLETED")


async def test_errors_idempotency_updates_and_queries(env: Env) -> None:
    d = Driver(env)
    await d.start("p-err")
    task = await d.poll_wft()
    await d.complete(task, [])  # nothing pending now
    with pytest.raises(FailedPrecondition, match="^workflow is not paused.$"):
        await unpause(env, "p-err")
    await pause(env, "p-err", request_id="req-1")
    await pause(env, "p-err", request_id="req-1")  # the same request again: a no-op
    assert names(await d.history("p-err")).count("WORKFLOW_EXECUTION_PAUSED") == 1
    with pytest.raises(FailedPrecondition, match="^workflow is already paused.$"):
        await pause(env, "p-err", request_id="req-2")

    upd = ws.UpdateWorkflowExecutionRequest(
        namespace="default", workflow_execution=WFE(workflow_id="p-err"),
        request=update_pb2.Request(meta=update_pb2.Meta(update_id="u1"), input=update_pb2.Input(name="upd")),
    )
    with pytest.raises(FailedPrecondition, match="^Workflow is paused. Cannot update the workflow.$"):
        await env.handler.UpdateWorkflowExecution(hs.UpdateWorkflowExecutionRequest(namespace_id=env.namespace_id, request=upd))
    q = ws.QueryWorkflowRequest(namespace="default", execution=WFE(workflow_id="p-err"), query=query_pb2.WorkflowQuery(query_type="q"))
    resp = await env.handler.QueryWorkflow(hs.QueryWorkflowRequest(namespace_id=env.namespace_id, request=q))
    assert resp.query_rejected.status == ST.WORKFLOW_EXECUTION_STATUS_PAUSED

    term = ws.TerminateWorkflowExecutionRequest(namespace="default", workflow_execution=WFE(workflow_id="p-err"), reason="x")
    await env.handler.TerminateWorkflowExecution(hs.TerminateWorkflowExecutionRequest(namespace_id=env.namespace_id, request=term))
    assert (await describe(env, "p-err")).workflow_execution_info.status == ST.WORKFLOW_EXECUTION_STATUS_TERMINATED
    with pytest.raises(NotFound, match="^workflow execution already completed$"):
        await pause(env, "p-err")
    with pytest.raises(NotFound, match="^workflow execution already completed$"):
        await unpause(env, "p-err")
    with pytest.raises(NotFound, match="^workflow not found for ID: no-such-workflow$"):
        await pause(env, "no-such-workflow")
    missing_run = str(uuid.uuid4())
    with pytest.raises(NotFound, match=f'^workflow execution not found for workflow ID "p-err" and run ID "{missing_run}"$'):
        await unpause(env, "p-err", missing_run)


async def test_completion_forcing_a_new_task_is_refused_while_paused(env: Env) -> None:
    d = Driver(env)
    await d.start("p-force")
    task = await d.poll_wft()
    await pause(env, "p-force")
    with pytest.raises(FailedPrecondition, match="^Workflow is paused and force create new workflow task is not allowed.$"):
        await d.complete(task, [], force_create_new_workflow_task=True)
    await d.complete(task, [])  # the same task, without forcing: accepted
    assert names(await d.history("p-force"))[-2:] == ["WORKFLOW_TASK_COMPLETED", "WORKFLOW_EXECUTION_PAUSED"]


def test_validate_request_texts() -> None:
    ok = ws.PauseWorkflowExecutionRequest(workflow_id="w", run_id=str(uuid.uuid4()))
    workflow_pause.validate_request(ok, 10)
    cases = [
        (ws.PauseWorkflowExecutionRequest(workflow_id="w", reason="r" * 11, request_id="x" * 11), "reason is too long."),
        (ws.UnpauseWorkflowExecutionRequest(workflow_id="w", request_id="x" * 11, identity="i" * 11), "request id is too long."),
        (ws.PauseWorkflowExecutionRequest(workflow_id="w", identity="i" * 11), "identity is too long."),
        (ws.UnpauseWorkflowExecutionRequest(), "Can't load workflow execution.  WorkflowId not set."),
        (ws.PauseWorkflowExecutionRequest(workflow_id="w", run_id="nope"), "RunId is not valid UUID."),
    ]
    for req, text in cases:
        with pytest.raises(InvalidArgument) as e:
            workflow_pause.validate_request(req, 10)
        assert str(e.value.message if hasattr(e.value, "message") else e.value) == text


async def test_reset_of_a_paused_run_gives_a_running_run(env: Env) -> None:
    d = Driver(env)
    old_run = await d.start("p-reset")
    task = await d.poll_wft()
    await d.complete(task, [])
    await pause(env, "p-reset")
    req = ws.ResetWorkflowExecutionRequest(
        namespace="default", workflow_execution=WFE(workflow_id="p-reset", run_id=old_run), reason="r",
        workflow_task_finish_event_id=4, request_id=str(uuid.uuid4()),
    )
    resp = await env.handler.ResetWorkflowExecution(hs.ResetWorkflowExecutionRequest(namespace_id=env.namespace_id, request=req))
    desc = await describe(env, "p-reset")
    assert desc.workflow_execution_info.execution.run_id == resp.run_id != old_run
    assert desc.workflow_execution_info.status == ST.WORKFLOW_EXECUTION_STATUS_RUNNING
    assert not desc.workflow_extended_info.HasField("pause_info") and pause_entries(desc) is None
    assert "WORKFLOW_EXECUTION_PAUSED" not in names(await d.history("p-reset", resp.run_id))
    task = await d.poll_wft()
    await d.complete(task, [cmd_complete()])


async def test_pause_and_unpause_while_a_task_runs_are_flushed_after_it(env: Env) -> None:
    d = Driver(env)
    await d.start("p-both")
    task = await d.poll_wft()
    await pause(env, "p-both")
    await unpause(env, "p-both")
    assert len(await d.history("p-both")) == 3  # both events wait behind the started task
    await d.complete(task, [])
    assert names(await d.history("p-both"))[3:] == [
        "WORKFLOW_TASK_COMPLETED", "WORKFLOW_EXECUTION_PAUSED", "WORKFLOW_EXECUTION_UNPAUSED", "WORKFLOW_TASK_SCHEDULED",
    ]
    task = await d.poll_wft()
    await d.complete(task, [cmd_complete()])
