"""Frontend fixtures: real SQLite persistence, recording fakes for History/Matching, and a real gRPC server.

The fakes only record what the frontend forwarded and answer with an empty response of the right type: the tests
here are about the frontend's own behaviour (validation, namespaces, routing, the gRPC edge).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import grpc
import grpc.aio
import pytest
from google.protobuf import symbol_database
from google.protobuf.descriptor import ServiceDescriptor
from temporalio.api.operatorservice.v1 import service_pb2_grpc as operator_grpc
from temporalio.api.workflowservice.v1 import service_pb2_grpc as workflow_grpc

from server.gen.durata.internal.history.v1 import service_pb2 as history_service
from server.gen.durata.internal.matching.v1 import service_pb2 as matching_service
from server.persistence.factory import open_persistence
from server.persistence.interface import ClusterMetadata, Persistence
from server.rpc.adapters import GRPC_SERVER_OPTIONS
from services.frontend.config import FrontendConfig
from services.frontend.grpc_server import register_grpc
from services.frontend.service import FrontendService


@dataclass
class Call:
    method: str
    request: Any
    deadline: float | None


@dataclass
class RecordingService:
    """Stands in for History or Matching: records each call, answers with an empty response (or ``answers``)."""

    descriptor: ServiceDescriptor
    calls: list[Call] = field(default_factory=list)
    answers: dict[str, Callable[[Any], Any]] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = self.descriptor.methods_by_name.get(name)
        if method is None:
            raise AttributeError(name)
        response_cls = symbol_database.Default().GetSymbol(method.output_type.full_name)

        async def call(request: Any, *, deadline: float | None = None) -> Any:
            self.calls.append(Call(name, request, deadline))
            answer = self.answers.get(name)
            return answer(request) if answer is not None else response_cls()

        return call

    def only(self, method: str) -> Call:
        matching = [c for c in self.calls if c.method == method]
        assert len(matching) == 1, f"expected one {method} call, got {self.calls}"
        return matching[0]


@pytest.fixture
async def store() -> AsyncIterator[Persistence]:
    persistence = await open_persistence("sqlite://", create_schema=True)
    await persistence.cluster.init_cluster_metadata(
        ClusterMetadata(cluster_name="active", num_history_shards=4)
    )
    try:
        yield persistence
    finally:
        await persistence.close()


@pytest.fixture
def config() -> FrontendConfig:
    return FrontendConfig(min_namespace_retention=timedelta(seconds=1))


@pytest.fixture
def history() -> RecordingService:
    return RecordingService(history_service.DESCRIPTOR.services_by_name["HistoryService"])


@pytest.fixture
def matching() -> RecordingService:
    return RecordingService(matching_service.DESCRIPTOR.services_by_name["MatchingService"])


@pytest.fixture
async def frontend(
    store: Persistence, config: FrontendConfig, history: RecordingService, matching: RecordingService
) -> AsyncIterator[FrontendService]:
    service = FrontendService(store, config)
    service.history_client = history
    service.matching_client = matching
    await service.start()
    await service.create_default_namespaces(["default"], timedelta(days=1))
    try:
        yield service
    finally:
        await service.stop()


@dataclass
class GrpcEndpoint:
    address: str
    channel: grpc.aio.Channel
    workflow: workflow_grpc.WorkflowServiceStub
    operator: operator_grpc.OperatorServiceStub


@pytest.fixture
async def grpc_server(frontend: FrontendService) -> AsyncIterator[str]:
    server = grpc.aio.server(options=GRPC_SERVER_OPTIONS)
    register_grpc(server, frontend)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(grace=None)


@pytest.fixture
async def endpoint(grpc_server: str) -> AsyncIterator[GrpcEndpoint]:
    async with grpc.aio.insecure_channel(grpc_server) as channel:
        yield GrpcEndpoint(
            grpc_server,
            channel,
            workflow_grpc.WorkflowServiceStub(channel),
            operator_grpc.OperatorServiceStub(channel),
        )
