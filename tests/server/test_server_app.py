"""Process assembly in-process: a dev DurataProcess on in-memory SQLite answers over gRPC and stops cleanly."""

from __future__ import annotations

import grpc
import grpc.aio
import pytest
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc
from temporalio.api.common.v1 import message_pb2 as common
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv
from temporalio.api.workflowservice.v1 import service_pb2_grpc as wsv_grpc

from server.app import ContextBoundHandler, DurataProcess, StartupError, _redact
from server.config import ROLES, ServerConfig


def dev_config(**overrides: object) -> ServerConfig:
    cfg = ServerConfig(db_url="sqlite://", dev_mode=True, frontend_port=0, namespaces=["default", "extra"],
                       shutdown_grace_seconds=1.0, services=list(ROLES))
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return cfg


async def test_dev_process_serves_and_stops() -> None:
    proc = DurataProcess(dev_config())
    await proc.start()
    try:
        port = proc.bound_ports["frontend"]
        assert set(proc.roles) == set(ROLES)
        # In one process the services hold each other's handler objects (no gRPC between them).
        assert proc.roles["history"].service.matching_client is proc.roles["matching"].service.handler
        assert proc.roles["frontend"].service.history_client is proc.roles["history"].service.handler
        assert proc.roles["internal_worker"].service.client is proc.roles["frontend"].service.handler
        assert proc.channels == []
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = wsv_grpc.WorkflowServiceStub(channel)
            info = await stub.GetSystemInfo(wsv.GetSystemInfoRequest(), timeout=5)
            assert info.server_version
            names = {ns.namespace_info.name for ns in (await stub.ListNamespaces(wsv.ListNamespacesRequest(),
                                                                                  timeout=5)).namespaces}
            assert {"default", "extra"} <= names
            health = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service="temporal.api.workflowservice.v1.WorkflowService"), timeout=5)
            assert health.status == health_pb2.HealthCheckResponse.SERVING
        assert proc.banner() == [f"Durata dev server listening on 127.0.0.1:{port}"]
    finally:
        await proc.stop()


async def test_cluster_process_refuses_unmigrated_database(tmp_path) -> None:  # noqa: ANN001
    cfg = ServerConfig(db_url=f"sqlite:///{tmp_path / 'empty.db'}", services=["history"], history_port=0)
    proc = DurataProcess(cfg)
    with pytest.raises(StartupError, match="durata schema upgrade"):
        await proc.start()
    await proc.stop()


async def test_context_bound_handler_binds_request_fields() -> None:
    seen: dict = {}

    class Inner:
        async def SignalWorkflowExecution(self, request, *, deadline=None):  # noqa: ANN001, ANN202, N802
            seen.update(structlog.contextvars.get_contextvars())
            return "ok"

    handler = ContextBoundHandler(Inner(), "frontend")
    request = wsv.SignalWorkflowExecutionRequest(
        namespace="ns", workflow_execution=common.WorkflowExecution(workflow_id="w", run_id="r"))
    assert await handler.SignalWorkflowExecution(request, deadline=None) == "ok"
    assert seen == {"namespace": "ns", "workflow_id": "w", "run_id": "r"}
    assert structlog.contextvars.get_contextvars() == {}
    with pytest.raises(AttributeError):
        handler.NoSuchMethod  # noqa: B018


def test_redact() -> None:
    assert _redact("postgresql://u:secret@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert _redact("postgresql://u@h/db") == "postgresql://u@h/db"
    assert _redact("sqlite:///x.db") == "sqlite:///x.db"


async def test_poll_drain_ends_parked_polls() -> None:
    import asyncio

    from server.app import PollDrain

    cancelled = asyncio.Event()

    class SlowMatching:
        async def PollWorkflowTaskQueue(self, request, *, deadline=None):  # noqa: ANN001, ANN202, N802
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                cancelled.set()
                raise

        async def AddWorkflowTask(self, request, *, deadline=None):  # noqa: ANN001, ANN202, N802
            return "added"

    client = PollDrain(SlowMatching())
    assert await client.AddWorkflowTask(None) == "added"
    parked = asyncio.ensure_future(client.PollWorkflowTaskQueue(None, deadline=None))
    await asyncio.sleep(0.01)
    assert not parked.done()
    client.drain()
    response = await asyncio.wait_for(parked, 2)
    assert response == wsv.PollWorkflowTaskQueueResponse()  # all-default: "no task", the SDK polls again
    assert cancelled.is_set()  # the remote poll was cancelled, not left running
    assert await client.PollWorkflowTaskQueue(None) == wsv.PollWorkflowTaskQueueResponse()
