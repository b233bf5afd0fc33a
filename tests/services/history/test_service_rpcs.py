"""RPC contracts: handshake idempotency, query-only tasks, pagination, cancel requests, NotFound paths."""

from __future__ import annotations

import uuid

import pytest
from temporalio.api.common.v1 import message_pb2 as common_pb2
from temporalio.api.enums.v1 import task_queue_pb2
from temporalio.api.query.v1 import message_pb2 as q_pb2
from temporalio.api.taskqueue.v1 import message_pb2 as taskqueue_pb2
from temporalio.api.workflowservice.v1 import request_response_pb2 as ws

from server.common.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from server.gen.durata.internal.history.v1 import service_pb2 as hs

from .helpers import Driver, cmd_activity, cmd_complete, names

WFE = common_pb2.WorkflowExecution


def _started_req(env, add, request_id: str, kind: int = task_queue_pb2.TASK_QUEUE_KIND_NORMAL, name: str = "tq", **kw):
    return hs.RecordWorkflowTaskStartedRequest(
        namespace_id=env.namespace_id,
        workflow_execution=add.execution,
        scheduled_event_id=add.scheduled_event_id,
        attempt=add.attempt,
        stamp=add.stamp,
        request_id=request_id,
        poll_request=ws.PollWorkflowTaskQueueRequest(task_queue=taskqueue_pb2.TaskQueue(name=name, kind=kind), identity="w"),
        **kw,
    )


async def test_record_started_is_idempotent_per_request_id(env):
    d = Driver(env)
    await d.start("wf-idem")
    add = await d.next_wft_add()
    first = await env.handler.RecordWorkflowTaskStarted(_started_req(env, add, "req-a"))
    again = await env.handler.RecordWorkflowTaskStarted(_started_req(env, add, "req-a"))
    assert again.task_token == first.task_token and again.started_event_id == first.started_event_id
    with pytest.raises(AlreadyExists):
        await env.handler.RecordWorkflowTaskStarted(_started_req(env, add, "req-b"))
    await d.complete(first, [cmd_complete()])
    with pytest.raises(NotFound):
        await env.handler.RecordWorkflowTaskStarted(_started_req(env, add, "req-c"))


async def test_sticky_poller_refused_when_run_not_sticky(env):
    d = Driver(env)
    await d.start("wf-sticky-mismatch")
    add = await d.next_wft_add()
    with pytest.raises(FailedPrecondition):
        await env.handler.RecordWorkflowTaskStarted(
            _started_req(env, add, "r", kind=task_queue_pb2.TASK_QUEUE_KIND_STICKY, name="someone-sticky")
        )


async def test_query_only_task_has_full_or_empty_history(env):
    d = Driver(env)
    await d.start("wf-qonly")
    add = await d.next_wft_add()
    query = q_pb2.WorkflowQuery(query_type="q")
    full = await env.handler.RecordWorkflowTaskStarted(_started_req(env, add, "", query_id="q1", query=query))
    assert full.started_event_id == 0 and full.attempt == 1 and full.query.query_type == "q"
    assert names(full.history.events) == ["WORKFLOW_EXECUTION_STARTED", "WORKFLOW_TASK_SCHEDULED"]
    sticky = await env.handler.RecordWorkflowTaskStarted(
        _started_req(env, add, "", kind=task_queue_pb2.TASK_QUEUE_KIND_STICKY, name="s", query_id="q2", query=query)
    )
    assert len(sticky.history.events) == 0 and sticky.task_token
    # the real WFT is untouched by query-only dispatches
    task = await env.handler.RecordWorkflowTaskStarted(_started_req(env, add, "real"))
    assert task.started_event_id == 3


async def test_history_pagination_and_token_checks(env):
    d = Driver(env)
    run_id = await d.start("wf-pages")
    await d.complete(await d.poll_wft(), [cmd_activity(f"a{i}") for i in range(5)])
    events, token, pages = [], b"", 0
    while True:
        resp = await env.handler.GetWorkflowExecutionHistory(
            hs.GetWorkflowExecutionHistoryRequest(
                namespace_id=env.namespace_id,
                request=ws.GetWorkflowExecutionHistoryRequest(
                    execution=WFE(workflow_id="wf-pages", run_id=run_id), maximum_page_size=3, next_page_token=token
                ),
            )
        )
        events.extend(resp.history.events)
        pages += 1
        token = resp.next_page_token
        if not token:
            break
    assert [e.event_id for e in events] == list(range(1, 10)) and pages == 3
    bad_token = hs.GetWorkflowExecutionHistoryRequest(
        namespace_id=env.namespace_id,
        request=ws.GetWorkflowExecutionHistoryRequest(execution=WFE(workflow_id="wf-pages", run_id=run_id), next_page_token=b"\x01garbage"),
    )
    with pytest.raises(InvalidArgument):
        await env.handler.GetWorkflowExecutionHistory(bad_token)


