"""ResetWorkflowExecution with children (and requests to other workflows) open at the cut, as Temporal's default
history.allowResetWithPendingChildren=true: the reset run carries them, the terminated run leaves them running,
and a child's close reaches the new run through the old run's reset_run_id (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from temporalio.api.command.v1 import message_pb2 as command_pb2
from temporalio.api.common.v1 import message_pb2 as common_pb2
from temporalio.api.enums.v1 import reset_pb2 as reset_enums
from temporalio.api.enums.v1 import workflow_pb2 as wf_enums
from temporalio.api.history.v1 import message_pb2 as history_pb2
from temporalio.api.workflowservice.v1 import request_response_pb2 as ws

from server.gen.durata.internal.history.v1 import service_pb2 as hs
from server.gen.durata.internal.history.v1 import state_pb2
from services.history.api import reset
from services.history.events import make_event
from services.history.mutable_state import MutableState, T

from .conftest import Env
from .helpers import CT, Driver, cmd_complete, names, payloads
from .test_service_features import child_cmd, poll_for, wait_history

ST = wf_enums.WorkflowExecutionStatus
WFE = common_pb2.WorkflowExecution
NOW = datetime(2026, 1, 1, tzinfo=UTC)


async def _reset(env: Env, workflow_id: str, run_id: str, finish: int, **kw: Any) -> str:
    req = ws.ResetWorkflowExecutionRequest(
        namespace="default", workflow_execution=WFE(workflow_id=workflow_id, run_id=run_id), reason="test reset",
        workflow_task_finish_event_id=finish, request_id=str(uuid.uuid4()), **kw,
    )
    resp = await env.handler.ResetWorkflowExecution(hs.ResetWorkflowExecutionRequest(namespace_id=env.namespace_id, request=req))
    return str(resp.run_id)


async def _describe(env: Env, workflow_id: str, run_id: str = "") -> ws.DescribeWorkflowExecutionResponse:
    req = ws.DescribeWorkflowExecutionRequest(namespace="default", execution=WFE(workflow_id=workflow_id, run_id=run_id))
    return await env.handler.DescribeWorkflowExecution(hs.DescribeWorkflowExecutionRequest(namespace_id=env.namespace_id, request=req))


async def _wait_name(d: Driver, workflow_id: str, name: str, run_id: str = "") -> list[history_pb2.HistoryEvent]:
    return await wait_history(d, workflow_id, name, run_id)  # type: ignore[no-any-return]


async def test_reset_after_child_started_keeps_child_and_delivers_its_close(env: Env) -> None:
    d = Driver(env)
    seen: set[int] = set()
    old = await d.start("rp1")
    await d.complete(await poll_for(env, "rp1", seen), [child_cmd("rk1")])
    child_task = await poll_for(env, "rk1", seen)
    await d.complete(await poll_for(env, "rp1", seen), [])  # the WFT the child's Started event caused
    events = await d.history("rp1", old)
    finish = max(e.event_id for e in events if names([e]) == ["WORKFLOW_TASK_COMPLETED"])
    new = await _reset(env, "rp1", old, finish)
    old_desc = await _describe(env, "rp1", old)
    assert old_desc.workflow_execution_info.status == ST.WORKFLOW_EXECUTION_STATUS_TERMINATED
    assert old_desc.workflow_extended_info.reset_run_id == new
    new_desc = await _describe(env, "rp1", new)
    assert [(c.workflow_id, c.run_id) for c in new_desc.pending_children] == [("rk1", child_task.workflow_execution.run_id)]
    # The old run's close did not apply the parent close policy (TERMINATE): the child still runs.
    await asyncio.sleep(0.3)  # a bounded wait for a negative: the old run's close task has long run by then
    assert (await _describe(env, "rk1")).workflow_execution_info.status == ST.WORKFLOW_EXECUTION_STATUS_RUNNING
    await d.complete(child_task, [cmd_complete(b'"from child"')])
    got = await _wait_name(d, "rp1", "CHILD_WORKFLOW_EXECUTION_COMPLETED", new)
    done = [e for e in got if names([e]) == ["CHILD_WORKFLOW_EXECUTION_COMPLETED"]][0]
    a = done.child_workflow_execution_completed_event_attributes
    assert a.result == payloads(b'"from child"') and a.initiated_event_id == 5 and a.started_event_id == 6
    assert not (await _describe(env, "rp1", new)).pending_children
    task = await poll_for(env, "rp1", seen)
    assert task.workflow_execution.run_id == new
    await d.complete(task, [cmd_complete()])
    assert (await _describe(env, "rk1")).workflow_execution_info.status == ST.WORKFLOW_EXECUTION_STATUS_COMPLETED


async def _initiated_before_cut(env: Env, d: Driver, seen: set[int], wf: str, kid: str) -> tuple[str, int, Any]:
    """A parent whose child is Initiated before a WFT Scheduled event and Started after it (a signal buffered
    during the WFT that started the child makes that WFT): returns (run id, cut, child's first task)."""
    old = await d.start(wf)
    task = await poll_for(env, wf, seen)
    sig = ws.SignalWorkflowExecutionRequest(namespace="default", workflow_execution=WFE(workflow_id=wf), signal_name="s",
                                            request_id=str(uuid.uuid4()))
    await env.handler.SignalWorkflowExecution(hs.SignalWorkflowExecutionRequest(namespace_id=env.namespace_id, request=sig))
    await d.complete(task, [child_cmd(kid)])
    child_task = await poll_for(env, kid, seen)
    events = await _wait_name(d, wf, "CHILD_WORKFLOW_EXECUTION_STARTED", old)
    n = names(events)
    initiated = n.index("START_CHILD_WORKFLOW_EXECUTION_INITIATED") + 1
    started = n.index("CHILD_WORKFLOW_EXECUTION_STARTED") + 1
    scheduled = [e.event_id for e in events if names([e]) == ["WORKFLOW_TASK_SCHEDULED"] and initiated < e.event_id < started]
    assert scheduled, n
    return old, scheduled[0] + 1, child_task


async def test_child_started_after_the_cut_is_reapplied(env: Env) -> None:
    d = Driver(env)
    seen: set[int] = set()
    old, finish, child_task = await _initiated_before_cut(env, d, seen, "rp2", "rk2")
    new = await _reset(env, "rp2", old, finish)
    n = names(await d.history("rp2", new))
    # The base run's Started event after the cut is re-applied (the signal is in the copied prefix).
    assert n[n.index("WORKFLOW_TASK_FAILED"):] == [
        "WORKFLOW_TASK_FAILED", "CHILD_WORKFLOW_EXECUTION_STARTED", "WORKFLOW_TASK_SCHEDULED",
    ]
    desc = await _describe(env, "rp2", new)
    assert [c.run_id for c in desc.pending_children] == [child_task.workflow_execution.run_id]
    await d.complete(child_task, [cmd_complete(b'"kid2"')])
    await _wait_name(d, "rp2", "CHILD_WORKFLOW_EXECUTION_COMPLETED", new)


async def test_child_not_started_at_cut_without_reapply_is_started_again_and_deduplicated(env: Env) -> None:
    d = Driver(env)
    seen: set[int] = set()
    old, finish, child_task = await _initiated_before_cut(env, d, seen, "rp3", "rk3")
    new = await _reset(env, "rp3", old, finish, reset_reapply_type=reset_enums.RESET_REAPPLY_TYPE_NONE)
    # The new run's START_CHILD task starts the child under the base run's request id: the running child.
    events = await _wait_name(d, "rp3", "CHILD_WORKFLOW_EXECUTION_STARTED", new)
    st = [e for e in events if names([e]) == ["CHILD_WORKFLOW_EXECUTION_STARTED"]][0]
    assert st.child_workflow_execution_started_event_attributes.workflow_execution.run_id == child_task.workflow_execution.run_id
    await d.complete(child_task, [cmd_complete(b'"kid3"')])
    await _wait_name(d, "rp3", "CHILD_WORKFLOW_EXECUTION_COMPLETED", new)


async def test_plain_terminate_still_applies_parent_close_policy(env: Env) -> None:
    d = Driver(env)
    seen: set[int] = set()
    await d.start("rp4")
    await d.complete(await poll_for(env, "rp4", seen), [child_cmd("rk4")])
    await poll_for(env, "rk4", seen)
    await _wait_name(d, "rp4", "CHILD_WORKFLOW_EXECUTION_STARTED")
    req = ws.TerminateWorkflowExecutionRequest(namespace="default", workflow_execution=WFE(workflow_id="rp4"), reason="x")
    await env.handler.TerminateWorkflowExecution(hs.TerminateWorkflowExecutionRequest(namespace_id=env.namespace_id, request=req))

    async def child_terminated() -> bool:
        return (await _describe(env, "rk4")).workflow_execution_info.status == ST.WORKFLOW_EXECUTION_STATUS_TERMINATED

    for _ in range(250):
        if await child_terminated():
            break
        await asyncio.sleep(0.02)
    assert await child_terminated()


# ---------------------------------------------------------------- sans-IO


def _prefix() -> list[history_pb2.HistoryEvent]:
    started = history_pb2.WorkflowExecutionStartedEventAttributes(workflow_type=common_pb2.WorkflowType(name="Wf"))
    init = history_pb2.StartChildWorkflowExecutionInitiatedEventAttributes
    evs = [
        make_event(started, NOW, 1),
        make_event(history_pb2.WorkflowTaskScheduledEventAttributes(), NOW, 2),
        make_event(history_pb2.WorkflowTaskStartedEventAttributes(scheduled_event_id=2), NOW, 3),
        make_event(history_pb2.WorkflowTaskCompletedEventAttributes(scheduled_event_id=2, started_event_id=3), NOW, 4),
        make_event(init(namespace="default", namespace_id="ns", workflow_id="a", workflow_type=common_pb2.WorkflowType(name="C"),
                        parent_close_policy=wf_enums.PARENT_CLOSE_POLICY_ABANDON), NOW, 5),
        make_event(init(namespace="default", namespace_id="ns", workflow_id="b", workflow_type=common_pb2.WorkflowType(name="C"),
                        parent_close_policy=wf_enums.PARENT_CLOSE_POLICY_TERMINATE), NOW, 6),
        make_event(init(namespace="default", namespace_id="ns", workflow_id="c", workflow_type=common_pb2.WorkflowType(name="C")), NOW, 7),
        make_event(history_pb2.SignalExternalWorkflowExecutionInitiatedEventAttributes(
            namespace="default", namespace_id="ns", workflow_execution=WFE(workflow_id="x"), signal_name="hi"), NOW, 8),
        make_event(history_pb2.ChildWorkflowExecutionStartedEventAttributes(
            initiated_event_id=5, workflow_execution=WFE(workflow_id="a", run_id="run-a")), NOW, 9),
        make_event(history_pb2.ChildWorkflowExecutionStartedEventAttributes(
            initiated_event_id=7, workflow_execution=WFE(workflow_id="c", run_id="run-c")), NOW, 10),
        make_event(history_pb2.ChildWorkflowExecutionCompletedEventAttributes(initiated_event_id=7, started_event_id=10), NOW, 11),
        make_event(history_pb2.WorkflowTaskScheduledEventAttributes(), NOW, 12),
    ]
    return evs


def _base() -> MutableState:
    r = state_pb2.MutableState(namespace_id="ns", workflow_id="p", run_id="base-run", first_execution_run_id="base-run",
                               workflow_type="Wf", task_queue="tq", next_event_id=20)
    r.children[6].CopyFrom(state_pb2.ChildInfo(initiated_event_id=6, workflow_id="b", create_request_id="orig-b"))
    return MutableState(r, NOW, namespace_name="default")


def test_build_reset_run_carries_children_and_external_requests() -> None:
    after = [
        make_event(history_pb2.ChildWorkflowExecutionStartedEventAttributes(
            initiated_event_id=6, workflow_execution=WFE(workflow_id="b", run_id="run-b")), NOW, 13),
        make_event(history_pb2.ChildWorkflowExecutionCompletedEventAttributes(
            initiated_event_id=5, started_event_id=9, result=payloads(b'"a"')), NOW, 14),
        make_event(history_pb2.ChildWorkflowExecutionStartedEventAttributes(  # a child the reset run lacks: skipped
            initiated_event_id=7, workflow_execution=WFE(workflow_id="c", run_id="run-c")), NOW, 15),
    ]
    ms = reset.build_reset_run(_base(), _prefix(), "new-run", "req", "why", after)
    r = ms.record
    # a (started at the cut) closed after it; b (not started at the cut) started after it; c closed before the cut.
    assert sorted(r.children) == [6]
    b = r.children[6]
    assert (b.workflow_id, b.run_id, b.create_request_id, b.parent_close_policy) == (
        "b", "run-b", "orig-b", wf_enums.PARENT_CLOSE_POLICY_TERMINATE)
    tail = names(ms.new_events)[12:]
    assert tail == ["WORKFLOW_TASK_STARTED", "WORKFLOW_TASK_FAILED", "CHILD_WORKFLOW_EXECUTION_STARTED",
                    "CHILD_WORKFLOW_EXECUTION_COMPLETED", "WORKFLOW_TASK_SCHEDULED"]
    assert b.started_event_id == ms.new_events[14].event_id
    assert ms.new_events[15].child_workflow_execution_completed_event_attributes.started_event_id == 9
    assert ms.new_events[15].child_workflow_execution_completed_event_attributes.result == payloads(b'"a"')
    types = [t.info.type for t in ms.tasks]
    assert T.HISTORY_TASK_TYPE_START_CHILD_EXECUTION not in types  # b is started
    assert r.pending_signals[8].workflow_id == "x" and r.pending_signals[8].request_id == "base-run/signal/8"
    assert [t.info.event_id for t in ms.tasks if t.info.type == T.HISTORY_TASK_TYPE_SIGNAL_EXECUTION] == [8]


def test_build_reset_run_starts_children_not_started() -> None:
    ms = reset.build_reset_run(_base(), _prefix(), "new-run", "req", "why", [])
    r = ms.record
    assert sorted(r.children) == [5, 6]
    assert (r.children[5].run_id, r.children[5].started_event_id) == ("run-a", 9)
    assert r.children[5].create_request_id == "base-run/child/5"
    assert r.children[6].started_event_id == 0
    starts = [t.info.event_id for t in ms.tasks if t.info.type == T.HISTORY_TASK_TYPE_START_CHILD_EXECUTION]
    assert starts == [6]


async def test_signal_to_other_workflow_open_at_cut_is_sent_again_and_deduplicated(env: Env) -> None:
    d = Driver(env)
    seen: set[int] = set()
    await d.start("rtarget")
    old = await d.start("rp5")
    task = await poll_for(env, "rp5", seen)
    sig = ws.SignalWorkflowExecutionRequest(namespace="default", workflow_execution=WFE(workflow_id="rp5"), signal_name="s",
                                            request_id=str(uuid.uuid4()))
    await env.handler.SignalWorkflowExecution(hs.SignalWorkflowExecutionRequest(namespace_id=env.namespace_id, request=sig))
    send = command_pb2.Command(
        command_type=CT.COMMAND_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION,
        signal_external_workflow_execution_command_attributes=command_pb2.SignalExternalWorkflowExecutionCommandAttributes(
            execution=WFE(workflow_id="rtarget"), signal_name="hello"),
    )
    await d.complete(task, [send])
    events = await _wait_name(d, "rp5", "EXTERNAL_WORKFLOW_EXECUTION_SIGNALED", old)
    n = names(events)
    initiated = n.index("SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED") + 1
    done = n.index("EXTERNAL_WORKFLOW_EXECUTION_SIGNALED") + 1
    scheduled = [e.event_id for e in events if names([e]) == ["WORKFLOW_TASK_SCHEDULED"] and initiated < e.event_id < done]
    assert scheduled, n
    new = await _reset(env, "rp5", old, scheduled[0] + 1)
    got = await _wait_name(d, "rp5", "EXTERNAL_WORKFLOW_EXECUTION_SIGNALED", new)
    assert names(got).count("EXTERNAL_WORKFLOW_EXECUTION_SIGNALED") == 1
    # The target got the signal once: the new run's request carries the base run's request id.
    assert names(await d.history("rtarget")).count("WORKFLOW_EXECUTION_SIGNALED") == 1


async def test_reset_of_a_closed_parent_links_it_and_routes_an_abandoned_childs_close(env: Env) -> None:
    d = Driver(env)
    seen: set[int] = set()
    old = await d.start("rp6")
    await d.complete(await poll_for(env, "rp6", seen), [child_cmd("rk6", wf_enums.PARENT_CLOSE_POLICY_ABANDON)])
    child_task = await poll_for(env, "rk6", seen)
    await d.complete(await poll_for(env, "rp6", seen), [cmd_complete()])  # the parent completes; the child runs on
    events = await d.history("rp6", old)
    finish = max(e.event_id for e in events if names([e]) == ["WORKFLOW_TASK_COMPLETED"])
    new = await _reset(env, "rp6", old, finish)
    assert (await _describe(env, "rp6", old)).workflow_extended_info.reset_run_id == new
    await d.complete(child_task, [cmd_complete(b'"late"')])
    got = await _wait_name(d, "rp6", "CHILD_WORKFLOW_EXECUTION_COMPLETED", new)
    assert names(got).count("CHILD_WORKFLOW_EXECUTION_COMPLETED") == 1
