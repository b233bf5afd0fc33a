"""Task token decoding. The frontend reads tokens only to route (namespace, workflow id) and to check that the token
belongs to the namespace named in the request; History validates everything else against mutable state."""

from __future__ import annotations

from google.protobuf.message import DecodeError

from server.common.errors import InvalidArgument
from server.gen.durata.internal.common.v1 import tokens_pb2

WORKFLOW_TASK = 1
ACTIVITY_TASK = 2
_BAD_TOKEN = "Error deserializing task token."


def decode_task_token(data: bytes, *, kind: int) -> tokens_pb2.TaskToken:
    """Decode a workflow/activity TaskToken; garbage or a token of the other kind -> INVALID_ARGUMENT."""
    if not data:
        raise InvalidArgument("Task token not set on request.")
    token = tokens_pb2.TaskToken()
    try:
        token.ParseFromString(data)
    except (DecodeError, ValueError):
        raise InvalidArgument(_BAD_TOKEN) from None
    if not token.namespace_id or not token.workflow_id or not token.run_id:
        raise InvalidArgument(_BAD_TOKEN)
    if token.kind and token.kind != kind:
        what = "workflow" if kind == WORKFLOW_TASK else "activity"
        raise InvalidArgument(f"Task token is not a {what} task token.")
    return token


def decode_query_task_token(data: bytes) -> tokens_pb2.QueryTaskToken:
    if not data:
        raise InvalidArgument("Task token not set on request.")
    token = tokens_pb2.QueryTaskToken()
    try:
        token.ParseFromString(data)
    except (DecodeError, ValueError):
        raise InvalidArgument(_BAD_TOKEN) from None
    if not token.namespace_id or not token.query_id:
        raise InvalidArgument(_BAD_TOKEN)
    return token
