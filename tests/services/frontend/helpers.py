"""Reading a Temporal error the way the SDKs do: code, message and the first detail of grpc-status-details-bin."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
import grpc.aio
from google.protobuf.message import Message
from grpc_status import rpc_status

from server.common.errors import DETAIL_TYPES


@dataclass
class DecodedError:
    code: grpc.StatusCode
    message: str
    detail: Message | None


def decode_error(err: grpc.aio.AioRpcError) -> DecodedError:
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    detail = None
    if status is not None and status.details:
        cls = DETAIL_TYPES[status.details[0].TypeName()]
        detail = cls()
        status.details[0].Unpack(detail)
    return DecodedError(err.code(), err.details() or "", detail)
