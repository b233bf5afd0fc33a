"""Service-level happy paths against real SQLite persistence and a fake Matching."""

from __future__ import annotations

from temporalio.api.common.v1 import message_pb2 as common_pb2
from temporalio.api.enums.v1 import workflow_pb2 as wf_enums
from temporalio.api.workflowservice.v1 import request_response_pb2 as ws

from server.gen.durata.internal.history.v1 import service_pb2 as hs

from .helpers import Driver, cmd_activity, cmd_complete, cmd_timer, names, payloads


async def test_activity_workflow_end_to_end(env):
    d = Driver(env)
    run_id = await d.start("wf-1", input=payloads(b'"hi"'))
    task = await d.poll_wft()
    assert task.started_event_id == 3 and task.previous_started_event_id == 0 and task.attempt == 1
    assert names(task.history.events) == ["WORKFLOW_EXECUTION_STARTED", "WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED"]
    started = task.history.events[0].workflow_execution_started_event_attributes
    assert started.original_execution_run_id == run_id and started.first_execution_run_id == run_id
    await d.complete(task, [cmd_activity("a1")])

    act = await d.poll_activity()
    assert act.activity_id == "a1" and act.attempt == 1 and act.workflow_namespace == "default"
    assert act.start_to_close_timeout.seconds == 10 and act.HasField("schedule_to_close_timeout")
    desc = await env.handler.DescribeWorkflowExecution(
        hs.DescribeWorkflowExecutionRequest(
            namespace_id=env.namespace_id,
            request=ws.DescribeWorkflowExecutionRequest(execution=common_pb2.WorkflowExecution(workflow_id="wf-1")),
        )
    )
    assert desc.pending_activities[0].state == wf_enums.PENDING_ACTIVITY_STATE_STARTED
    await env.handler.RespondActivityTaskCompleted(
        hs.RespondActivityTaskCompletedRequest(
            namespace_id=env.namespace_id,
            request=ws.RespondActivityTaskCompletedRequest(task_token=act.task_token, result=payloads(b"1"), identity="act-worker"),
        )
    )
    task2 = await d.poll_wft()
    assert task2.previous_started_event_id == 3
    await d.complete(task2, [cmd_complete()])
    events = await d.history("wf-1")
    assert names(events) == [
        "WORKFLOW_EXECUTION_STARTED",
        "WORKFLOW_TASK_SCHEDULED",
        "WORKFLOW_TASK_STARTED",
        "WORKFLOW_TASK_COMPLETED",
        "ACTIVITY_TASK_SCHEDULED",
        "ACTIVITY_TASK_STARTED",
        "ACTIVITY_TASK_COMPLETED",
        "WORKFLOW_TASK_SCHEDULED",
        "WORKFLOW_TASK_STARTED",
        "WORKFLOW_TASK_COMPLETED",
        "WORKFLOW_EXECUTION_COMPLETED",
    ]
    assert events[6].activity_task_completed_event_attributes.started_event_id == 6
    assert events[4].activity_task_scheduled_event_attributes.workflow_task_completed_event_id == 4
    close = await env.handler.GetWorkflowExecutionHistory(
        hs.GetWorkflowExecutionHistoryRequest(
            namespace_id=env.namespace_id,
            request=ws.GetWorkflowExecutionHistoryRequest(
                execution=common_pb2.WorkflowExecution(workflow_id="wf-1"),
                history_event_filter_type=wf_enums.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT,
                wait_new_event=True,
            ),
        )
    )
    assert names(close.history.events) == ["WORKFLOW_EXECUTION_COMPLETED"] and not close.next_page_token


async def test_timer_fires_with_manual_clock(env):
    d = Driver(env)
    await d.start("wf-timer")
    await d.complete(await d.poll_wft(), [cmd_timer("t1", 30)])
    env.clock.advance(29)
    env.clock.advance(2)
    task = await d.poll_wft()
    assert names(task.history.events)[-3:] == ["TIMER_FIRED", "WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED"]
    assert task.history.events[-3].timer_fired_event_attributes.timer_id == "t1"
