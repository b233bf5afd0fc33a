"""History service features through the handler, on SQLite and PostgreSQL: children (transfer tasks across
shards), continue-as-new, updates, deleting a running run."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from google.protobuf import any_pb2
from temporalio.api.command.v1 import message_pb2 as command_pb2
from temporalio.api.common.v1 import message_pb2 as common_pb2
from temporalio.api.enums.v1 import command_type_pb2, failed_cause_pb2, task_queue_pb2
from temporalio.api.enums.v1 import update_pb2 as update_enums
from temporalio.api.enums.v1 import workflow_pb2 as wf_enums
from temporalio.api.protocol.v1 import message_pb2 as protocol_pb2
from temporalio.api.taskqueue.v1 import message_pb2 as taskqueue_pb2
from temporalio.api.update.v1 import message_pb2 as update_pb2
from temporalio.api.workflowservice.v1 import request_response_pb2 as ws

from server.common.errors import InvalidArgument, NotFound
from server.gen.durata.internal.history.v1 import service_pb2 as hs

from .conftest import Env
from .helpers import TASK_QUEUE, Driver, cmd_activity, cmd_complete, names, payloads

CT = command_type_pb2.CommandType
STAGE = update_enums.UpdateWorkflowExecutionLifecycleStage


async def poll_for(env: Env, workflow_id: str, seen: set[int]) -> ws.PollWorkflowTaskQueueResponse:
    """Record-start the next WFT pushed to matching for ``workflow_id`` (by index, each only once)."""
    m = env.matching

    def find() -> Any:
        for i, add in enumerate(m.workflow_tasks):
            if add.execution.workflow_id == workflow_id and i not in seen:
                seen.add(i)
                return add
        return None

    add = await m.wait_for(find)
    return await env.handler.RecordWorkflowTaskStarted(
        hs.RecordWorkflowTaskStartedRequest(
            namespace_id=env.namespace_id, workflow_execution=add.execution, scheduled_event_id=add.scheduled_event_id,
            attempt=add.attempt, stamp=add.stamp, request_id=str(uuid.uuid4()),
            poll_request=ws.PollWorkflowTaskQueueRequest(
                namespace="default", identity="w",
                task_queue=taskqueue_pb2.TaskQueue(name=TASK_QUEUE, kind=task_queue_pb2.TASK_QUEUE_KIND_NORMAL),
            ),
        )
    )


async def wait_history(d: Driver, workflow_id: str, event_name: str, run_id: str = "") -> list[Any]:
    for _ in range(250):
        events = await d.history(workflow_id, run_id)
        if event_name in names(events):
            return events
        await asyncio.sleep(0.02)
    raise AssertionError(f"{event_name} never appeared in {workflow_id}: {names(events)}")


def child_cmd(workflow_id: str, policy: int = 0) -> command_pb2.Command:
    return command_pb2.Command(
        command_type=CT.COMMAND_TYPE_START_CHILD_WORKFLOW_EXECUTION,
        start_child_workflow_execution_command_attributes=command_pb2.StartChildWorkflowExecutionCommandAttributes(
            workflow_id=workflow_id, workflow_type=common_pb2.WorkflowType(name="Child"), parent_close_policy=policy,  # type: ignore[arg-type]
        ),
    )


async def test_child_workflow_round_trip(env: Env) -> None:
    d = Driver(env)
    seen: set[int] = set()
    parent_run = await d.start("parent")
    task = await poll_for(env, "parent", seen)
    await d.complete(task, [child_cmd("kid")])
    child_task = await poll_for(env, "kid", seen)
    # The child's first WFT exists only after the parent recorded ChildWorkflowExecutionStarted (5.2).
    parent_events = await d.history("parent", parent_run)
    assert "CHILD_WORKFLOW_EXECUTION_STARTED" in names(parent_events)
    first = child_task.history.events[0].workflow_execution_started_event_attributes
    assert first.parent_workflow_execution.run_id == parent_run and first.parent_initiated_event_id == 5
    desc = await env.handler.DescribeWorkflowExecution(
        hs.DescribeWorkflowExecutionRequest(
            namespace_id=env.namespace_id,
            request=ws.DescribeWorkflowExecutionRequest(execution=common_pb2.WorkflowExecution(workflow_id="parent")),
        )
    )
    assert [c.workflow_id for c in desc.pending_children] == ["kid"]
    assert desc.pending_children[0].run_id == child_task.workflow_execution.run_id
    await d.complete(child_task, [cmd_complete(b'"from child"')])
    events = await wait_history(d, "parent", "CHILD_WORKFLOW_EXECUTION_COMPLETED")
    done = events[-1] if names(events)[-1] == "CHILD_WORKFLOW_EXECUTION_COMPLETED" else events[-2]
    attrs = done.child_workflow_execution_completed_event_attributes
    assert attrs.result == payloads(b'"from child"') and attrs.initiated_event_id == 5
    assert attrs.started_event_id == names(events).index("CHILD_WORKFLOW_EXECUTION_STARTED") + 1


async def test_parent_close_terminates_child_and_duplicate_child_fails(env: Env) -> None:
    d = Driver(env)
    seen: set[int] = set()
    await d.start("p2")
    await d.complete(await poll_for(env, "p2", seen), [child_cmd("kid2")])
    await poll_for(env, "kid2", seen)  # started
    task = await poll_for(env, "p2", seen)  # parent's WFT for ChildWorkflowExecutionStarted
    await d.complete(task, [child_cmd("kid2")])  # same id while running -> StartChildWorkflowExecutionFailed
    events = await wait_history(d, "p2", "START_CHILD_WORKFLOW_EXECUTION_FAILED")
    failed = [e for e in events if e.HasField("start_child_workflow_execution_failed_event_attributes")][0]
    assert failed.start_child_workflow_execution_failed_event_attributes.cause == (
        failed_cause_pb2.START_CHILD_WORKFLOW_EXECUTION_FAILED_CAUSE_WORKFLOW_ALREADY_EXISTS
    )
    await d.complete(await poll_for(env, "p2", seen), [cmd_complete()])
    kid = await wait_history(d, "kid2", "WORKFLOW_EXECUTION_TERMINATED")
    assert kid[-1].workflow_execution_terminated_event_attributes.reason == "by parent close policy"


async def test_continue_as_new_switches_current_run(env: Env) -> None:
    d = Driver(env)
    seen: set[int] = set()
    run1 = await d.start("can", input=payloads(b"1"))
    can = command_pb2.Command(
        command_type=CT.COMMAND_TYPE_CONTINUE_AS_NEW_WORKFLOW_EXECUTION,
        continue_as_new_workflow_execution_command_attributes=command_pb2.ContinueAsNewWorkflowExecutionCommandAttributes(
            input=payloads(b"2")
        ),
    )
    await d.complete(await poll_for(env, "can", seen), [can])
    task = await poll_for(env, "can", seen)
    run2 = task.workflow_execution.run_id
    assert run2 != run1
    s = task.history.events[0].workflow_execution_started_event_attributes
    assert s.continued_execution_run_id == run1 and s.first_execution_run_id == run1 and s.input == payloads(b"2")
    close = await env.handler.GetWorkflowExecutionHistory(
        hs.GetWorkflowExecutionHistoryRequest(
            namespace_id=env.namespace_id,
            request=ws.GetWorkflowExecutionHistoryRequest(
                execution=common_pb2.WorkflowExecution(workflow_id="can", run_id=run1),
                history_event_filter_type=wf_enums.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT,
            ),
        )
    )
    assert close.history.events[0].workflow_execution_continued_as_new_event_attributes.new_execution_run_id == run2
    assert [e.event_id for e in task.history.events] == list(range(1, len(task.history.events) + 1))


def update_request(workflow_id: str, update_id: str, stage: int = STAGE.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_COMPLETED) -> Any:
    return ws.UpdateWorkflowExecutionRequest(
        workflow_execution=common_pb2.WorkflowExecution(workflow_id=workflow_id),
        wait_policy=update_pb2.WaitPolicy(lifecycle_stage=stage),  # type: ignore[arg-type]
        request=update_pb2.Request(meta=update_pb2.Meta(update_id=update_id), input=update_pb2.Input(name="add", args=payloads(b"1"))),
    )


def packed(body: Any) -> any_pb2.Any:
    a = any_pb2.Any()
    a.Pack(body)
    return a


async def test_update_lifecycle_and_idempotency(env: Env) -> None:
    d = Driver(env)
    seen: set[int] = set()
    run_id = await d.start("upd")
    await d.complete(await poll_for(env, "upd", seen), [])
    h = env.handler
    call = asyncio.create_task(h.UpdateWorkflowExecution(hs.UpdateWorkflowExecutionRequest(namespace_id=env.namespace_id, request=update_request("upd", "u1"))))
    task = await poll_for(env, "upd", seen)
    assert [m.protocol_instance_id for m in task.messages] == ["u1"]
    request_msg = task.messages[0]
    assert request_msg.event_id == task.started_event_id - 1
    acc = update_pb2.Acceptance(accepted_request_message_id=request_msg.id, accepted_request_sequencing_event_id=request_msg.event_id)
    resp = update_pb2.Response(meta=update_pb2.Meta(update_id="u1"), outcome=update_pb2.Outcome(success=payloads(b"42")))
    messages = [
        protocol_pb2.Message(id="acc", protocol_instance_id="u1", body=packed(acc)),
        protocol_pb2.Message(id="resp", protocol_instance_id="u1", body=packed(resp)),
    ]
    cmds = [
        command_pb2.Command(command_type=CT.COMMAND_TYPE_PROTOCOL_MESSAGE, protocol_message_command_attributes=command_pb2.ProtocolMessageCommandAttributes(message_id=m))
        for m in ("acc", "resp")
    ]
    await d.complete(task, cmds, messages=messages)
    out = await asyncio.wait_for(call, 5)
    assert out.stage == STAGE.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_COMPLETED and out.outcome.success == payloads(b"42")
    assert out.update_ref.workflow_execution.run_id == run_id
    events = await d.history("upd")
    assert names(events)[-2:] == ["WORKFLOW_EXECUTION_UPDATE_ACCEPTED", "WORKFLOW_EXECUTION_UPDATE_COMPLETED"]
    # idempotent by update id: answered from history, no new WFT
    n_tasks = len(env.matching.workflow_tasks)
    again = await h.UpdateWorkflowExecution(hs.UpdateWorkflowExecutionRequest(namespace_id=env.namespace_id, request=update_request("upd", "u1")))
    assert again.outcome.success == payloads(b"42") and len(env.matching.workflow_tasks) == n_tasks
    polled = await h.PollWorkflowExecutionUpdate(
        hs.PollWorkflowExecutionUpdateRequest(
            namespace_id=env.namespace_id,
            request=ws.PollWorkflowExecutionUpdateRequest(update_ref=out.update_ref),
        )
    )
    assert polled.outcome.success == payloads(b"42")
    with pytest.raises(NotFound):
        await h.PollWorkflowExecutionUpdate(
            hs.PollWorkflowExecutionUpdateRequest(
                namespace_id=env.namespace_id,
                request=ws.PollWorkflowExecutionUpdateRequest(
                    update_ref=update_pb2.UpdateRef(workflow_execution=out.update_ref.workflow_execution, update_id="nope")
                ),
            )
        )
    with pytest.raises(InvalidArgument):
        await h.UpdateWorkflowExecution(hs.UpdateWorkflowExecutionRequest(namespace_id=env.namespace_id, request=update_request("upd", "")))


async def test_update_waiter_fails_when_run_closes(env: Env) -> None:
    d = Driver(env)
    seen: set[int] = set()
    await d.start("upd2")
    task = await poll_for(env, "upd2", seen)
    call = asyncio.create_task(
        env.handler.UpdateWorkflowExecution(hs.UpdateWorkflowExecutionRequest(namespace_id=env.namespace_id, request=update_request("upd2", "u9")))
    )
    await asyncio.sleep(0.05)
    await d.complete(task, [cmd_complete()])  # closes while the update is admitted but undelivered
    with pytest.raises(NotFound):
        await asyncio.wait_for(call, 5)


async def test_delete_running_run_terminates_and_removes_everything(env: Env) -> None:
    d = Driver(env)
    run_id = await d.start("del")
    await env.handler.DeleteWorkflowExecution(
        hs.DeleteWorkflowExecutionRequest(
            namespace_id=env.namespace_id,
            request=ws.DeleteWorkflowExecutionRequest(workflow_execution=common_pb2.WorkflowExecution(workflow_id="del")),
        )
    )
    shard_id = env.service.engine.shard(env.namespace_id, "del").shard_id
    ex = env.persistence.executions
    assert await ex.get_workflow_execution(shard_id, env.namespace_id, "del", run_id) is None
    assert await ex.get_current_execution(shard_id, env.namespace_id, "del") is None
    assert await ex.read_history(shard_id, env.namespace_id, "del", run_id, 1, 100) == []


async def test_return_new_workflow_task_inline(env: Env) -> None:
    from server.common.errors import AlreadyExists

    d = Driver(env)
    seen: set[int] = set()
    await d.start("inline")
    task = await poll_for(env, "inline", seen)
    sticky = taskqueue_pb2.StickyExecutionAttributes(worker_task_queue=taskqueue_pb2.TaskQueue(name="sticky-1"))
    resp = await d.complete(task, [], force_create_new_workflow_task=True, return_new_workflow_task=True, sticky_attributes=sticky)
    new = resp.workflow_task
    assert new.task_token and new.previous_started_event_id == task.started_event_id
    evs = list(new.history.events)
    assert evs[0].event_id == task.started_event_id + 1 and evs[-1].event_id == new.started_event_id
    assert names(evs) == ["WORKFLOW_TASK_COMPLETED", "WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED"]
    # A copy of that task dispatched through Matching (if its transfer task got there first) is stale.
    with pytest.raises(AlreadyExists):
        await env.handler.RecordWorkflowTaskStarted(
            hs.RecordWorkflowTaskStartedRequest(
                namespace_id=env.namespace_id, workflow_execution=new.workflow_execution,
                scheduled_event_id=new.started_event_id - 1, attempt=1, request_id="other",
                poll_request=ws.PollWorkflowTaskQueueRequest(
                    identity="w", task_queue=taskqueue_pb2.TaskQueue(name="sticky-1", kind=task_queue_pb2.TASK_QUEUE_KIND_STICKY)
                ),
            )
        )
    done = await d.complete(new, [cmd_complete()], return_new_workflow_task=True, sticky_attributes=sticky)
    assert not done.HasField("workflow_task")
    assert names(await d.history("inline"))[-1] == "WORKFLOW_EXECUTION_COMPLETED"


async def test_update_long_poll_returns_current_stage_at_budget(env: Env) -> None:
    import time

    d = Driver(env)
    seen: set[int] = set()
    await d.start("upd3")
    await d.complete(await poll_for(env, "upd3", seen), [])
    resp = await env.handler.UpdateWorkflowExecution(
        hs.UpdateWorkflowExecutionRequest(namespace_id=env.namespace_id, request=update_request("upd3", "slow")),
        deadline=time.monotonic() + 1.3,
    )
    assert resp.stage == STAGE.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ADMITTED and not resp.HasField("outcome")
    task = await poll_for(env, "upd3", seen)  # the update is still delivered
    assert [m.protocol_instance_id for m in task.messages] == ["slow"]


async def test_eager_activity_is_started_and_handed_back(env: Env) -> None:
    """request_eager_execution: the activity is started in the completion's transaction and returned in the
    response; only the non-eager one goes through Matching. Its token completes it like a polled task."""
    d = Driver(env)
    await d.start("eager")
    task = await d.poll_wft()
    resp = await d.complete(
        task,
        [cmd_activity("a-eager", request_eager_execution=True, input=payloads(b'"in"')), cmd_activity("a-normal")],
    )
    assert [t.activity_id for t in resp.activity_tasks] == ["a-eager"]
    eager = resp.activity_tasks[0]
    assert eager.attempt == 1 and eager.input.payloads[0].data == b'"in"'
    assert eager.workflow_execution.workflow_id == "eager" and eager.workflow_type.name == "Wf"
    assert eager.HasField("started_time") and eager.start_to_close_timeout.seconds == 10
    # Only the normal activity was pushed to Matching.
    normal = await d.poll_activity()
    assert normal.activity_id == "a-normal"
    assert [a.scheduled_event_id for a in env.matching.activity_tasks] == [6]
    await env.handler.RespondActivityTaskCompleted(
        hs.RespondActivityTaskCompletedRequest(
            namespace_id=env.namespace_id,
            request=ws.RespondActivityTaskCompletedRequest(task_token=eager.task_token, result=payloads(b'"out"'), identity="x"),
        )
    )
    events = await wait_history(d, "eager", "ACTIVITY_TASK_COMPLETED")
    started = [e for e in events if e.HasField("activity_task_started_event_attributes")]
    assert len(started) == 1
    assert started[0].activity_task_started_event_attributes.identity == "worker-1"
    assert started[0].activity_task_started_event_attributes.scheduled_event_id == 5


async def test_eager_activity_off_goes_through_matching(env: Env) -> None:
    env.service.config.enable_activity_eager_execution = False
    d = Driver(env)
    await d.start("not-eager")
    task = await d.poll_wft()
    resp = await d.complete(task, [cmd_activity("a", request_eager_execution=True)])
    assert not resp.activity_tasks
    assert (await d.poll_activity()).activity_id == "a"


async def test_cached_event_tail_matches_the_database(env: Env) -> None:
    """Reads served from the per-run event tail are exactly what the history tables hold."""
    from services.history.events import decode_batch

    d = Driver(env)
    run_id = await d.start("tail")
    task = await d.poll_wft()
    await d.complete(task, [cmd_activity("a1"), cmd_activity("a2", request_eager_execution=True)])
    act = await d.poll_activity()
    await env.handler.RespondActivityTaskCompleted(
        hs.RespondActivityTaskCompletedRequest(
            namespace_id=env.namespace_id,
            request=ws.RespondActivityTaskCompletedRequest(task_token=act.task_token, identity="x"),
        )
    )
    await wait_history(d, "tail", "ACTIVITY_TASK_COMPLETED")
    engine = env.service.engine
    shard = engine.shard(env.namespace_id, "tail")
    key = (env.namespace_id, "tail", run_id)
    ms = await shard.load(*key)
    assert ms is not None
    end = ms.record.next_event_id
    tail = shard.cached_events(key, 1, end)
    assert tail is None  # events up to the last completed WFT's started event were trimmed
    first = ms.record.last_completed_wft_started_event_id + 1
    tail = shard.cached_events(key, first, end)
    assert tail is not None and [e.event_id for e in tail] == list(range(first, end))
    batches = await env.persistence.executions.read_history(shard.shard_id, *key, first, end)
    stored = [e for b in batches for e in decode_batch(b.data) if first <= e.event_id < end]
    assert [e.SerializeToString() for e in tail] == [e.SerializeToString() for e in stored]
    # Evicted (as after a write of unknown outcome): nothing is served from memory any more.
    shard.evict(key)
    assert shard.cached_events(key, first, end) is None
