"""Feature tests for the Durata SDK against a real Temporal-API server."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from durata.client import (
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHistory,
    WorkflowUpdateFailedError,
)
from durata.exceptions import ApplicationError, CancelledError, TerminatedError
from durata.worker import Worker
from temporalio.api.enums.v1.event_type_pb2 import EventType

from .conftest import wait_for
from .workflows import (
    ALL_ACTIVITIES,
    ALL_WORKFLOWS,
    CancelActivityWorkflow,
    DeterministicWorkflow,
    HelloWorkflow,
    LoopingWorkflow,
    ParentWorkflow,
    PatchedWorkflow,
    RetryWorkflow,
    SignalQueryUpdateWorkflow,
    TimerWorkflow,
    WaitForeverWorkflow,
)


def _worker(client, tq: str) -> Worker:
    return Worker(client, task_queue=tq, workflows=ALL_WORKFLOWS, activities=ALL_ACTIVITIES)


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4()}"


async def test_hello_activity(client, task_queue):
    async with _worker(client, task_queue):
        result = await client.execute_workflow(HelloWorkflow.run, "World", id=_id("hello"), task_queue=task_queue)
    assert result == "Hello, World! / sync hello, World"


async def test_activities_come_back_eagerly_in_the_completion_response(client, task_queue):
    worker = _worker(client, task_queue)
    async with worker:
        result = await client.execute_workflow(HelloWorkflow.run, "Eager", id=_id("eager"), task_queue=task_queue)
    assert result == "Hello, Eager! / sync hello, Eager"
    assert worker._act is not None and worker._act.eager_started == 2  # neither went through a poll


async def test_eager_activity_execution_can_be_disabled(client, task_queue):
    worker = Worker(client, task_queue=task_queue, workflows=ALL_WORKFLOWS, activities=ALL_ACTIVITIES,
                    disable_eager_activity_execution=True)
    async with worker:
        result = await client.execute_workflow(HelloWorkflow.run, "Poll", id=_id("no-eager"), task_queue=task_queue)
    assert result == "Hello, Poll! / sync hello, Poll"
    assert worker._act is not None and worker._act.eager_started == 0


async def test_activity_retries_and_failures(client, task_queue):
    async with _worker(client, task_queue):
        result = await client.execute_workflow(RetryWorkflow.run, id=_id("retry"), task_queue=task_queue)
    assert result == {"attempts": 3, "err": "ActivityError", "cause_type": "Fatal", "details": [{"k": 1}]}


@pytest.mark.parametrize("sync", [False, True])
async def test_heartbeat_and_cancellation(client, task_queue, sync):
    async with _worker(client, task_queue):
        result = await client.execute_workflow(CancelActivityWorkflow.run, sync, id=_id("cancel-act"),
                                               task_queue=task_queue)
    assert result == "ActivityError:CancelledError"


async def test_timers_and_timeouts(client, task_queue):
    async with _worker(client, task_queue):
        result = await client.execute_workflow(TimerWorkflow.run, id=_id("timer"), task_queue=task_queue)
    assert result == ["slept True", "timeout", "cond timeout"]


async def test_signals_queries_updates(client, task_queue):
    async with _worker(client, task_queue):
        handle = await client.start_workflow(SignalQueryUpdateWorkflow.run, id=_id("squ"), task_queue=task_queue)
        await handle.signal(SignalQueryUpdateWorkflow.add, "a")
        await wait_for(lambda: _query_eq(handle, ["a"]))
        assert "wait_condition" in await handle.query("__stack_trace")
        assert await handle.execute_update(SignalQueryUpdateWorkflow.add_and_count, "b") == 2
        with pytest.raises(WorkflowUpdateFailedError) as info:
            await handle.execute_update(SignalQueryUpdateWorkflow.add_and_count, "")
        assert "empty item rejected" in str(info.value.__cause__)
        upd = await handle.start_update("add_and_count", "c", id="upd-c")
        assert await upd.result() == 3
        await handle.signal("finish")
        assert await handle.result() == ["a", "b", "c"]
        meta = await handle.query("__temporal_workflow_metadata")
        assert meta.definition.type == "SignalQueryUpdateWorkflow"
        assert {q.name for q in meta.definition.signal_definitions} == {"add", "finish"}
        # Queries on a closed workflow are answered from replayed history.
        assert await handle.query(SignalQueryUpdateWorkflow.get_items) == ["a", "b", "c"]


async def _query_eq(handle, expected) -> bool:
    return await handle.query(SignalQueryUpdateWorkflow.get_items) == expected


async def test_signal_with_start(client, task_queue):
    async with _worker(client, task_queue):
        wid = _id("sws")
        handle = await client.start_workflow(SignalQueryUpdateWorkflow.run, id=wid, task_queue=task_queue,
                                             start_signal="add", start_signal_args=["first"])
        await client.get_workflow_handle(wid).signal("finish")
        assert await handle.result() == ["first"]


async def test_child_workflows(client, task_queue):
    async with _worker(client, task_queue):
        result = await client.execute_workflow(ParentWorkflow.run, 21, id=_id("parent"), task_queue=task_queue)
    assert result == [42, "ChildWorkflowError", "Negative"]


async def test_continue_as_new_result_follows_chain(client, task_queue):
    async with _worker(client, task_queue):
        handle = await client.start_workflow(LoopingWorkflow.run, args=[3, 0], id=_id("can"), task_queue=task_queue)
        assert await handle.result() == 6
        desc = await client.get_workflow_handle(handle.id, run_id=handle.result_run_id).describe()
        assert desc.status == WorkflowExecutionStatus.CONTINUED_AS_NEW


async def test_patched(client, task_queue):
    async with _worker(client, task_queue):
        assert await client.execute_workflow(PatchedWorkflow.run, id=_id("patch"), task_queue=task_queue) == "new"


async def test_deterministic_random_uuid(client, task_queue):
    async with Worker(client, task_queue=task_queue, workflows=ALL_WORKFLOWS, activities=ALL_ACTIVITIES,
                      max_cached_workflows=0):
        # No cache: every task replays from the start, so values must be reproduced exactly.
        r, u, r2, _ = await client.execute_workflow(DeterministicWorkflow.run, id=_id("det"), task_queue=task_queue)
    assert isinstance(r, int) and isinstance(r2, int) and uuid.UUID(u).version == 4


async def test_cancel_and_terminate(client, task_queue):
    async with _worker(client, task_queue):
        h1 = await client.start_workflow(WaitForeverWorkflow.run, id=_id("cancel"), task_queue=task_queue)
        await wait_for(lambda: _has_pending_activity(h1))
        await h1.cancel()
        with pytest.raises(WorkflowFailureError) as info:
            await h1.result()
        assert isinstance(info.value.__cause__, CancelledError)
        assert (await h1.describe()).status == WorkflowExecutionStatus.CANCELED

        h2 = await client.start_workflow(WaitForeverWorkflow.run, id=_id("term"), task_queue=task_queue)
        await h2.terminate(reason="because")
        with pytest.raises(WorkflowFailureError) as info2:
            await h2.result()
        assert isinstance(info2.value.__cause__, TerminatedError)


async def _has_pending_activity(handle) -> bool:
    return bool((await handle.describe()).raw_description.pending_activities)


async def test_describe_list_count_history(client, task_queue):
    async with _worker(client, task_queue):
        wid = _id("vis")
        handle = await client.start_workflow(HelloWorkflow.run, "V", id=wid, task_queue=task_queue,
                                             memo={"owner": "team-a"}, execution_timeout=timedelta(minutes=5))
        await handle.result()
    desc = await handle.describe()
    assert desc.status == WorkflowExecutionStatus.COMPLETED
    assert desc.workflow_type == "HelloWorkflow" and desc.task_queue == task_queue
    assert await desc.memo() == {"owner": "team-a"}
    history = await handle.fetch_history()
    assert history.events[0].event_type == 1 and history.events[-1].event_type == 2
    query = f"WorkflowId = '{wid}'"
    found = await wait_for(lambda: _list(client, query))
    assert found[0].id == wid and found[0].status == WorkflowExecutionStatus.COMPLETED
    count = await client.count_workflows(query)
    assert count.count == 1
    grouped = await client.count_workflows(f"{query} GROUP BY ExecutionStatus")
    assert [(g.group_values, g.count) for g in grouped.groups] == [(["Completed"], 1)]


async def _list(client, query):
    return [w async for w in client.list_workflows(query)]


async def test_workflow_failure_maps_application_error(client, task_queue):
    from .workflows import ChildWorkflow

    async with _worker(client, task_queue):
        with pytest.raises(WorkflowFailureError) as info:
            await client.execute_workflow(ChildWorkflow.run, -5, id=_id("fail"), task_queue=task_queue)
    cause = info.value.__cause__
    assert isinstance(cause, ApplicationError) and cause.type == "Negative" and cause.non_retryable


async def test_updates_and_queries_without_cache(client, task_queue):
    async with Worker(client, task_queue=task_queue, workflows=ALL_WORKFLOWS, activities=ALL_ACTIVITIES,
                      max_cached_workflows=0):
        handle = await client.start_workflow(SignalQueryUpdateWorkflow.run, id=_id("nocache"), task_queue=task_queue)
        await handle.signal(SignalQueryUpdateWorkflow.add, "x")
        assert await handle.execute_update(SignalQueryUpdateWorkflow.add_and_count, "y") == 2
        assert await handle.query(SignalQueryUpdateWorkflow.get_items) == ["x", "y"]
        await handle.signal(SignalQueryUpdateWorkflow.finish)
        assert await asyncio.wait_for(handle.result(), 20) == ["x", "y"]


async def test_local_activities(client, task_queue):
    from .workflows import LocalActivityWorkflow

    async with _worker(client, task_queue):
        handle = await client.start_workflow(LocalActivityWorkflow.run, 1, id=_id("local"), task_queue=task_queue)
        assert await handle.result() == [2, "sync hello, local", "ActivityError", "Fatal"]
    from durata.worker import Replayer

    history = await handle.fetch_history()
    assert sum(e.HasField("marker_recorded_event_attributes") for e in history.events) == 3
    await Replayer(workflows=ALL_WORKFLOWS).replay_workflow(history)


async def test_child_cancellation(client, task_queue):
    from .workflows import CancelChildWorkflow

    async with _worker(client, task_queue):
        wid = _id("cancel-child")
        assert await client.execute_workflow(CancelChildWorkflow.run, id=wid, task_queue=task_queue) == \
            "ChildWorkflowError:CancelledError"
        child_desc = await client.get_workflow_handle(f"{wid}-child").describe()
    assert child_desc.status == WorkflowExecutionStatus.CANCELED


async def test_cancel_activity_before_start(client, task_queue):
    from durata.worker import Replayer

    from .workflows import CancelUnstartedActivityWorkflow

    async with Worker(client, task_queue=task_queue, workflows=ALL_WORKFLOWS, activities=ALL_ACTIVITIES,
                      max_cached_workflows=0):
        handle = await client.start_workflow(CancelUnstartedActivityWorkflow.run, id=_id("cancel-unstarted"),
                                             task_queue=task_queue)
        assert await handle.result() == "ActivityError:CancelledError"
    history = await handle.fetch_history()
    names = [e.event_type for e in history.events]
    # A server may write ActivityTaskCanceled right after the cancel request or after the completion's other
    # command events; replay accepts both.
    i = names.index(EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED)
    assert sorted(names[i + 1:i + 3]) == [EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED, EventType.EVENT_TYPE_TIMER_STARTED]
    await Replayer(workflows=ALL_WORKFLOWS).replay_workflow(history)
    # Same history with the cancellation written between the completion's command events.
    events = [type(e)() for e in history.events]
    for dst, src in zip(events, history.events, strict=True):
        dst.CopyFrom(src)
    a, b = events[i + 1], events[i + 2]
    a.event_id, b.event_id = b.event_id, a.event_id
    events[i + 1], events[i + 2] = (b, a) if a.event_type == EventType.EVENT_TYPE_TIMER_STARTED else (a, b)
    await Replayer(workflows=ALL_WORKFLOWS).replay_workflow(WorkflowHistory(handle.id, events))


async def test_heartbeat_details_survive_retry(client, task_queue):
    from .workflows import HeartbeatResumeWorkflow

    async with _worker(client, task_queue):
        assert await client.execute_workflow(HeartbeatResumeWorkflow.run, id=_id("hb-resume"),
                                             task_queue=task_queue) == [2, 5]


async def test_activities_on_an_instance(client, task_queue):
    from .workflows import Inventory, InventoryWorkflow

    inv = Inventory(10)
    async with Worker(client, task_queue=task_queue, workflows=[InventoryWorkflow], activities=[inv.reserve, inv.peek]):
        assert await client.execute_workflow(InventoryWorkflow.run, 3, id=_id("inv"), task_queue=task_queue) == [7, 7]


async def test_workflow_init_receives_arguments(client, task_queue):
    from .workflows import InitWorkflow

    async with _worker(client, task_queue):
        assert await client.execute_workflow(InitWorkflow.run, "x", id=_id("init"), task_queue=task_queue) == \
            "init saw x; run saw x"