async def test_cancel_request_idempotent_and_first_run_check(env):
    d = Driver(env)
    run_id = await d.start("wf-cancel")

    def req(first: str = "", request_id: str = "") -> hs.RequestCancelWorkflowExecutionRequest:
        return hs.RequestCancelWorkflowExecutionRequest(
            namespace_id=env.namespace_id,
            request=ws.RequestCancelWorkflowExecutionRequest(
                workflow_execution=WFE(workflow_id="wf-cancel"), identity="cli", request_id=request_id, first_execution_run_id=first
            ),
        )

    with pytest.raises(NotFound):
        await env.handler.RequestCancelWorkflowExecution(req(first=str(uuid.uuid4())))
    await env.handler.RequestCancelWorkflowExecution(req(first=run_id, request_id="c1"))
    await env.handler.RequestCancelWorkflowExecution(req(request_id="c2"))
    events = await d.history("wf-cancel")
    assert names(events).count("WORKFLOW_EXECUTION_CANCEL_REQUESTED") == 1
    task = await d.poll_wft()
    await d.complete(task, [])
    # closed runs: cancel is a no-op success, heartbeat / signal are NotFound
    await env.handler.TerminateWorkflowExecution(
        hs.TerminateWorkflowExecutionRequest(
            namespace_id=env.namespace_id, request=ws.TerminateWorkflowExecutionRequest(workflow_execution=WFE(workflow_id="wf-cancel"))
        )
    )
    await env.handler.RequestCancelWorkflowExecution(req(request_id="c3"))
    with pytest.raises(NotFound):
        await env.handler.TerminateWorkflowExecution(
            hs.TerminateWorkflowExecutionRequest(
                namespace_id=env.namespace_id, request=ws.TerminateWorkflowExecutionRequest(workflow_execution=WFE(workflow_id="wf-cancel"))
            )
        )


async def test_query_rejected_and_not_ready(env):
    from temporalio.api.enums.v1 import query_pb2

    d = Driver(env)
    await d.start("wf-qr")
    await env.handler.TerminateWorkflowExecution(
        hs.TerminateWorkflowExecutionRequest(
            namespace_id=env.namespace_id, request=ws.TerminateWorkflowExecutionRequest(workflow_execution=WFE(workflow_id="wf-qr"))
        )
    )

    def qreq(cond: int) -> hs.QueryWorkflowRequest:
        return hs.QueryWorkflowRequest(
            namespace_id=env.namespace_id,
            request=ws.QueryWorkflowRequest(
                execution=WFE(workflow_id="wf-qr"), query=q_pb2.WorkflowQuery(query_type="q"), query_reject_condition=cond  # type: ignore[arg-type]
            ),
        )

    rejected = await env.handler.QueryWorkflow(qreq(query_pb2.QUERY_REJECT_CONDITION_NOT_OPEN))
    assert rejected.HasField("query_rejected")
    with pytest.raises(FailedPrecondition):  # closed before any WFT completed
        await env.handler.QueryWorkflow(qreq(query_pb2.QUERY_REJECT_CONDITION_NONE))
    with pytest.raises(NotFound):
        await env.handler.QueryWorkflow(
            hs.QueryWorkflowRequest(
                namespace_id=env.namespace_id,
                request=ws.QueryWorkflowRequest(execution=WFE(workflow_id="nope"), query=q_pb2.WorkflowQuery(query_type="q")),
            )
        )


async def test_update_with_start_rides_on_the_first_workflow_task(env):
    """The update is admitted under the start's lock: the first WFT, started before anyone calls
    UpdateWorkflowExecution, already carries the update's request message."""
    from temporalio.api.update.v1 import message_pb2 as update_pb2

    d = Driver(env)
    start = ws.StartWorkflowExecutionRequest(
        namespace="default", workflow_id="wf-uws", workflow_type=common_pb2.WorkflowType(name="Wf"),
        task_queue=taskqueue_pb2.TaskQueue(name="tq"), request_id=str(uuid.uuid4()), identity="client",
    )
    update = ws.UpdateWorkflowExecutionRequest(
        namespace="default", workflow_execution=WFE(workflow_id="wf-uws"),
        request=update_pb2.Request(meta=update_pb2.Meta(update_id="u-1"), input=update_pb2.Input(name="add")),
    )
    await env.handler.StartWorkflowExecution(
        hs.StartWorkflowExecutionRequest(namespace_id=env.namespace_id, request=start, update_with_start=update)
    )
    add = await d.next_wft_add()
    task = await env.handler.RecordWorkflowTaskStarted(_started_req(env, add, "req-uws"))
    assert [m.protocol_instance_id for m in task.messages] == ["u-1"]
