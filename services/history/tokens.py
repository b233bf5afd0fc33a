"""Task and page tokens: serialized internal protos; garbage never crashes, it is InvalidArgument."""

from __future__ import annotations

from google.protobuf.message import DecodeError

from server.common.errors import InvalidArgument
from server.gen.durata.internal.common.v1 import tokens_pb2

KIND_WORKFLOW = 1
KIND_ACTIVITY = 2


def decode_task_token(data: bytes) -> tokens_pb2.TaskToken:
    tok = tokens_pb2.TaskToken()
    try:
        tok.ParseFromString(data)
    except (DecodeError, ValueError):
        raise InvalidArgument("invalid task token") from None
    if not data or not tok.workflow_id or not tok.run_id or tok.kind not in (KIND_WORKFLOW, KIND_ACTIVITY):
        raise InvalidArgument("invalid task token")
    return tok


def decode_page_token(data: bytes) -> tokens_pb2.HistoryPageToken:
    tok = tokens_pb2.HistoryPageToken()
    try:
        tok.ParseFromString(data)
    except (DecodeError, ValueError):
        raise InvalidArgument("invalid next_page_token") from None
    if not tok.run_id or tok.next_event_id <= 0:
        raise InvalidArgument("invalid next_page_token")
    return tok
