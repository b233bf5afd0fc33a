"""Bad input over real gRPC gets the precise status (and detail) and never hurts the server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import grpc
import grpc.aio
import pytest
from google.protobuf.message import Message
from grpc_status import rpc_status
from temporalio.api.common.v1 import message_pb2 as common
from temporalio.api.errordetails.v1 import message_pb2 as errordetails
from temporalio.api.taskqueue.v1 import message_pb2 as taskqueue
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv
from temporalio.api.workflowservice.v1 import service_pb2_grpc as wsv_grpc

from e2e.deployments import Deployment

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]


@pytest.fixture
async def stub(deployment: Deployment) -> AsyncIterator[wsv_grpc.WorkflowServiceStub]:
    async with grpc.aio.insecure_channel(deployment.address) as channel:
        yield wsv_grpc.WorkflowServiceStub(channel)


async def call_error(rpc, request: Message) -> tuple[grpc.StatusCode, str, list]:  # noqa: ANN001
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await rpc(request, timeout=10)
    err = info.value
    status = rpc_status.from_call(err)
    return err.code(), err.details() or "", list(status.details) if status is not None else []


def start_request(**overrides: object) -> wsv.StartWorkflowExecutionRequest:
    fields: dict[str, object] = {
        "namespace": "default",
        "workflow_id": f"bad-{uuid.uuid4().hex[:8]}",
        "workflow_type": common.WorkflowType(name="Nothing"),
        "task_queue": taskqueue.TaskQueue(name="nowhere"),
        "request_id": str(uuid.uuid4()),
    }
    fields.update(overrides)
    return wsv.StartWorkflowExecutionRequest(**fields)  # type: ignore[arg-type]


async def test_unknown_namespace(stub: wsv_grpc.WorkflowServiceStub) -> None:
    name = f"missing-{uuid.uuid4().hex[:8]}"
    for rpc, request in (
        (stub.DescribeNamespace, wsv.DescribeNamespaceRequest(namespace=name)),
        (stub.StartWorkflowExecution, start_request(namespace=name)),
    ):
        code, _message, details = await call_error(rpc, request)
        assert code == grpc.StatusCode.NOT_FOUND
        assert details, "NOT_FOUND without a Temporal error detail"
        detail = errordetails.NamespaceNotFoundFailure()
        assert details[0].Unpack(detail), f"detail is {details[0].type_url}"
        assert detail.namespace == name


async def test_empty_workflow_id_and_task_queue(stub: wsv_grpc.WorkflowServiceStub) -> None:
    code, message, _ = await call_error(stub.StartWorkflowExecution, start_request(workflow_id=""))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "workflowid" in message.replace(" ", "").replace("_", "").lower(), message

    code, message, _ = await call_error(
        stub.StartWorkflowExecution, start_request(task_queue=taskqueue.TaskQueue(name=""))
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "taskqueue" in message.replace(" ", "").replace("_", "").lower(), message


@pytest.mark.parametrize("token", [b"garbage", b"\x00\xff\x10" * 7, b"\n\x03abc"])
async def test_garbage_task_token(stub: wsv_grpc.WorkflowServiceStub, token: bytes) -> None:
    for rpc, request in (
        (stub.RespondActivityTaskCompleted,
         wsv.RespondActivityTaskCompletedRequest(namespace="default", task_token=token)),
        (stub.RespondWorkflowTaskCompleted,
         wsv.RespondWorkflowTaskCompletedRequest(namespace="default", task_token=token)),
        (stub.RecordActivityTaskHeartbeat,
         wsv.RecordActivityTaskHeartbeatRequest(namespace="default", task_token=token)),
    ):
        code, _message, _ = await call_error(rpc, request)
        assert code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND), code


async def test_server_still_answers_after_bad_input(stub: wsv_grpc.WorkflowServiceStub) -> None:
    for _ in range(3):
        await call_error(stub.StartWorkflowExecution, start_request(workflow_id=""))
        await call_error(stub.RespondActivityTaskCompleted,
                         wsv.RespondActivityTaskCompletedRequest(namespace="default", task_token=b"junk"))
    info = await stub.GetSystemInfo(wsv.GetSystemInfoRequest(), timeout=10)
    assert info.server_version
    ns = await stub.DescribeNamespace(wsv.DescribeNamespaceRequest(namespace="default"), timeout=10)
    assert ns.namespace_info.name == "default"


async def test_unknown_workflow_is_not_found(stub: wsv_grpc.WorkflowServiceStub) -> None:
    missing = common.WorkflowExecution(workflow_id=f"missing-{uuid.uuid4().hex[:8]}")
    for rpc, request in (
        (stub.DescribeWorkflowExecution,
         wsv.DescribeWorkflowExecutionRequest(namespace="default", execution=missing)),
        (stub.SignalWorkflowExecution,
         wsv.SignalWorkflowExecutionRequest(namespace="default", workflow_execution=missing, signal_name="s",
                                            request_id=str(uuid.uuid4()))),
        (stub.TerminateWorkflowExecution,
         wsv.TerminateWorkflowExecutionRequest(namespace="default", workflow_execution=missing)),
        (stub.GetWorkflowExecutionHistory,
         wsv.GetWorkflowExecutionHistoryRequest(namespace="default", execution=missing)),
    ):
        code, _message, details = await call_error(rpc, request)
        assert code == grpc.StatusCode.NOT_FOUND, (rpc, code)
        assert details and details[0].Is(errordetails.NotFoundFailure.DESCRIPTOR), rpc


async def test_more_invalid_arguments(stub: wsv_grpc.WorkflowServiceStub) -> None:
    cases: list[tuple[object, Message]] = [
        (stub.StartWorkflowExecution, start_request(workflow_id="x" * 5000)),
        (stub.StartWorkflowExecution, start_request(workflow_type=common.WorkflowType(name=""))),
        (stub.ListWorkflowExecutions,
         wsv.ListWorkflowExecutionsRequest(namespace="default", query="WorkflowId = = 'unbalanced")),
        (stub.PollWorkflowTaskQueue,
         wsv.PollWorkflowTaskQueueRequest(namespace="default", task_queue=taskqueue.TaskQueue(name=""))),
        (stub.SignalWorkflowExecution,
         wsv.SignalWorkflowExecutionRequest(namespace="default", workflow_execution=common.WorkflowExecution(),
                                            signal_name="s")),
    ]
    for rpc, request in cases:
        code, message, _ = await call_error(rpc, request)
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (type(request).__name__, code, message)
        assert message, f"{type(request).__name__}: INVALID_ARGUMENT without a message"
