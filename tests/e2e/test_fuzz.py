"""Property-based fuzzing of every WorkflowService and OperatorService RPC, generated from the descriptors.

Against start-dev and the PostgreSQL services: random requests (random field subsets, extreme numbers and sizes,
unknown enum values, out-of-range durations) and random bytes as bodies. Must hold for each: no INTERNAL or
UNKNOWN status, non-poll RPCs answer within a bound, the server is healthy after, and a canary workflow started
before the run completes with its original input. Deterministic by default (the same examples every run);
``DURATA_FUZZ_EXAMPLES=N`` and ``DURATA_FUZZ_RANDOM=1`` widen it for a longer local hunt.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import timedelta

import grpc
import pytest
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message_factory import GetMessageClass
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.api.operatorservice.v1 import service_pb2 as op_service
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv
from temporalio.api.workflowservice.v1 import service_pb2 as wsv_service
from temporalio.client import Client

from e2e import workflows as wf
from e2e.deployments import Deployment
from e2e.fuzz_strategies import TARGET_WORKFLOW_IDS, request
from e2e.harness import health_serving
from e2e.helpers import running_worker

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

SERVICES = [
    wsv_service.DESCRIPTOR.services_by_name["WorkflowService"],
    op_service.DESCRIPTOR.services_by_name["OperatorService"],
]
# RPCs that may legitimately wait until the caller's deadline (long polls and calls that wait on a worker).
WAITING = {"UpdateWorkflowExecution", "ExecuteMultiOperation", "GetWorkflowExecutionHistory", "QueryWorkflow"}
# Run last: they can take the fuzz namespace away from every RPC after them.
LAST = ("DeleteNamespace",)
EXAMPLES = int(os.environ.get("DURATA_FUZZ_EXAMPLES", "40"))
POLL_EXAMPLES = max(2, EXAMPLES // 4)
CALL_TIMEOUT = 10.0
POLL_TIMEOUT = 2.5
BAD = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}


def _methods() -> list[tuple[str, MethodDescriptor]]:
    found = [(svc.full_name, m) for svc in SERVICES for m in svc.methods]
    return sorted(found, key=lambda item: (item[1].name in LAST, item[0], item[1].name))


def _waits(name: str) -> bool:
    return name.startswith("Poll") or name in WAITING


STATS: dict[str, int] = {}


def _call(channel: grpc.Channel, service: str, method: MethodDescriptor, body: bytes) -> grpc.StatusCode:
    code = _call_inner(channel, service, method, body)
    STATS[code.name] = STATS.get(code.name, 0) + 1
    return code


def _call_inner(channel: grpc.Channel, service: str, method: MethodDescriptor, body: bytes) -> grpc.StatusCode:
    rpc = channel.unary_unary(f"/{service}/{method.name}", request_serializer=None, response_deserializer=None)
    timeout = POLL_TIMEOUT + 0.5 if _waits(method.name) else CALL_TIMEOUT
    try:
        rpc(body, timeout=timeout)
        return grpc.StatusCode.OK
    except grpc.RpcError as err:
        code = err.code()  # type: ignore[attr-defined]
        detail = err.details()  # type: ignore[attr-defined]
        assert code not in BAD, f"{method.name}: {code.name} {detail!r}"
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            assert _waits(method.name), f"{method.name} did not answer within {timeout}s"
        return code


def _settings(examples: int):  # noqa: ANN202
    return settings(
        max_examples=examples, deadline=None, database=None, derandomize=not os.environ.get("DURATA_FUZZ_RANDOM"),
        suppress_health_check=list(HealthCheck), print_blob=True,
    )


def _fuzz_method(channel: grpc.Channel, service: str, method: MethodDescriptor) -> None:
    empty = GetMessageClass(method.input_type)().SerializeToString()
    if _call(channel, service, method, empty) == grpc.StatusCode.UNIMPLEMENTED:
        return  # not served (the list of those is checked elsewhere); nothing behind it to fuzz
    examples = POLL_EXAMPLES if _waits(method.name) else EXAMPLES
    request_st = request(method.input_type)

    @_settings(examples)
    @given(request_st)
    def typed(request) -> None:  # noqa: ANN001
        _call(channel, service, method, request.SerializeToString())

    @_settings(max(2, examples // 3))
    @given(st.binary(max_size=256))
    def raw(body: bytes) -> None:
        _call(channel, service, method, body)

    typed()
    raw()


def _start_targets(channel: grpc.Channel) -> None:
    start = channel.unary_unary(
        "/temporal.api.workflowservice.v1.WorkflowService/StartWorkflowExecution",
        request_serializer=wsv.StartWorkflowExecutionRequest.SerializeToString,
        response_deserializer=wsv.StartWorkflowExecutionResponse.FromString,
    )
    for workflow_id in TARGET_WORKFLOW_IDS:
        start(wsv.StartWorkflowExecutionRequest(
            namespace="fuzz", workflow_id=workflow_id, workflow_type={"name": "fuzz-type"},
            task_queue={"name": "fuzz-queue"}, request_id=str(uuid.uuid4()),
        ), timeout=10)


async def _start_canary(address: str) -> tuple[str, str, str]:
    client = await Client.connect(address, namespace="default")
    workflow_id, queue, name = f"canary-{uuid.uuid4().hex[:8]}", f"canary-q-{uuid.uuid4().hex[:8]}", "canary-input"
    await client.start_workflow(wf.HelloWorkflow.run, name, id=workflow_id, task_queue=queue,
                                execution_timeout=timedelta(minutes=30))
    return workflow_id, queue, name


async def _finish_canary(address: str, workflow_id: str, queue: str) -> str:
    client = await Client.connect(address, namespace="default")
    async with running_worker(client, queue):
        return await asyncio.wait_for(client.get_workflow_handle(workflow_id).result(), timeout=60)


def _register_fuzz_namespace(channel: grpc.Channel) -> None:
    register = channel.unary_unary(
        "/temporal.api.workflowservice.v1.WorkflowService/RegisterNamespace",
        request_serializer=wsv.RegisterNamespaceRequest.SerializeToString,
        response_deserializer=wsv.RegisterNamespaceResponse.FromString,
    )
    try:
        register(wsv.RegisterNamespaceRequest(namespace="fuzz", workflow_execution_retention_period=Duration(seconds=86400)),
                 timeout=10)
    except grpc.RpcError as err:
        assert err.code() == grpc.StatusCode.ALREADY_EXISTS  # type: ignore[attr-defined]


def test_every_rpc_survives_random_requests(fresh_deployment: Deployment) -> None:
    address = fresh_deployment.address
    STATS.clear()
    workflow_id, queue, name = asyncio.run(_start_canary(address))
    with grpc.insecure_channel(address, options=[("grpc.max_receive_message_length", 128 * 1024 * 1024)]) as channel:
        _register_fuzz_namespace(channel)
        _start_targets(channel)
        for service, method in _methods():
            assert GetMessageClass(method.input_type)  # every request type is known to the runtime
            _fuzz_method(channel, service, method)
    print("fuzz statuses:", STATS)
    assert sum(STATS.values()) > len(_methods()) * 10, STATS
    assert health_serving(address), "server not healthy after the fuzz run"
    result = asyncio.run(_finish_canary(address, workflow_id, queue))
    assert name in result, result
