"""What the frontend forwards to History/Matching, and the RPCs it answers itself (visibility, operator, cluster)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.api.common.v1 import message_pb2 as common
from temporalio.api.enums.v1 import common_pb2 as common_enums
from temporalio.api.enums.v1 import workflow_pb2 as wf_enums
from temporalio.api.operatorservice.v1 import request_response_pb2 as opv1
from temporalio.api.taskqueue.v1 import message_pb2 as taskqueue
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv1

from server.common.errors import DeadlineExceeded, InvalidArgument, NamespaceNotFound, NotFound, Unavailable
from server.gen.durata.internal.common.v1 import tokens_pb2
from server.persistence.interface import Persistence, VisibilityRecord
from services.frontend.service import FrontendService
from tests.services.frontend.conftest import RecordingService

RUN_ID = "5f0c5a57-0b4e-4d55-9a43-5b0a2d6ad5c1"


async def _default_id(frontend: FrontendService) -> str:
    desc = await frontend.handler.DescribeNamespace(wsv1.DescribeNamespaceRequest(namespace="default"))
    return desc.namespace_info.id


async def test_start_routes_to_history_with_namespace_id_and_request_id(
    frontend: FrontendService, history: RecordingService
) -> None:
    request = wsv1.StartWorkflowExecutionRequest(
        namespace="default",
        workflow_id="wf",
        workflow_type=common.WorkflowType(name="T"),
        task_queue={"name": "q"},
    )
    await frontend.handler.StartWorkflowExecution(request, deadline=123.0)
    call = history.only("StartWorkflowExecution")
    assert call.request.namespace_id == await _default_id(frontend)
    assert call.request.request.workflow_id == "wf"
    assert call.request.request.request_id  # generated for callers that did not send one
    assert request.request_id == ""  # the caller's message is not mutated
    assert call.deadline == 123.0


async def test_signal_cancel_terminate_describe_delete_query_route_to_history(
    frontend: FrontendService, history: RecordingService
) -> None:
    ex = common.WorkflowExecution(workflow_id="wf", run_id=RUN_ID)
    h = frontend.handler
    await h.SignalWorkflowExecution(
        wsv1.SignalWorkflowExecutionRequest(namespace="default", workflow_execution=ex, signal_name="go")
    )
    await h.SignalWithStartWorkflowExecution(
        wsv1.SignalWithStartWorkflowExecutionRequest(
            namespace="default",
            workflow_id="wf",
            workflow_type={"name": "T"},
            task_queue={"name": "q"},
            signal_name="s",
        )
    )
    await h.RequestCancelWorkflowExecution(
        wsv1.RequestCancelWorkflowExecutionRequest(namespace="default", workflow_execution=ex)
    )
    await h.TerminateWorkflowExecution(
        wsv1.TerminateWorkflowExecutionRequest(namespace="default", workflow_execution=ex)
    )
    await h.DescribeWorkflowExecution(
        wsv1.DescribeWorkflowExecutionRequest(namespace="default", execution=ex)
    )
    await h.DeleteWorkflowExecution(
        wsv1.DeleteWorkflowExecutionRequest(namespace="default", workflow_execution=ex)
    )
    await h.QueryWorkflow(
        wsv1.QueryWorkflowRequest(namespace="default", execution=ex, query={"query_type": "__stack_trace"})
    )
    ns_id = await _default_id(frontend)
    assert [c.method for c in history.calls] == [
        "SignalWorkflowExecution",
        "SignalWithStartWorkflowExecution",
        "RequestCancelWorkflowExecution",
        "TerminateWorkflowExecution",
        "DescribeWorkflowExecution",
        "DeleteWorkflowExecution",
        "QueryWorkflow",
    ]
    assert all(c.request.namespace_id == ns_id for c in history.calls)


async def test_history_long_poll_gets_a_budget_before_the_client_deadline(
    frontend: FrontendService, history: RecordingService
) -> None:
    client_deadline = time.monotonic() + 70
    await frontend.handler.GetWorkflowExecutionHistory(
        wsv1.GetWorkflowExecutionHistoryRequest(
            namespace="default", execution=common.WorkflowExecution(workflow_id="wf"), wait_new_event=True
        ),
        deadline=client_deadline,
    )
    forwarded = history.only("GetWorkflowExecutionHistory").deadline
    assert forwarded is not None and forwarded <= time.monotonic() + 20.5


async def test_poll_routes_to_matching_with_poller_id_and_budget(
    frontend: FrontendService, matching: RecordingService
) -> None:
    short_deadline = time.monotonic() + 5
    await frontend.handler.PollWorkflowTaskQueue(
        wsv1.PollWorkflowTaskQueueRequest(namespace="default", task_queue={"name": "q"}, identity="me"),
        deadline=short_deadline,
    )
    await frontend.handler.PollActivityTaskQueue(
        wsv1.PollActivityTaskQueueRequest(namespace="default", task_queue={"name": "q"}), deadline=None
    )
    wft = matching.only("PollWorkflowTaskQueue")
    act = matching.only("PollActivityTaskQueue")
    assert wft.request.namespace_id == await _default_id(frontend)
    assert wft.request.poll_request.identity == "me"
    assert wft.request.poller_id and wft.request.poller_id != act.request.poller_id
    # Answer a margin before the client's own deadline; without one, within the ~60 s budget.
    assert wft.deadline is not None and wft.deadline <= short_deadline - 0.9
    assert act.deadline is not None and act.deadline <= time.monotonic() + 60.5


async def test_poll_deadline_exceeded_from_matching_becomes_empty_response(
    frontend: FrontendService, matching: RecordingService
) -> None:
    def expire(_request: object) -> object:
        raise DeadlineExceeded("poll expired")

    matching.answers["PollWorkflowTaskQueue"] = expire
    resp = await frontend.handler.PollWorkflowTaskQueue(
        wsv1.PollWorkflowTaskQueueRequest(namespace="default", task_queue={"name": "q"})
    )
    assert resp == wsv1.PollWorkflowTaskQueueResponse()


async def test_task_token_routes_completion_to_history(
    frontend: FrontendService, history: RecordingService
) -> None:
    ns_id = await _default_id(frontend)
    wf_token = tokens_pb2.TaskToken(
        namespace_id=ns_id, workflow_id="wf", run_id=RUN_ID, kind=1
    ).SerializeToString()
    act_token = tokens_pb2.TaskToken(
        namespace_id=ns_id, workflow_id="wf", run_id=RUN_ID, kind=2
    ).SerializeToString()
    h = frontend.handler
    await h.RespondWorkflowTaskCompleted(
        wsv1.RespondWorkflowTaskCompletedRequest(namespace="default", task_token=wf_token)
    )
    # No namespace on the request (older clients): the token's namespace id is used.
    await h.RespondWorkflowTaskFailed(wsv1.RespondWorkflowTaskFailedRequest(task_token=wf_token))
    await h.RespondActivityTaskCompleted(
        wsv1.RespondActivityTaskCompletedRequest(namespace="default", task_token=act_token)
    )
    await h.RespondActivityTaskFailed(
        wsv1.RespondActivityTaskFailedRequest(namespace="default", task_token=act_token)
    )
    await h.RespondActivityTaskCanceled(
        wsv1.RespondActivityTaskCanceledRequest(namespace="default", task_token=act_token)
    )
    await h.RecordActivityTaskHeartbeat(
        wsv1.RecordActivityTaskHeartbeatRequest(namespace="default", task_token=act_token)
    )
    assert [c.method for c in history.calls] == [
        "RespondWorkflowTaskCompleted",
        "RespondWorkflowTaskFailed",
        "RespondActivityTaskCompleted",
        "RespondActivityTaskFailed",
        "RespondActivityTaskCanceled",
        "RecordActivityTaskHeartbeat",
    ]
    assert all(c.request.namespace_id == ns_id for c in history.calls)


async def test_by_id_activity_calls_route_with_by_id_request(
    frontend: FrontendService, history: RecordingService
) -> None:
    history.answers["RecordActivityTaskHeartbeat"] = lambda _r: wsv1.RecordActivityTaskHeartbeatResponse(
        cancel_requested=True
    )
    h = frontend.handler
    ids = dict(namespace="default", workflow_id="wf", activity_id="a1")
    await h.RespondActivityTaskCompletedById(wsv1.RespondActivityTaskCompletedByIdRequest(**ids))
    await h.RespondActivityTaskFailedById(wsv1.RespondActivityTaskFailedByIdRequest(**ids))
    await h.RespondActivityTaskCanceledById(wsv1.RespondActivityTaskCanceledByIdRequest(**ids))
    beat = await h.RecordActivityTaskHeartbeatById(wsv1.RecordActivityTaskHeartbeatByIdRequest(**ids))
    assert beat.cancel_requested is True
    for call in history.calls:
        assert call.request.by_id_request.activity_id == "a1"
        assert not call.request.HasField("request")


async def test_query_task_answer_routes_to_matching(
    frontend: FrontendService, matching: RecordingService
) -> None:
    token = tokens_pb2.QueryTaskToken(
        namespace_id=await _default_id(frontend), task_queue="q", query_id="q1"
    ).SerializeToString()
    await frontend.handler.RespondQueryTaskCompleted(
        wsv1.RespondQueryTaskCompletedRequest(namespace="default", task_token=token)
    )
    assert matching.only("RespondQueryTaskCompleted").request.request.task_token == token


async def test_shutdown_worker_never_fails(frontend: FrontendService, matching: RecordingService) -> None:
    await frontend.handler.ShutdownWorker(
        wsv1.ShutdownWorkerRequest(namespace="default", identity="w1", sticky_task_queue="w1-sticky")
    )
    call = matching.only("CancelOutstandingPolls")
    assert (call.request.identity, call.request.sticky_task_queue) == ("w1", "w1-sticky")

    def broken(_request: object) -> object:
        raise Unavailable("matching is down")

    matching.answers["CancelOutstandingPolls"] = broken
    await frontend.handler.ShutdownWorker(wsv1.ShutdownWorkerRequest(namespace="default", identity="w1"))
    await frontend.handler.ShutdownWorker(wsv1.ShutdownWorkerRequest(namespace="unknown", identity="w1"))


async def test_describe_task_queue_routes_to_matching(
    frontend: FrontendService, matching: RecordingService
) -> None:
    await frontend.handler.DescribeTaskQueue(
        wsv1.DescribeTaskQueueRequest(namespace="default", task_queue=taskqueue.TaskQueue(name="q"))
    )
    assert matching.only("DescribeTaskQueue").request.request.task_queue.name == "q"


async def _add_visibility(store: Persistence, ns_id: str) -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    memo = common.Memo(fields={"k": common.Payload(data=b'"v"')})
    for i, status in enumerate(
        [
            wf_enums.WORKFLOW_EXECUTION_STATUS_RUNNING,
            wf_enums.WORKFLOW_EXECUTION_STATUS_COMPLETED,
            wf_enums.WORKFLOW_EXECUTION_STATUS_COMPLETED,
            wf_enums.WORKFLOW_EXECUTION_STATUS_TIMED_OUT,
        ]
    ):
        closed = status != wf_enums.WORKFLOW_EXECUTION_STATUS_RUNNING
        await store.visibility.upsert_execution(
            VisibilityRecord(
                namespace_id=ns_id,
                workflow_id=f"wf-{i}",
                run_id=f"00000000-0000-4000-8000-00000000000{i}",
                workflow_type="T",
                task_queue="q",
                status=status,
                start_time=base + timedelta(minutes=i),
                execution_time=base + timedelta(minutes=i),
                close_time=base + timedelta(minutes=i, seconds=30) if closed else None,
                history_length=5 + i,
                parent_workflow_id="parent" if i == 0 else "",
                parent_run_id=RUN_ID if i == 0 else "",
                memo=memo.SerializeToString(),
            )
        )


async def test_list_and_count_workflow_executions_from_visibility(
    frontend: FrontendService, store: Persistence
) -> None:
    ns_id = await _default_id(frontend)
    await _add_visibility(store, ns_id)
    h = frontend.handler

    page1 = await h.ListWorkflowExecutions(
        wsv1.ListWorkflowExecutionsRequest(namespace="default", page_size=3)
    )
    assert [e.execution.workflow_id for e in page1.executions] == ["wf-3", "wf-2", "wf-1"]  # newest first
    assert page1.next_page_token
    page2 = await h.ListWorkflowExecutions(
        wsv1.ListWorkflowExecutionsRequest(
            namespace="default", page_size=3, next_page_token=page1.next_page_token
        )
    )
    assert [e.execution.workflow_id for e in page2.executions] == ["wf-0"]
    running = page2.executions[0]
    assert running.status == wf_enums.WORKFLOW_EXECUTION_STATUS_RUNNING
    assert running.type.name == "T" and running.task_queue == "q" and running.history_length == 5
    assert running.parent_execution.workflow_id == "parent" and running.parent_namespace_id == ns_id
    assert not running.HasField("close_time")
    assert running.memo.fields["k"].data == b'"v"'
    closed = page1.executions[0]
    assert closed.HasField("close_time") and closed.execution_duration.seconds == 30

    filtered = await h.ListWorkflowExecutions(
        wsv1.ListWorkflowExecutionsRequest(namespace="default", query="ExecutionStatus = 'Completed'")
    )
    assert {e.execution.workflow_id for e in filtered.executions} == {"wf-1", "wf-2"}

    count = await h.CountWorkflowExecutions(wsv1.CountWorkflowExecutionsRequest(namespace="default"))
    assert count.count == 4 and not count.groups
    grouped = await h.CountWorkflowExecutions(
        wsv1.CountWorkflowExecutionsRequest(namespace="default", query="GROUP BY ExecutionStatus")
    )
    assert grouped.count == 4
    by_value = {g.group_values[0].data: g.count for g in grouped.groups}
    assert by_value == {b'"Running"': 1, b'"Completed"': 2, b'"TimedOut"': 1}
    assert grouped.groups[0].group_values[0].metadata["encoding"] == b"json/plain"

    with pytest.raises(InvalidArgument):
        await h.ListWorkflowExecutions(
            wsv1.ListWorkflowExecutionsRequest(namespace="default", query="Bogus ===")
        )


async def test_operator_search_attributes(frontend: FrontendService) -> None:
    op = frontend.operator_handler
    listed = await op.ListSearchAttributes(opv1.ListSearchAttributesRequest(namespace="default"))
    assert listed.system_attributes["TemporalChangeVersion"] == common_enums.INDEXED_VALUE_TYPE_KEYWORD_LIST
    assert listed.system_attributes["WorkflowId"] == common_enums.INDEXED_VALUE_TYPE_KEYWORD
    assert dict(listed.custom_attributes) == {}

    await op.AddSearchAttributes(
        opv1.AddSearchAttributesRequest(
            namespace="default",
            search_attributes={
                "CustomerId": common_enums.INDEXED_VALUE_TYPE_KEYWORD,
                "Amount": common_enums.INDEXED_VALUE_TYPE_DOUBLE,
            },
        )
    )
    # Adding the same attribute with the same type again is a no-op.
    await op.AddSearchAttributes(
        opv1.AddSearchAttributesRequest(
            namespace="default", search_attributes={"CustomerId": common_enums.INDEXED_VALUE_TYPE_KEYWORD}
        )
    )
    listed = await op.ListSearchAttributes(opv1.ListSearchAttributesRequest(namespace="default"))
    assert dict(listed.custom_attributes) == {
        "CustomerId": common_enums.INDEXED_VALUE_TYPE_KEYWORD,
        "Amount": common_enums.INDEXED_VALUE_TYPE_DOUBLE,
    }
    desc = await frontend.handler.DescribeNamespace(wsv1.DescribeNamespaceRequest(namespace="default"))
    assert dict(desc.config.custom_search_attribute_aliases) == {
        "Keyword01": "CustomerId",
        "Double01": "Amount",
    }

    with pytest.raises(InvalidArgument):
        await op.AddSearchAttributes(
            opv1.AddSearchAttributesRequest(
                namespace="default", search_attributes={"CustomerId": common_enums.INDEXED_VALUE_TYPE_INT}
            )
        )
    with pytest.raises(InvalidArgument):
        await op.AddSearchAttributes(
            opv1.AddSearchAttributesRequest(
                namespace="default", search_attributes={"WorkflowId": common_enums.INDEXED_VALUE_TYPE_KEYWORD}
            )
        )
    await op.RemoveSearchAttributes(
        opv1.RemoveSearchAttributesRequest(namespace="default", search_attributes=["CustomerId"])
    )
    with pytest.raises(NotFound):
        await op.RemoveSearchAttributes(
            opv1.RemoveSearchAttributesRequest(namespace="default", search_attributes=["CustomerId"])
        )
    listed = await op.ListSearchAttributes(opv1.ListSearchAttributesRequest(namespace="default"))
    assert dict(listed.custom_attributes) == {"Amount": common_enums.INDEXED_VALUE_TYPE_DOUBLE}
    with pytest.raises(NamespaceNotFound):  # DeleteNamespace itself: tests/services/frontend/test_namespace_delete.py
        await op.DeleteNamespace(opv1.DeleteNamespaceRequest(namespace="no-such-namespace"))


async def test_cluster_info(frontend: FrontendService) -> None:
    info = await frontend.handler.GetClusterInfo(wsv1.GetClusterInfoRequest())
    assert info.cluster_name == "active" and info.history_shard_count == 4 and info.server_version
    assert info.cluster_id
    clusters = await frontend.operator_handler.ListClusters(opv1.ListClustersRequest())
    assert [c.cluster_name for c in clusters.clusters] == ["active"]


async def test_namespace_update_seen_by_another_frontend_after_ttl(
    store: Persistence, frontend: FrontendService, history: RecordingService
) -> None:
    from services.frontend.config import FrontendConfig

    other = FrontendService(store, FrontendConfig(namespace_cache_ttl_seconds=0.0))
    other.history_client = history
    start = wsv1.StartWorkflowExecutionRequest(
        namespace="fresh", workflow_id="wf", workflow_type={"name": "T"}, task_queue={"name": "q"}
    )
    with pytest.raises(Exception) as exc:
        await other.handler.StartWorkflowExecution(start)
    assert "fresh" in str(exc.value)
    await frontend.create_default_namespaces(["fresh"], timedelta(days=1))
    await other.handler.StartWorkflowExecution(start)
    assert history.only("StartWorkflowExecution").request.namespace_id
