"""gRPC connection to a Temporal-API frontend: one channel, WorkflowService stub, metadata, error mapping."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import grpc
import grpc.aio
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv
from temporalio.api.workflowservice.v1 import service_pb2_grpc

from . import __version__
from .exceptions import RPCError, RPCStatusCode

CLIENT_NAME = "durata-python"


@dataclasses.dataclass
class TLSConfig:
    """TLS settings (PEM bytes), same field names as temporalio.service.TLSConfig."""

    server_root_ca_cert: bytes | None = None
    domain: str | None = None
    client_cert: bytes | None = None
    client_private_key: bytes | None = None


class ServiceClient:
    """Thin wrapper adding metadata and turning grpc errors into RPCError."""

    def __init__(self, target: str, *, tls: bool | TLSConfig = False, api_key: str | None = None,
                 rpc_metadata: Mapping[str, str] | None = None) -> None:
        options: list[tuple[str, int | str]] = [("grpc.max_receive_message_length", 128 * 1024 * 1024),
                   ("grpc.max_send_message_length", 128 * 1024 * 1024)]
        if tls:
            cfg = tls if isinstance(tls, TLSConfig) else TLSConfig()
            creds = grpc.ssl_channel_credentials(cfg.server_root_ca_cert, cfg.client_private_key, cfg.client_cert)
            if cfg.domain:
                options.append(("grpc.ssl_target_name_override", cfg.domain))
            self.channel = grpc.aio.secure_channel(target, creds, options=options)
        else:
            self.channel = grpc.aio.insecure_channel(target, options=options)
        self.target = target
        self.stub = service_pb2_grpc.WorkflowServiceStub(self.channel)
        md = {"client-name": CLIENT_NAME, "client-version": __version__}
        md.update(rpc_metadata or {})
        if api_key:
            md["authorization"] = f"Bearer {api_key}"
        self.metadata = tuple(md.items())
        self.capabilities: Any = None

    async def call(self, method: str, req: Any, *, timeout: timedelta | float | None = None) -> Any:  # noqa: ASYNC109 - gRPC deadline
        t = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
        try:
            return await getattr(self.stub, method)(req, metadata=self.metadata, timeout=t)
        except grpc.aio.AioRpcError as err:
            details = b""
            for k, v in err.trailing_metadata() or ():
                if k == "grpc-status-details-bin":
                    details = v if isinstance(v, bytes) else v.encode()
            raise RPCError(err.details() or str(err.code()), RPCStatusCode(err.code().value[0]), details) from None

    async def check(self) -> None:
        resp = await self.call("GetSystemInfo", wsv.GetSystemInfoRequest(), timeout=10)
        self.capabilities = resp.capabilities

    async def close(self) -> None:
        await self.channel.close()
