"""Table-driven validation rules over real gRPC: each row is one input and the status and message Temporal gives.

The messages are Temporal's where Temporal has one (checked against the real dev server for a sample); durations
out of range are capped at 100 years as Temporal caps them, never an overflow.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import grpc
import grpc.aio
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from temporalio.api.command.v1 import message_pb2 as command
from temporalio.api.common.v1 import message_pb2 as common
from temporalio.api.enums.v1 import command_type_pb2, event_type_pb2, failed_cause_pb2
from temporalio.api.taskqueue.v1 import message_pb2 as taskqueue
from temporalio.api.workflow.v1 import message_pb2 as workflow
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv
from temporalio.api.workflowservice.v1 import service_pb2_grpc as wsv_grpc

from e2e.deployments import Deployment
from e2e.test_bad_input import call_error, start_request

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

HUGE = Duration(seconds=2**63 - 1)
CAPPED_SECONDS = 100 * 365 * 24 * 3600
INVALID = grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture
async def stub(deployment: Deployment) -> AsyncIterator[wsv_grpc.WorkflowServiceStub]:
    async with grpc.aio.insecure_channel(deployment.address) as channel:
        yield wsv_grpc.WorkflowServiceStub(channel)


def _list(query: str) -> wsv.ListWorkflowExecutionsRequest:
    return wsv.ListWorkflowExecutionsRequest(namespace="default", query=query)


REJECTED: list[tuple[str, str, Message, grpc.StatusCode, str]] = [
    ("mismatched signs", "StartWorkflowExecution",
     start_request(workflow_run_timeout=Duration(seconds=5, nanos=-1)), INVALID,
     "An invalid WorkflowRunTimeoutSeconds is set on request. cause: duration has seconds and nanos with different signs"),
    ("negative timeout", "StartWorkflowExecution",
     start_request(workflow_task_timeout=Duration(seconds=-1)), INVALID,
     "An invalid WorkflowTaskTimeoutSeconds is set on request. cause: negative duration"),
    ("retry interval signs", "StartWorkflowExecution",
     start_request(retry_policy=common.RetryPolicy(initial_interval=Duration(seconds=-3, nanos=5))), INVALID,
     "invalid InitialInterval: duration has seconds and nanos with different signs"),
    ("foreign namespace page token", "ListNamespaces",
     wsv.ListNamespacesRequest(next_page_token=b"\xff\xfe\x00garbage"), INVALID, "Invalid NextPageToken."),
    ("both name and id", "DescribeNamespace",
     wsv.DescribeNamespaceRequest(namespace="default", id=str(uuid.uuid4())), INVALID,
     "GetNamespace operation failed.  Both ID and Name specified in request."),
    ("1,000 nested parentheses", "ListWorkflowExecutions",
     _list("(" * 1000 + "WorkflowId = 'x'" + ")" * 1000), INVALID, "invalid query: nested deeper than 100 levels"),
    ("2,000 AND terms", "ListWorkflowExecutions",
     _list(" AND ".join(["WorkflowId = 'x'"] * 2000)), INVALID, "invalid query: more than 500 conditions"),
    ("status out of range", "ListWorkflowExecutions",
     _list("ExecutionStatus = 999"), INVALID, "invalid query: ExecutionStatus value 999 is not one of"),
    ("normal name on a normal queue", "StartWorkflowExecution",
     start_request(task_queue=taskqueue.TaskQueue(name="q", normal_name="other")), INVALID,
     "only sticky queues can have normal name. tq: q, normal name: other"),
    ("link of no known variant", "StartWorkflowExecution", start_request(links=[common.Link()]), INVALID,
     "unsupported link variant"),
    ("workflow event link without run id", "SignalWorkflowExecution",
     wsv.SignalWorkflowExecutionRequest(
         namespace="default", workflow_execution=common.WorkflowExecution(workflow_id="w"), signal_name="s",
         links=[common.Link(workflow_event=common.Link.WorkflowEvent(namespace="default", workflow_id="w"))]),
     INVALID, "workflow event link must not have an empty run ID field"),
    ("callback of no known variant", "StartWorkflowExecution",
     start_request(completion_callbacks=[common.Callback()]), INVALID, "unsupported callback variant: none"),
    ("pinned override without a version", "StartWorkflowExecution",
     start_request(versioning_override=workflow.VersioningOverride(
         pinned=workflow.VersioningOverride.PinnedOverride(
             behavior=workflow.VersioningOverride.PINNED_OVERRIDE_BEHAVIOR_PINNED))),
     INVALID, "must provide version if override is pinned."),
    ("poll deadline too short", "PollWorkflowTaskQueue",
     wsv.PollWorkflowTaskQueueRequest(namespace="default", task_queue=taskqueue.TaskQueue(name="q")),
     grpc.StatusCode.FAILED_PRECONDITION, "Context timeout is too short."),
]


@pytest.mark.parametrize(("case", "method", "request_msg", "code", "message"), REJECTED, ids=[r[0] for r in REJECTED])
async def test_rejected(
    stub: wsv_grpc.WorkflowServiceStub, case: str, method: str, request_msg: Message, code: grpc.StatusCode,
    message: str,
) -> None:
    rpc = getattr(stub, method)
    timeout = 1.0 if method.startswith("Poll") else 10.0
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await rpc(request_msg, timeout=timeout)
    assert info.value.code() == code, (case, info.value.details())
    assert (info.value.details() or "").startswith(message), (case, info.value.details())


async def test_list_search_attributes_needs_a_known_namespace(deployment: Deployment) -> None:
    from temporalio.api.operatorservice.v1 import request_response_pb2 as opv
    from temporalio.api.operatorservice.v1 import service_pb2_grpc as op_grpc

    async with grpc.aio.insecure_channel(deployment.address) as channel:
        op = op_grpc.OperatorServiceStub(channel)
        code, message, _ = await call_error(op.ListSearchAttributes, opv.ListSearchAttributesRequest())
        assert code == INVALID and message == "Namespace not set on request."
        code, _, _ = await call_error(op.ListSearchAttributes, opv.ListSearchAttributesRequest(namespace="nope-ns"))
        assert code == grpc.StatusCode.NOT_FOUND


async def test_long_input_is_not_echoed_in_full(stub: wsv_grpc.WorkflowServiceStub) -> None:
    _code, message, _ = await call_error(stub.ListWorkflowExecutions, _list("WorkflowId = " + "y" * 10_000))
    assert len(message) <= 1100, len(message)


async def test_huge_durations_are_capped_at_100_years(stub: wsv_grpc.WorkflowServiceStub) -> None:
    request = start_request(workflow_execution_timeout=HUGE, workflow_run_timeout=HUGE,
                            retry_policy=common.RetryPolicy(initial_interval=Duration(seconds=1), maximum_interval=HUGE))
    started = await stub.StartWorkflowExecution(request, timeout=10)
    described = await stub.DescribeWorkflowExecution(
        wsv.DescribeWorkflowExecutionRequest(
            namespace="default", execution=common.WorkflowExecution(workflow_id=request.workflow_id, run_id=started.run_id)
        ),
        timeout=10,
    )
    assert described.execution_config.workflow_execution_timeout.seconds == CAPPED_SECONDS
    retention = Duration(seconds=2**63 - 1)
    name = f"huge-retention-{uuid.uuid4().hex[:6]}"
    await stub.RegisterNamespace(
        wsv.RegisterNamespaceRequest(namespace=name, workflow_execution_retention_period=retention), timeout=10
    )
    ns = await stub.DescribeNamespace(wsv.DescribeNamespaceRequest(namespace=name), timeout=10)
    assert ns.config.workflow_execution_retention_ttl.seconds == CAPPED_SECONDS


async def _first_task(stub: wsv_grpc.WorkflowServiceStub) -> tuple[str, wsv.PollWorkflowTaskQueueResponse]:
    queue = f"rules-{uuid.uuid4().hex[:8]}"
    request = start_request(task_queue=taskqueue.TaskQueue(name=queue))
    await stub.StartWorkflowExecution(request, timeout=10)
    task = await stub.PollWorkflowTaskQueue(
        wsv.PollWorkflowTaskQueueRequest(namespace="default", task_queue=taskqueue.TaskQueue(name=queue)), timeout=30
    )
    assert task.task_token
    return request.workflow_id, task


def _activity(**overrides: object) -> command.Command:
    attrs: dict[str, object] = {
        "activity_id": "a1", "activity_type": common.ActivityType(name="Act"),
        "task_queue": taskqueue.TaskQueue(name="acts"), "start_to_close_timeout": Duration(seconds=10),
    }
    attrs.update(overrides)
    return command.Command(
        command_type=command_type_pb2.COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK,
        schedule_activity_task_command_attributes=command.ScheduleActivityTaskCommandAttributes(**attrs),  # type: ignore[arg-type]
    )


BAD_COMMANDS = [
    ("empty activity task queue", _activity(task_queue=taskqueue.TaskQueue(name="")),
     failed_cause_pb2.WORKFLOW_TASK_FAILED_CAUSE_BAD_SCHEDULE_ACTIVITY_ATTRIBUTES, "missing task queue name"),
    ("heartbeat timeout signs", _activity(heartbeat_timeout=Duration(seconds=3, nanos=-2)),
     failed_cause_pb2.WORKFLOW_TASK_FAILED_CAUSE_BAD_SCHEDULE_ACTIVITY_ATTRIBUTES,
     "invalid HeartbeatTimeout: duration has seconds and nanos with different signs"),
    ("timer of negative nanos", command.Command(
        command_type=command_type_pb2.COMMAND_TYPE_START_TIMER,
        start_timer_command_attributes=command.StartTimerCommandAttributes(
            timer_id="t", start_to_fire_timeout=Duration(seconds=0, nanos=-5))),
     failed_cause_pb2.WORKFLOW_TASK_FAILED_CAUSE_BAD_START_TIMER_ATTRIBUTES,
     "An invalid StartToFireTimeout is set on StartTimerCommand: negative duration"),
]


@pytest.mark.parametrize(("case", "cmd", "cause", "message"), BAD_COMMANDS, ids=[c[0] for c in BAD_COMMANDS])
async def test_bad_command_fails_the_workflow_task(
    stub: wsv_grpc.WorkflowServiceStub, case: str, cmd: command.Command, cause: int, message: str
) -> None:
    workflow_id, task = await _first_task(stub)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.RespondWorkflowTaskCompleted(
            wsv.RespondWorkflowTaskCompletedRequest(namespace="default", task_token=task.task_token, commands=[cmd]),
            timeout=10,
        )
    assert info.value.code() == INVALID, case
    assert (info.value.details() or "").startswith(message), info.value.details()
    history = await stub.GetWorkflowExecutionHistory(
        wsv.GetWorkflowExecutionHistoryRequest(
            namespace="default", execution=common.WorkflowExecution(workflow_id=workflow_id)
        ),
        timeout=10,
    )
    events = list(history.history.events)
    failed = [e for e in events if e.event_type == event_type_pb2.EVENT_TYPE_WORKFLOW_TASK_FAILED]
    assert failed and failed[-1].workflow_task_failed_event_attributes.cause == cause
    scheduled = (event_type_pb2.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, event_type_pb2.EVENT_TYPE_TIMER_STARTED)
    assert not [e for e in events if e.event_type in scheduled], "a bad command wrote its event"


async def test_huge_activity_timeout_is_capped(stub: wsv_grpc.WorkflowServiceStub) -> None:
    workflow_id, task = await _first_task(stub)
    await stub.RespondWorkflowTaskCompleted(
        wsv.RespondWorkflowTaskCompletedRequest(
            namespace="default", task_token=task.task_token,
            commands=[_activity(start_to_close_timeout=HUGE, schedule_to_close_timeout=HUGE,
                                retry_policy=common.RetryPolicy(maximum_interval=HUGE))],
        ),
        timeout=10,
    )
    history = await stub.GetWorkflowExecutionHistory(
        wsv.GetWorkflowExecutionHistoryRequest(
            namespace="default", execution=common.WorkflowExecution(workflow_id=workflow_id)
        ),
        timeout=10,
    )
    scheduled = [e for e in history.history.events if e.event_type == event_type_pb2.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]
    assert scheduled[0].activity_task_scheduled_event_attributes.start_to_close_timeout.seconds == CAPPED_SECONDS
