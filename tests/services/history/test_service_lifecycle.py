"""Restart recovery, shard ownership fencing, signal-with-start, ById completions and retention delete."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.api.common.v1 import message_pb2 as common_pb2
from temporalio.api.taskqueue.v1 import message_pb2 as taskqueue_pb2
from temporalio.api.workflowservice.v1 import request_response_pb2 as ws

from server.common.errors import NotFound, Unavailable
from server.gen.durata.internal.history.v1 import service_pb2 as hs
from services.history.config import HistoryConfig
from services.history.service import HistoryService

from .conftest import Env, FakeMatching
from .helpers import Driver, cmd_activity, cmd_complete, cmd_timer, names, payloads

WFE = common_pb2.WorkflowExecution


async def _new_service(env: Env) -> tuple[HistoryService, FakeMatching]:
    matching = FakeMatching()
    svc = HistoryService(env.persistence, env.clock, HistoryConfig(num_history_shards=99), "host-2")
    svc.matching_client = matching
    await svc.start()
    return svc, matching


async def test_timer_survives_restart(env):
    d = Driver(env)
    await d.start("wf-restart")
    await d.complete(await d.poll_wft(), [cmd_timer("t", 10)])
    await env.service.stop()
    svc, matching = await _new_service(env)
    try:
        assert svc.engine.num_shards == 2  # from cluster metadata, not the new config
        env.clock.advance(11)
        await matching.wait_for(lambda: matching.workflow_tasks)
        assert matching.workflow_tasks[0].execution.workflow_id == "wf-restart"
    finally:
        await svc.stop()


async def test_stale_owner_is_fenced(env):
    d = Driver(env)
    await d.start("wf-fence")
    svc, _ = await _new_service(env)  # takes over every shard (range_id bump)
    try:
        with pytest.raises(Unavailable):
            await d.start("wf-fence-2")  # the old owner's write is refused (range_id moved)
        assert len(env.service.engine.shards) == 1  # and it dropped that shard
        # The new owner serves the workflow.
        resp = await svc.handler.DescribeWorkflowExecution(
            hs.DescribeWorkflowExecutionRequest(
                namespace_id=env.namespace_id, request=ws.DescribeWorkflowExecutionRequest(execution=WFE(workflow_id="wf-fence"))
            )
        )
        assert resp.workflow_execution_info.execution.workflow_id == "wf-fence"
    finally:
        await svc.stop()


async def test_signal_with_start_new_and_existing(env):
    d = Driver(env)

    def req(request_id: str) -> hs.SignalWithStartWorkflowExecutionRequest:
        return hs.SignalWithStartWorkflowExecutionRequest(
            namespace_id=env.namespace_id,
            request=ws.SignalWithStartWorkflowExecutionRequest(
                workflow_id="wf-sws", workflow_type=common_pb2.WorkflowType(name="W"),
                task_queue=taskqueue_pb2.TaskQueue(name="tq"), signal_name="go", signal_input=payloads(b"1"), request_id=request_id,
            ),
        )

    first = await env.handler.SignalWithStartWorkflowExecution(req("a"))
    assert first.started
    second = await env.handler.SignalWithStartWorkflowExecution(req("b"))
    assert not second.started and second.run_id == first.run_id
    events = await d.history("wf-sws")
    assert names(events) == ["WORKFLOW_EXECUTION_STARTED", "WORKFLOW_EXECUTION_SIGNALED", "WORKFLOW_TASK_SCHEDULED", "WORKFLOW_EXECUTION_SIGNALED"]


async def test_activity_complete_by_id_and_delete(env):
    d = Driver(env)
    run_id = await d.start("wf-byid")
    await d.complete(await d.poll_wft(), [cmd_activity("a1")])
    await d.poll_activity()
    await env.handler.RespondActivityTaskCompleted(
        hs.RespondActivityTaskCompletedRequest(
            namespace_id=env.namespace_id,
            by_id_request=ws.RespondActivityTaskCompletedByIdRequest(workflow_id="wf-byid", activity_id="a1", result=payloads(b"2")),
        )
    )
    task = await d.poll_wft()
    assert "ACTIVITY_TASK_COMPLETED" in names(task.history.events)
    await d.complete(task, [cmd_complete()])
    # visibility row appears (visibility queue); DeleteWorkflowExecution (what the internal worker's
    # retention sweep calls) then removes everything
    for _ in range(100):
        rows, _tok = await env.persistence.visibility.list_executions(env.namespace_id, "", 10, None)
        if rows and rows[0].close_time is not None:
            break
        await asyncio.sleep(0.02)
    assert rows[0].run_id == run_id and rows[0].history_length == 11
    env.clock.advance(86400 + 5)  # History itself keeps closed runs: retention is not its job
    await asyncio.sleep(0.3)
    shard_id = env.service.engine.shard(env.namespace_id, "wf-byid").shard_id
    assert await env.persistence.executions.get_workflow_execution(shard_id, env.namespace_id, "wf-byid", run_id)
    await env.handler.DeleteWorkflowExecution(
        hs.DeleteWorkflowExecutionRequest(
            namespace_id=env.namespace_id,
            request=ws.DeleteWorkflowExecutionRequest(
                workflow_execution=common_pb2.WorkflowExecution(workflow_id="wf-byid", run_id=run_id)
            ),
        )
    )
    assert await env.persistence.executions.get_workflow_execution(shard_id, env.namespace_id, "wf-byid", run_id) is None
    assert await env.persistence.executions.get_current_execution(shard_id, env.namespace_id, "wf-byid") is None
    rows, _tok = await env.persistence.visibility.list_executions(env.namespace_id, "", 10, None)
    assert not [r for r in rows if r.run_id == run_id]
    with pytest.raises(NotFound):
        await d.history("wf-byid", run_id)


async def test_workflow_retry_policy_chains_runs(env):
    from temporalio.api.command.v1 import message_pb2 as command_pb2
    from temporalio.api.enums.v1 import command_type_pb2, workflow_pb2
    from temporalio.api.failure.v1 import message_pb2 as failure_pb2

    from .helpers import dur

    def fail_cmd() -> command_pb2.Command:
        return command_pb2.Command(
            command_type=command_type_pb2.COMMAND_TYPE_FAIL_WORKFLOW_EXECUTION,
            fail_workflow_execution_command_attributes=command_pb2.FailWorkflowExecutionCommandAttributes(
                failure=failure_pb2.Failure(message="wf failed", application_failure_info=failure_pb2.ApplicationFailureInfo(type="X"))
            ),
        )

    d = Driver(env)
    rp = common_pb2.RetryPolicy(initial_interval=dur(1), maximum_attempts=2)
    run1 = await d.start("wf-wretry", retry_policy=rp, input=payloads(b"7"))
    await d.complete(await d.poll_wft(), [fail_cmd()])
    events1 = await d.history("wf-wretry", run1)
    failed = events1[-1].workflow_execution_failed_event_attributes
    assert failed.retry_state == workflow_pb2.RETRY_STATE_IN_PROGRESS and failed.new_execution_run_id
    run2 = failed.new_execution_run_id
    events2 = await d.history("wf-wretry")  # current run is the retry
    assert names(events2) == ["WORKFLOW_EXECUTION_STARTED"]
    started = events2[0].workflow_execution_started_event_attributes
    assert started.attempt == 2 and started.first_execution_run_id == run1 and started.continued_execution_run_id == run1
    assert started.original_execution_run_id == run2 and started.input.payloads[0].data == b"7"
    assert started.first_workflow_task_backoff.seconds == 1 and started.continued_failure.message == "wf failed"
    env.clock.advance(1.5)
    task = await d.poll_wft()
    assert task.workflow_execution.run_id == run2
    await d.complete(task, [fail_cmd()])
    last = (await d.history("wf-wretry", run2))[-1].workflow_execution_failed_event_attributes
    assert last.retry_state == workflow_pb2.RETRY_STATE_MAXIMUM_ATTEMPTS_REACHED and not last.new_execution_run_id
