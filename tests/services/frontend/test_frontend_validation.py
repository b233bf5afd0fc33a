"""Malformed requests are refused by the frontend with INVALID_ARGUMENT naming the field; nothing reaches History."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio.api.common.v1 import message_pb2 as common
from temporalio.api.enums.v1 import workflow_pb2 as wf_enums
from temporalio.api.query.v1 import message_pb2 as query
from temporalio.api.taskqueue.v1 import message_pb2 as taskqueue
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv1

from server.common.errors import InvalidArgument
from server.gen.durata.internal.common.v1 import tokens_pb2
from services.frontend.service import FrontendService
from tests.services.frontend.conftest import RecordingService


def start(**overrides: Any) -> wsv1.StartWorkflowExecutionRequest:
    fields: dict[str, Any] = dict(
        namespace="default",
        workflow_id="wf-1",
        workflow_type=common.WorkflowType(name="MyWorkflow"),
        task_queue=taskqueue.TaskQueue(name="q"),
        request_id="req-1",
    )
    fields.update(overrides)
    return wsv1.StartWorkflowExecutionRequest(**{k: v for k, v in fields.items() if v is not None})


LONG = "x" * 1001

START_CASES: list[tuple[str, wsv1.StartWorkflowExecutionRequest, str]] = [
    ("no-namespace", start(namespace=""), "Namespace not set on request."),
    ("no-workflow-id", start(workflow_id=""), "WorkflowId is not set on request."),
    ("long-workflow-id", start(workflow_id=LONG), "WorkflowId length exceeds limit."),
    ("no-type", start(workflow_type=None), "WorkflowType is not set on request."),
    ("empty-type", start(workflow_type=common.WorkflowType(name="")), "WorkflowType is not set on request."),
    ("long-type", start(workflow_type=common.WorkflowType(name=LONG)), "WorkflowType length exceeds limit."),
    ("no-task-queue", start(task_queue=None), "TaskQueue is not set on request."),
    ("long-task-queue", start(task_queue=taskqueue.TaskQueue(name=LONG)), "TaskQueue length exceeds limit."),
    ("reserved-task-queue", start(task_queue=taskqueue.TaskQueue(name="/_sys/q/1")), "reserved prefix"),
    ("long-request-id", start(request_id=LONG), "RequestId length exceeds limit."),
    ("long-identity", start(identity=LONG), "Identity length exceeds limit."),
    (
        "negative-exec-timeout",
        start(workflow_execution_timeout=Duration(seconds=-1)),
        "WorkflowExecutionTimeout",
    ),
    ("negative-run-timeout", start(workflow_run_timeout=Duration(seconds=-5)), "WorkflowRunTimeout"),
    ("negative-task-timeout", start(workflow_task_timeout=Duration(nanos=-1)), "WorkflowTaskTimeout"),
    (
        "retry-coefficient",
        start(retry_policy=common.RetryPolicy(backoff_coefficient=0.5)),
        "BackoffCoefficient cannot be less than 1",
    ),
    (
        "retry-max-interval",
        start(
            retry_policy=common.RetryPolicy(
                initial_interval=Duration(seconds=10), maximum_interval=Duration(seconds=1)
            )
        ),
        "MaximumInterval cannot be less than InitialInterval",
    ),
    (
        "retry-attempts",
        start(retry_policy=common.RetryPolicy(maximum_attempts=-1)),
        "MaximumAttempts cannot be negative",
    ),
    (
        "retry-initial",
        start(retry_policy=common.RetryPolicy(initial_interval=Duration(seconds=-1))),
        "InitialInterval",
    ),
    ("bad-cron", start(cron_schedule="every tuesday"), "Invalid CronSchedule"),
    ("bad-cron-fields", start(cron_schedule="99 * * * *"), "Invalid CronSchedule"),
    (
        "cron-with-delay",
        start(cron_schedule="* * * * *", workflow_start_delay=Duration(seconds=5)),
        "CronSchedule and WorkflowStartDelay may not be used together.",
    ),
    (
        "terminate-if-running-with-conflict",
        start(
            workflow_id_reuse_policy=wf_enums.WORKFLOW_ID_REUSE_POLICY_TERMINATE_IF_RUNNING,
            workflow_id_conflict_policy=wf_enums.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
        ),
        "TERMINATE_IF_RUNNING",
    ),
    (
        "reject-duplicate-with-terminate-existing",
        start(
            workflow_id_reuse_policy=wf_enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
            workflow_id_conflict_policy=wf_enums.WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING,
        ),
        "REJECT_DUPLICATE",
    ),
    (
        "input-too-big",
        start(input=common.Payloads(payloads=[common.Payload(data=b"x" * (2 * 1024 * 1024 + 1))])),
        "Input size",
    ),
]


@pytest.mark.parametrize("request_, message", [c[1:] for c in START_CASES], ids=[c[0] for c in START_CASES])
async def test_start_validation(
    frontend: FrontendService,
    history: RecordingService,
    request_: wsv1.StartWorkflowExecutionRequest,
    message: str,
) -> None:
    with pytest.raises(InvalidArgument) as exc:
        await frontend.handler.StartWorkflowExecution(request_)
    assert message in exc.value.message
    assert history.calls == []


@pytest.mark.parametrize(
    "cron", ["* * * * *", "0 12 * * MON-FRI", "@hourly", "@every 1h30m", "CRON_TZ=Europe/Paris 0 8 * * *"]
)
async def test_valid_cron_schedules_pass(
    frontend: FrontendService, history: RecordingService, cron: str
) -> None:
    await frontend.handler.StartWorkflowExecution(start(cron_schedule=cron))
    assert history.only("StartWorkflowExecution").request.request.cron_schedule == cron


def _wf_token(namespace_id: str) -> bytes:
    return tokens_pb2.TaskToken(
        namespace_id=namespace_id, workflow_id="w", run_id="00000000-0000-4000-8000-000000000001", kind=1
    ).SerializeToString()


OTHER_CASES: list[tuple[str, Callable[[FrontendService], Any], str]] = [
    (
        "signal-no-execution",
        lambda f: f.handler.SignalWorkflowExecution(
            wsv1.SignalWorkflowExecutionRequest(namespace="default", signal_name="s")
        ),
        "Execution is not set on request.",
    ),
    (
        "signal-no-name",
        lambda f: f.handler.SignalWorkflowExecution(
            wsv1.SignalWorkflowExecutionRequest(
                namespace="default", workflow_execution=common.WorkflowExecution(workflow_id="w")
            )
        ),
        "SignalName is not set on request.",
    ),
    (
        "signal-bad-run-id",
        lambda f: f.handler.SignalWorkflowExecution(
            wsv1.SignalWorkflowExecutionRequest(
                namespace="default",
                signal_name="s",
                workflow_execution=common.WorkflowExecution(workflow_id="w", run_id="not-a-uuid"),
            )
        ),
        "Invalid RunId.",
    ),
    (
        "signal-with-start-no-signal",
        lambda f: f.handler.SignalWithStartWorkflowExecution(
            wsv1.SignalWithStartWorkflowExecutionRequest(
                namespace="default",
                workflow_id="w",
                workflow_type=common.WorkflowType(name="T"),
                task_queue={"name": "q"},
            )
        ),
        "SignalName is not set on request.",
    ),
    (
        "signal-with-start-fail-policy",
        lambda f: f.handler.SignalWithStartWorkflowExecution(
            wsv1.SignalWithStartWorkflowExecutionRequest(
                namespace="default",
                workflow_id="w",
                workflow_type=common.WorkflowType(name="T"),
                task_queue={"name": "q"},
                signal_name="s",
                workflow_id_conflict_policy=wf_enums.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
            )
        ),
        "WORKFLOW_ID_CONFLICT_POLICY_FAIL",
    ),
    (
        "query-no-query",
        lambda f: f.handler.QueryWorkflow(
            wsv1.QueryWorkflowRequest(
                namespace="default", execution=common.WorkflowExecution(workflow_id="w")
            )
        ),
        "WorkflowQuery is not set on request.",
    ),
    (
        "query-no-type",
        lambda f: f.handler.QueryWorkflow(
            wsv1.QueryWorkflowRequest(
                namespace="default",
                execution=common.WorkflowExecution(workflow_id="w"),
                query=query.WorkflowQuery(),
            )
        ),
        "QueryType is not set on request.",
    ),
    (
        "terminate-no-workflow-id",
        lambda f: f.handler.TerminateWorkflowExecution(
            wsv1.TerminateWorkflowExecutionRequest(
                namespace="default", workflow_execution=common.WorkflowExecution()
            )
        ),
        "WorkflowId is not set on request.",
    ),
    (
        "history-negative-page",
        lambda f: f.handler.GetWorkflowExecutionHistory(
            wsv1.GetWorkflowExecutionHistoryRequest(
                namespace="default", execution=common.WorkflowExecution(workflow_id="w"), maximum_page_size=-1
            )
        ),
        "MaximumPageSize",
    ),
    (
        "poll-no-task-queue",
        lambda f: f.handler.PollWorkflowTaskQueue(wsv1.PollWorkflowTaskQueueRequest(namespace="default")),
        "TaskQueue is not set on request.",
    ),
    (
        "poll-activity-long-identity",
        lambda f: f.handler.PollActivityTaskQueue(
            wsv1.PollActivityTaskQueueRequest(namespace="default", task_queue={"name": "q"}, identity=LONG)
        ),
        "Identity length exceeds limit.",
    ),
    (
        "empty-task-token",
        lambda f: f.handler.RespondWorkflowTaskCompleted(
            wsv1.RespondWorkflowTaskCompletedRequest(namespace="default")
        ),
        "Task token not set on request.",
    ),
    (
        "activity-by-id-no-activity",
        lambda f: f.handler.RespondActivityTaskCompletedById(
            wsv1.RespondActivityTaskCompletedByIdRequest(namespace="default", workflow_id="w")
        ),
        "ActivityId is not set on request.",
    ),
    (
        "heartbeat-by-id-no-workflow",
        lambda f: f.handler.RecordActivityTaskHeartbeatById(
            wsv1.RecordActivityTaskHeartbeatByIdRequest(namespace="default", activity_id="a")
        ),
        "WorkflowId is not set on request.",
    ),
    (
        "list-negative-page",
        lambda f: f.handler.ListWorkflowExecutions(
            wsv1.ListWorkflowExecutionsRequest(namespace="default", page_size=-1)
        ),
        "PageSize cannot be negative.",
    ),
    (
        "count-group-by-other",
        lambda f: f.handler.CountWorkflowExecutions(
            wsv1.CountWorkflowExecutionsRequest(namespace="default", query="GROUP BY WorkflowType")
        ),
        "invalid query: operation is not supported: 'GROUP BY' clause is not supported for search attribute "
        "WorkflowType",
    ),
]


@pytest.mark.parametrize("call, message", [c[1:] for c in OTHER_CASES], ids=[c[0] for c in OTHER_CASES])
async def test_other_rpc_validation(
    frontend: FrontendService,
    history: RecordingService,
    matching: RecordingService,
    call: Callable[[FrontendService], Any],
    message: str,
) -> None:
    with pytest.raises(InvalidArgument) as exc:
        await call(frontend)
    assert message in exc.value.message
    assert history.calls == [] and matching.calls == []


async def test_task_token_of_another_namespace_is_refused(
    frontend: FrontendService, history: RecordingService
) -> None:
    await frontend.create_default_namespaces(["other"], timedelta(days=1))
    other = await frontend.handler.DescribeNamespace(wsv1.DescribeNamespaceRequest(namespace="other"))
    with pytest.raises(InvalidArgument) as exc:
        await frontend.handler.RespondWorkflowTaskCompleted(
            wsv1.RespondWorkflowTaskCompletedRequest(
                namespace="default", task_token=_wf_token(other.namespace_info.id)
            )
        )
    assert "does not belong to namespace default" in exc.value.message
    assert history.calls == []


async def test_activity_token_refused_for_workflow_task(frontend: FrontendService) -> None:
    default = await frontend.handler.DescribeNamespace(wsv1.DescribeNamespaceRequest(namespace="default"))
    token = tokens_pb2.TaskToken(
        namespace_id=default.namespace_info.id, workflow_id="w", run_id="r", kind=2
    ).SerializeToString()
    with pytest.raises(InvalidArgument):
        await frontend.handler.RespondWorkflowTaskFailed(
            wsv1.RespondWorkflowTaskFailedRequest(namespace="default", task_token=token)
        )
