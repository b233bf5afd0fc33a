"""Payloads the server writes itself (system workflows' inputs, memos, search attributes), in the encodings the
SDKs' default converters read: json/plain for plain values, json/protobuf for messages."""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import json_format
from temporalio.api.common.v1 import message_pb2 as common

from server.common.errors import InvalidArgument


def json_payload(value: Any) -> common.Payload:
    return common.Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(value).encode())


def proto_payloads(message: Any) -> common.Payloads:
    """One json/protobuf payload. A message JSON cannot represent (a timestamp outside years 1-9999, say) is bad
    input."""
    try:
        data = json_format.MessageToJson(message, indent=None).encode()
    except (json_format.SerializeToJsonError, ValueError) as err:
        raise InvalidArgument(f"invalid request: {err}") from None
    return common.Payloads(payloads=[common.Payload(
        metadata={"encoding": b"json/protobuf", "messageType": message.DESCRIPTOR.full_name.encode()}, data=data,
    )])  # fmt: skip
