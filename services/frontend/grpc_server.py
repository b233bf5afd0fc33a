"""Serving the frontend over gRPC: WorkflowService, OperatorService and grpc.health.v1.

grpcio decompresses gzip/deflate requests on its own (the official SDK sends gzip), so nothing is needed for that
beyond the shared server options.
"""

from __future__ import annotations

import grpc.aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from temporalio.api.operatorservice.v1 import service_pb2 as operator_service
from temporalio.api.workflowservice.v1 import service_pb2 as workflow_service

from server.rpc.adapters import add_handler_to_server
from services.frontend.service import FrontendService

WORKFLOW_SERVICE = workflow_service.DESCRIPTOR.services_by_name["WorkflowService"]
OPERATOR_SERVICE = operator_service.DESCRIPTOR.services_by_name["OperatorService"]


class FrontendHealth(HealthServicer):
    """Health servicer that starts SERVING for "" and the WorkflowService name (what `operator cluster health` asks)."""

    def __init__(self) -> None:
        super().__init__()
        # No watcher can exist yet, so setting the initial map directly is what ``set()`` would do.
        self._server_status[WORKFLOW_SERVICE.full_name] = health_pb2.HealthCheckResponse.SERVING
        self._server_status[OPERATOR_SERVICE.full_name] = health_pb2.HealthCheckResponse.SERVING


def register_grpc(server: grpc.aio.Server, frontend: FrontendService) -> FrontendHealth:
    """Add the frontend's services and gRPC health to ``server`` (before ``server.start()``).

    Returns the health servicer (also kept as ``frontend.health``; ``frontend.stop()`` flips it to NOT_SERVING).
    """
    add_handler_to_server(server, WORKFLOW_SERVICE, frontend.handler, {})
    add_handler_to_server(server, OPERATOR_SERVICE, frontend.operator_handler, {})
    health = FrontendHealth()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    frontend.health = health
    return health
