"""RPC metrics via the adapters' observer hook, the /metrics endpoint, and persistence timing."""

from __future__ import annotations

import asyncio
import urllib.request

import grpc.aio
import prometheus_client
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv
from temporalio.api.workflowservice.v1 import service_pb2 as wsv_service
from temporalio.api.workflowservice.v1 import service_pb2_grpc as wsv_grpc

from server import metrics
from server.common.errors import InvalidArgument
from server.rpc.adapters import add_handler_to_server

WORKFLOW_SERVICE = wsv_service.DESCRIPTOR.services_by_name["WorkflowService"]


class _Handler:
    async def GetSystemInfo(self, request, *, deadline=None):  # noqa: ANN001, ANN201, N802
        return wsv.GetSystemInfoResponse(server_version="9.9.9")

    async def DescribeNamespace(self, request, *, deadline=None):  # noqa: ANN001, ANN201, N802
        raise InvalidArgument("nope")


def _fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.read().decode()


def _sample(name: str, labels: dict[str, str]) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


async def test_rpc_metrics_and_endpoint() -> None:
    metrics.install_rpc_observer()
    metrics.install_rpc_observer()  # idempotent
    server = grpc.aio.server()
    add_handler_to_server(server, WORKFLOW_SERVICE, _Handler(), {})
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    ok = {"service": "WorkflowService", "method": "GetSystemInfo", "status": "OK"}
    bad = {"service": "WorkflowService", "method": "DescribeNamespace", "status": "INVALID_ARGUMENT"}
    before_ok, before_bad = _sample("durata_rpc_requests_total", ok), _sample("durata_rpc_requests_total", bad)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = wsv_grpc.WorkflowServiceStub(channel)
            await stub.GetSystemInfo(wsv.GetSystemInfoRequest())
            await stub.GetSystemInfo(wsv.GetSystemInfoRequest())
            try:
                await stub.DescribeNamespace(wsv.DescribeNamespaceRequest(namespace="x"))
            except grpc.aio.AioRpcError as err:
                assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        await server.stop(None)
    assert _sample("durata_rpc_requests_total", ok) == before_ok + 2
    assert _sample("durata_rpc_requests_total", bad) == before_bad + 1
    count = _sample("durata_rpc_latency_seconds_count", ok)
    assert count >= 2

    stray = prometheus_client.Counter("durata_test_default_registry_metric", "registered without a registry")
    stray.inc()
    endpoint = metrics.start_metrics_server("127.0.0.1", 0)
    try:
        body = await asyncio.to_thread(_fetch, endpoint.url)
    finally:
        endpoint.stop()
    assert "durata_test_default_registry_metric_total 1.0" in body  # the default registry is served too
    assert "process_cpu_seconds_total" in body or "python_gc_objects_collected_total" in body
    assert 'durata_rpc_requests_total{method="GetSystemInfo",service="WorkflowService",status="OK"}' in body or (
        'durata_rpc_requests_total{service="WorkflowService",method="GetSystemInfo",status="OK"}' in body
    )


class _Store:
    def __init__(self) -> None:
        self.value = 41

    async def get(self, key: str) -> int:
        return self.value + 1

    async def fail(self) -> None:
        raise KeyError("x")


class _Bundle:
    def __init__(self) -> None:
        self.executions = _Store()
        self.closed = False
        self.extra = "passes through"

    async def close(self) -> None:
        self.closed = True


async def test_instrument_persistence_times_calls() -> None:
    bundle = _Bundle()
    timed = metrics.instrument_persistence(bundle)
    labels = {"store": "executions", "operation": "get"}
    before = _sample("durata_persistence_latency_seconds_count", labels)
    assert await timed.executions.get("k") == 42
    assert timed.executions.value == 41 and timed.extra == "passes through"
    try:
        await timed.executions.fail()
    except KeyError:
        pass
    assert _sample("durata_persistence_latency_seconds_count", labels) == before + 1
    assert _sample("durata_persistence_errors_total",
                   {"store": "executions", "operation": "fail", "error": "KeyError"}) >= 1
    await timed.close()
    assert bundle.closed
