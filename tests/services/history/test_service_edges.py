"""Service-level edge cases: buffering, UnhandledCommand, transient WFTs, retries, timeouts, policies,
queries, termination, stickiness, long polls and bad tokens."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.api.common.v1 import message_pb2 as common_pb2
from temporalio.api.enums.v1 import failed_cause_pb2, query_pb2, workflow_pb2
from temporalio.api.errordetails.v1 import message_pb2 as errordetails
from temporalio.api.failure.v1 import message_pb2 as failure_pb2
from temporalio.api.query.v1 import message_pb2 as q_pb2
from temporalio.api.taskqueue.v1 import message_pb2 as taskqueue_pb2
from temporalio.api.workflowservice.v1 import request_response_pb2 as ws

from server.common.errors import AlreadyExists, InvalidArgument, NotFound
from server.gen.durata.internal.history.v1 import service_pb2 as hs
from server.gen.durata.internal.matching.v1 import service_pb2 as mpb

from .helpers import Driver, cmd_activity, cmd_complete, dur, names, payloads

WFE = common_pb2.WorkflowExecution


async def _settle(env) -> None:
    """Let the queue processors catch up with a clock change (they run on real asyncio time)."""
    await asyncio.sleep(0.3)


def signal_req(ns: str, wf: str, name: str = "sig", request_id: str = "") -> hs.SignalWorkflowExecutionRequest:
    return hs.SignalWorkflowExecutionRequest(
        namespace_id=ns,
        request=ws.SignalWorkflowExecutionRequest(
            workflow_execution=WFE(workflow_id=wf), signal_name=name, input=payloads(b"1"), identity="client", request_id=request_id
        ),
    )


async def test_signal_during_started_wft_is_buffered_then_unhandled_command(env):
    d = Driver(env)
    await d.start("wf-sig")
    task = await d.poll_wft()
    await env.handler.SignalWorkflowExecution(signal_req(env.namespace_id, "wf-sig", request_id="r1"))
    await env.handler.SignalWorkflowExecution(signal_req(env.namespace_id, "wf-sig", request_id="r1"))  # deduped
    with pytest.raises(InvalidArgument) as ei:
        await d.complete(task, [cmd_complete()])
    assert ei.value.message == "UnhandledCommand"
    task2 = await d.poll_wft()
    assert names(task2.history.events) == [
        "WORKFLOW_EXECUTION_STARTED", "WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED", "WORKFLOW_TASK_FAILED",
        "WORKFLOW_EXECUTION_SIGNALED", "WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED",
    ]
    assert task2.history.events[3].workflow_task_failed_event_attributes.cause == failed_cause_pb2.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND
    assert task2.attempt == 1
    await d.complete(task2, [cmd_complete()])
    events = await d.history("wf-sig")
    assert names(events)[-2:] == ["WORKFLOW_TASK_COMPLETED", "WORKFLOW_EXECUTION_COMPLETED"]


async def test_signal_flushed_after_commands_and_new_wft(env):
    d = Driver(env)
    await d.start("wf-sig2")
    task = await d.poll_wft()
    await env.handler.SignalWorkflowExecution(signal_req(env.namespace_id, "wf-sig2"))
    await d.complete(task, [cmd_activity("a1")])
    task2 = await d.poll_wft()
    assert names(task2.history.events)[3:] == [
        "WORKFLOW_TASK_COMPLETED", "ACTIVITY_TASK_SCHEDULED", "WORKFLOW_EXECUTION_SIGNALED", "WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED",
    ]


async def test_transient_workflow_task_after_failure(env):
    d = Driver(env)
    await d.start("wf-fail")
    task = await d.poll_wft()
    await env.handler.RespondWorkflowTaskFailed(
        hs.RespondWorkflowTaskFailedRequest(
            namespace_id=env.namespace_id,
            request=ws.RespondWorkflowTaskFailedRequest(
                task_token=task.task_token,
                cause=failed_cause_pb2.WORKFLOW_TASK_FAILED_CAUSE_WORKFLOW_WORKER_UNHANDLED_FAILURE,
                failure=failure_pb2.Failure(message="boom"),
                identity="worker-1",
            ),
        )
    )
    task2 = await d.poll_wft()
    assert task2.attempt == 2
    assert names(task2.history.events) == [
        "WORKFLOW_EXECUTION_STARTED", "WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED", "WORKFLOW_TASK_FAILED",
        "WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED",
    ]
    assert [e.event_id for e in task2.history.events] == [1, 2, 3, 4, 5, 6] and task2.started_event_id == 6
    # The transient events are not persisted yet...
    assert len(await d.history("wf-fail")) == 4
    # ...a start-to-close timeout of the transient task writes nothing and bumps the attempt.
    env.clock.advance(11)
    task3 = await d.poll_wft()
    assert task3.attempt == 3 and task3.started_event_id == 6
    assert len(await d.history("wf-fail")) == 4
    await d.complete(task3, [cmd_complete()])
    events = await d.history("wf-fail")
    assert names(events)[4:] == ["WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED", "WORKFLOW_TASK_COMPLETED", "WORKFLOW_EXECUTION_COMPLETED"]
    assert events[4].workflow_task_scheduled_event_attributes.attempt == 3
    # stale token from attempt 2
    with pytest.raises(NotFound):
        await d.complete(task2, [cmd_complete()])


async def test_activity_retry_then_heartbeat_timeout(env):
    d = Driver(env)
    await d.start("wf-retry")
    rp = common_pb2.RetryPolicy(initial_interval=dur(1), maximum_attempts=3)
    await d.complete(await d.poll_wft(), [cmd_activity("a1", heartbeat_timeout=dur(5), retry_policy=rp)])
    act = await d.poll_activity()
    hb = await env.handler.RecordActivityTaskHeartbeat(
        hs.RecordActivityTaskHeartbeatRequest(
            namespace_id=env.namespace_id,
            request=ws.RecordActivityTaskHeartbeatRequest(task_token=act.task_token, details=payloads(b"7")),
        )
    )
    assert not hb.cancel_requested
    await env.handler.RespondActivityTaskFailed(
        hs.RespondActivityTaskFailedRequest(
            namespace_id=env.namespace_id,
            request=ws.RespondActivityTaskFailedRequest(
                task_token=act.task_token, failure=failure_pb2.Failure(message="oops", application_failure_info={}), identity="w"
            ),
        )
    )
    env.clock.advance(1.5)
    act2 = await d.poll_activity()
    assert act2.attempt == 2 and act2.heartbeat_details.payloads[0].data == b"7"
    with pytest.raises(NotFound):  # old attempt's token is stale
        await env.handler.RespondActivityTaskCompleted(
            hs.RespondActivityTaskCompletedRequest(
                namespace_id=env.namespace_id, request=ws.RespondActivityTaskCompletedRequest(task_token=act.task_token)
            )
        )
    env.clock.advance(6)  # heartbeat timeout -> retry attempt 3 after a 2 s backoff
    await _settle(env)
    env.clock.advance(3)
    act3 = await d.poll_activity()
    assert act3.attempt == 3
    env.clock.advance(6)  # heartbeat timeout on the last attempt -> final failure
    task = await d.poll_wft()
    ev = names(task.history.events)
    assert ev[-4:] == ["ACTIVITY_TASK_STARTED", "ACTIVITY_TASK_TIMED_OUT", "WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED"]
    started = task.history.events[-4].activity_task_started_event_attributes
    assert started.attempt == 3
    timed_out = task.history.events[-3].activity_task_timed_out_event_attributes
    assert timed_out.retry_state == workflow_pb2.RETRY_STATE_MAXIMUM_ATTEMPTS_REACHED
    assert timed_out.failure.timeout_failure_info.timeout_type == workflow_pb2.TIMEOUT_TYPE_HEARTBEAT


async def test_activity_cancel_before_start_and_after_start(env):
    from temporalio.api.command.v1 import message_pb2 as command_pb2
    from temporalio.api.enums.v1 import command_type_pb2

    d = Driver(env)
    await d.start("wf-cancel-act")
    await d.complete(await d.poll_wft(), [cmd_activity("a1"), cmd_activity("a2")])
    act = await d.poll_activity()  # a1 started, a2 not
    task = await d.poll_wft() if False else None  # no WFT pending
    assert task is None
    await env.handler.SignalWorkflowExecution(signal_req(env.namespace_id, "wf-cancel-act"))
    task = await d.poll_wft()
    cancel = lambda sid: command_pb2.Command(  # noqa: E731
        command_type=command_type_pb2.COMMAND_TYPE_REQUEST_CANCEL_ACTIVITY_TASK,
        request_cancel_activity_task_command_attributes=command_pb2.RequestCancelActivityTaskCommandAttributes(scheduled_event_id=sid),
    )
    await d.complete(task, [cancel(5), cancel(6)])
    hb = await env.handler.RecordActivityTaskHeartbeat(
        hs.RecordActivityTaskHeartbeatRequest(
            namespace_id=env.namespace_id, request=ws.RecordActivityTaskHeartbeatRequest(task_token=act.task_token)
        )
    )
    assert hb.cancel_requested
    task2 = await d.poll_wft()  # forced by the immediate cancel of a2
    assert "ACTIVITY_TASK_CANCELED" in names(task2.history.events)
    await env.handler.RespondActivityTaskCanceled(
        hs.RespondActivityTaskCanceledRequest(
            namespace_id=env.namespace_id, request=ws.RespondActivityTaskCanceledRequest(task_token=act.task_token)
        )
    )
    await d.complete(task2, [])
    task3 = await d.poll_wft()
    tail = names(task3.history.events)[-4:]
    assert tail == ["ACTIVITY_TASK_STARTED", "ACTIVITY_TASK_CANCELED", "WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED"]


async def test_start_policies_and_idempotency(env):
    d = Driver(env)
    run1 = await d.start("wf-dup", request_id="req-1")
    assert await d.start("wf-dup", request_id="req-1") == run1
    with pytest.raises(AlreadyExists) as ei:
        await d.start("wf-dup", request_id="req-2")
    assert isinstance(ei.value.detail, errordetails.WorkflowExecutionAlreadyStartedFailure)
    assert ei.value.detail.run_id == run1
    assert await d.start(
        "wf-dup", request_id="req-3", workflow_id_conflict_policy=workflow_pb2.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING
    ) == run1
    run2 = await d.start(
        "wf-dup", request_id="req-4", workflow_id_conflict_policy=workflow_pb2.WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING
    )
    assert run2 != run1
    old = await d.history("wf-dup", run1)
    assert names(old)[-1] == "WORKFLOW_EXECUTION_TERMINATED"
    with pytest.raises(InvalidArgument):
        await d.start("", request_id="x")


async def test_terminate_fails_started_wft_and_flushes(env):
    d = Driver(env)
    await d.start("wf-term")
    await d.poll_wft()
    await env.handler.SignalWorkflowExecution(signal_req(env.namespace_id, "wf-term"))
    await env.handler.TerminateWorkflowExecution(
        hs.TerminateWorkflowExecutionRequest(
            namespace_id=env.namespace_id,
            request=ws.TerminateWorkflowExecutionRequest(workflow_execution=WFE(workflow_id="wf-term"), reason="bye", identity="cli"),
        )
    )
    events = await d.history("wf-term")
    assert names(events)[3:] == ["WORKFLOW_TASK_FAILED", "WORKFLOW_EXECUTION_SIGNALED", "WORKFLOW_EXECUTION_TERMINATED"]
    with pytest.raises(NotFound):
        await env.handler.SignalWorkflowExecution(signal_req(env.namespace_id, "wf-term"))


async def test_history_long_poll_wakes_on_new_event(env):
    d = Driver(env)
    run_id = await d.start("wf-poll")
    first = await env.handler.GetWorkflowExecutionHistory(
        hs.GetWorkflowExecutionHistoryRequest(
            namespace_id=env.namespace_id,
            request=ws.GetWorkflowExecutionHistoryRequest(execution=WFE(workflow_id="wf-poll", run_id=run_id), wait_new_event=True),
        )
    )
    assert len(first.history.events) == 2 and first.next_page_token

    async def poll():
        return await env.handler.GetWorkflowExecutionHistory(
            hs.GetWorkflowExecutionHistoryRequest(
                namespace_id=env.namespace_id,
                request=ws.GetWorkflowExecutionHistoryRequest(
                    execution=WFE(workflow_id="wf-poll", run_id=run_id), wait_new_event=True, next_page_token=first.next_page_token
                ),
            )
        )

    waiter = asyncio.create_task(poll())
    await asyncio.sleep(0.05)
    assert not waiter.done()
    await d.poll_wft()
    resp = await asyncio.wait_for(waiter, 5)
    assert names(resp.history.events) == ["WORKFLOW_TASK_STARTED"] and resp.next_page_token
    with pytest.raises(NotFound):
        await env.handler.GetWorkflowExecutionHistory(
            hs.GetWorkflowExecutionHistoryRequest(
                namespace_id=env.namespace_id,
                request=ws.GetWorkflowExecutionHistoryRequest(execution=WFE(workflow_id="wf-poll", run_id=str(uuid.uuid4()))),
            )
        )


async def test_query_attached_to_wft_and_legacy_path(env):
    d = Driver(env)
    await d.start("wf-q")
    task = await d.poll_wft()
    qreq = hs.QueryWorkflowRequest(
        namespace_id=env.namespace_id,
        request=ws.QueryWorkflowRequest(execution=WFE(workflow_id="wf-q"), query=q_pb2.WorkflowQuery(query_type="state")),
    )
    waiter = asyncio.create_task(env.handler.QueryWorkflow(qreq))
    await asyncio.sleep(0.05)
    await env.handler.SignalWorkflowExecution(signal_req(env.namespace_id, "wf-q"))
    await d.complete(task, [])
    task2 = await d.poll_wft()
    assert len(task2.queries) == 1
    qid = next(iter(task2.queries))
    answer = q_pb2.WorkflowQueryResult(result_type=query_pb2.QUERY_RESULT_TYPE_ANSWERED, answer=payloads(b"42"))
    await d.complete(task2, [], query_results={qid: answer})
    resp = await asyncio.wait_for(waiter, 5)
    assert resp.query_result.payloads[0].data == b"42"
    # No WFT pending now: legacy query task through matching, FAILED -> InvalidArgument + QueryFailedFailure.
    env.matching.query_answer = mpb.QueryWorkflowResponse(completed_type=query_pb2.QUERY_RESULT_TYPE_FAILED, error_message="nope")
    with pytest.raises(InvalidArgument) as ei:
        await env.handler.QueryWorkflow(qreq)
    assert isinstance(ei.value.detail, errordetails.QueryFailedFailure)
    assert env.matching.queries[-1].task_queue.name == "tq"


async def test_sticky_queue_and_fallback(env):
    d = Driver(env)
    await d.start("wf-sticky")
    task = await d.poll_wft()
    sticky = taskqueue_pb2.StickyExecutionAttributes(worker_task_queue=taskqueue_pb2.TaskQueue(name="sticky-1"), schedule_to_start_timeout=dur(5))
    await d.complete(task, [cmd_activity("a1")], sticky_attributes=sticky)
    act = await d.poll_activity()
    await env.handler.RespondActivityTaskCompleted(
        hs.RespondActivityTaskCompletedRequest(
            namespace_id=env.namespace_id, request=ws.RespondActivityTaskCompletedRequest(task_token=act.task_token)
        )
    )
    add = await d.next_wft_add()
    assert add.task_queue.name == "sticky-1"
    d._wft_seen -= 1
    task2 = await d.poll_wft(sticky="sticky-1")
    assert task2.history.events[0].event_id == 4  # partial history from previous_started + 1
    await d.complete(task2, [cmd_activity("a2")], sticky_attributes=sticky)
    env.matching.refuse_sticky = True
    act2 = await d.poll_activity()
    await env.handler.RespondActivityTaskCompleted(
        hs.RespondActivityTaskCompletedRequest(
            namespace_id=env.namespace_id, request=ws.RespondActivityTaskCompletedRequest(task_token=act2.task_token)
        )
    )
    add = await d.next_wft_add()
    assert add.task_queue.name == "tq"  # sticky worker unavailable -> normal queue


async def test_sticky_schedule_to_start_timeout(env):
    d = Driver(env)
    await d.start("wf-sticky-to")
    sticky = taskqueue_pb2.StickyExecutionAttributes(worker_task_queue=taskqueue_pb2.TaskQueue(name="sticky-2"), schedule_to_start_timeout=dur(5))
    await d.complete(await d.poll_wft(), [], sticky_attributes=sticky)
    await env.handler.SignalWorkflowExecution(signal_req(env.namespace_id, "wf-sticky-to"))
    add = await d.next_wft_add()
    assert add.task_queue.name == "sticky-2"
    env.clock.advance(6)
    task = await d.poll_wft()
    assert names(task.history.events)[-4:] == ["WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_TIMED_OUT", "WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED"]
    assert task.attempt == 1


async def test_garbage_tokens(env):
    with pytest.raises(InvalidArgument):
        await env.handler.RespondWorkflowTaskCompleted(
            hs.RespondWorkflowTaskCompletedRequest(
                namespace_id=env.namespace_id, request=ws.RespondWorkflowTaskCompletedRequest(task_token=b"\xff\x00garbage")
            )
        )
    with pytest.raises(InvalidArgument):
        await env.handler.RecordActivityTaskHeartbeat(
            hs.RecordActivityTaskHeartbeatRequest(
                namespace_id=env.namespace_id, request=ws.RecordActivityTaskHeartbeatRequest(task_token=b"")
            )
        )


async def test_describe_and_run_timeout(env):
    d = Driver(env)
    await d.start("wf-runto", workflow_run_timeout=dur(60))
    await d.poll_wft()
    desc = await env.handler.DescribeWorkflowExecution(
        hs.DescribeWorkflowExecutionRequest(
            namespace_id=env.namespace_id, request=ws.DescribeWorkflowExecutionRequest(execution=WFE(workflow_id="wf-runto"))
        )
    )
    assert desc.pending_workflow_task.state == workflow_pb2.PENDING_WORKFLOW_TASK_STATE_STARTED
    assert desc.execution_config.default_workflow_task_timeout.seconds == 10
    env.clock.advance(61)
    for _ in range(100):
        events = await d.history("wf-runto")
        if names(events)[-1] == "WORKFLOW_EXECUTION_TIMED_OUT":
            break
        await asyncio.sleep(0.02)
    # WFT start-to-close (10 s) fires first in the same advance; either way the run ends timed out.
    assert names(events)[-1] == "WORKFLOW_EXECUTION_TIMED_OUT"
