"""The gRPC edge's last line of defence: bodies that do not parse and exceptions no handler turned into a status."""

from __future__ import annotations

import grpc
import grpc.aio
import pytest
import server_guard
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv
from temporalio.api.workflowservice.v1 import service_pb2 as wsv_service

from server import metrics
from server.rpc.adapters import add_handler_to_server

WORKFLOW_SERVICE = wsv_service.DESCRIPTOR.services_by_name["WorkflowService"]


class _Handler:
    calls = 0

    async def GetSystemInfo(self, request, *, deadline=None):  # noqa: ANN001, ANN201, N802
        type(self).calls += 1
        return wsv.GetSystemInfoResponse(server_version="9.9.9")

    async def DescribeNamespace(self, request, *, deadline=None):  # noqa: ANN001, ANN201, N802
        raise KeyError("a bug")

    async def RespondActivityTaskFailed(self, request, *, deadline=None):  # noqa: ANN001, ANN201, N802
        return wsv.RespondActivityTaskFailedResponse()


def _unhandled(method: str, error: str) -> float:
    labels = {"service": "WorkflowService", "method": method, "error": error}
    return metrics.REGISTRY.get_sample_value("durata_rpc_unhandled_errors_total", labels) or 0.0


@pytest.fixture
async def channel():  # noqa: ANN201
    metrics.install_rpc_observer()
    server = grpc.aio.server()
    add_handler_to_server(server, WORKFLOW_SERVICE, _Handler(), {})
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as chan:
            yield chan
    finally:
        await server.stop(None)


def _raw(channel: grpc.aio.Channel, method: str):  # noqa: ANN202
    return channel.unary_unary(
        f"/temporal.api.workflowservice.v1.WorkflowService/{method}",
        request_serializer=lambda body: body,
        response_deserializer=lambda body: body,
    )


@pytest.mark.parametrize(
    "body",
    [
        b"\xff\xff\xff\xff",  # truncated varint tag
        b"\x0a\x05ab",  # length-delimited field longer than the body
        b"\x0a\x02\xc3\x28",  # field 1 (namespace, a string) with invalid UTF-8
        b"\x0a\x02ok" + b"\x0a" * 5,
    ],
)
async def test_unparseable_body_is_invalid_argument(channel: grpc.aio.Channel, body: bytes) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _raw(channel, "DescribeNamespace")(body, timeout=5)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid DescribeNamespaceRequest message" in (info.value.details() or "")


async def test_deeply_nested_body_is_invalid_argument(channel: grpc.aio.Channel) -> None:
    # RespondActivityTaskFailedRequest.failure (2) -> Failure.cause (4) -> Failure.cause ... 300 deep: past the
    # decoder's recursion limit.
    inner = b""
    for _ in range(300):
        inner = b"\x22" + _varint(len(inner)) + inner
    body = b"\x12" + _varint(len(inner)) + inner
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _raw(channel, "RespondActivityTaskFailed")(body, timeout=5)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


async def test_unhandled_exception_is_short_internal_and_counted(channel: grpc.aio.Channel) -> None:
    before = _unhandled("DescribeNamespace", "KeyError")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _raw(channel, "DescribeNamespace")(wsv.DescribeNamespaceRequest(namespace="x").SerializeToString())
    assert info.value.code() == grpc.StatusCode.INTERNAL
    assert info.value.details() == "internal error in DescribeNamespace; see server log"
    assert _unhandled("DescribeNamespace", "KeyError") == before + 1


def test_tripwire_reads_the_metric_and_the_log() -> None:
    text = 'durata_rpc_unhandled_errors_total{error="KeyError",method="X",service="WorkflowService"} 2.0\n'
    assert server_guard.unhandled_in_metrics(text) == ['error="KeyError",method="X",service="WorkflowService" = 2.0']
    assert server_guard.unhandled_in_metrics(text.replace("2.0", "0.0")) == []
    found: list[str] = []
    saved = list(server_guard.FINDINGS)
    server_guard.check_log("p", '{"event": "unhandled error in rpc"}\n{"event": "ok"}\n')
    found, server_guard.FINDINGS[:] = server_guard.FINDINGS[len(saved):], saved
    assert found == ['p: {"event": "unhandled error in rpc"}']
