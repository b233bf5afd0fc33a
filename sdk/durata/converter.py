"""Payload conversion using Temporal's standard encodings so histories interoperate with other SDKs.

Encodings tried in order: ``binary/null`` (None), ``binary/plain`` (bytes), ``json/protobuf`` (protobuf
messages), ``json/plain`` (everything JSON-able, including dataclasses and pydantic models).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import sys
import typing
import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import google.protobuf.json_format
import google.protobuf.message
import google.protobuf.symbol_database
from temporalio.api.common.v1 import message_pb2 as common_pb


class _Encoder(json.JSONEncoder):
    def default(self, o: Any) -> Any:
        if dataclasses.is_dataclass(o) and not isinstance(o, type):
            return dataclasses.asdict(o)
        if hasattr(o, "model_dump"):  # pydantic v2
            return o.model_dump(mode="json")
        if isinstance(o, datetime | date):
            return o.isoformat()
        if isinstance(o, uuid.UUID):
            return str(o)
        if isinstance(o, enum.Enum):
            return o.value
        if isinstance(o, set | frozenset):
            return list(o)
        return super().default(o)


def value_to_type(hint: Any, value: Any) -> Any:
    """Rebuild typed values (dataclasses, pydantic models, enums, containers) from decoded JSON."""
    if hint is None or hint is Any or value is None:
        return value
    if isinstance(hint, str):
        return value
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union or (sys.version_info >= (3, 10) and origin is __import__("types").UnionType):
        non_none = [a for a in args if a is not type(None)]
        for a in non_none:
            try:
                return value_to_type(a, value)
            except Exception:
                continue
        return value
    if origin in (list, Sequence, typing.Sequence, set, frozenset, tuple) or (
        origin is not None and isinstance(origin, type) and issubclass(origin, list | set | tuple)
    ):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return tuple(value_to_type(a, v) for a, v in zip(args, value, strict=False))
        inner = args[0] if args else Any
        items = [value_to_type(inner, v) for v in value]
        return origin(items) if origin in (set, frozenset, tuple) else items
    if origin in (dict, typing.Mapping) or (origin is not None and getattr(origin, "__name__", "") == "Mapping"):
        kt, vt = (args + (Any, Any))[:2] if args else (Any, Any)
        return {value_to_type(kt, k): value_to_type(vt, v) for k, v in value.items()}
    if not isinstance(hint, type):
        return value
    if hasattr(hint, "model_validate"):
        return hint.model_validate(value)
    if dataclasses.is_dataclass(hint):
        hints = typing.get_type_hints(hint)
        kwargs = {}
        for f in dataclasses.fields(hint):
            if f.name in value and f.init:
                kwargs[f.name] = value_to_type(hints.get(f.name, Any), value[f.name])
        return hint(**kwargs)
    if issubclass(hint, enum.Enum):
        return hint(value)
    if hint is datetime and isinstance(value, str):
        return datetime.fromisoformat(value)
    if hint is uuid.UUID and isinstance(value, str):
        return uuid.UUID(value)
    if hint in (int, float, str, bool) and not isinstance(value, hint):
        return hint(value)
    return value


class PayloadConverter:
    """Converts single values to/from Payload protos."""

    def to_payload(self, value: Any) -> common_pb.Payload:
        if value is None:
            return common_pb.Payload(metadata={"encoding": b"binary/null"})
        if isinstance(value, bytes):
            return common_pb.Payload(metadata={"encoding": b"binary/plain"}, data=value)
        if isinstance(value, google.protobuf.message.Message):
            return common_pb.Payload(
                metadata={
                    "encoding": b"json/protobuf",
                    "messageType": value.DESCRIPTOR.full_name.encode(),
                },
                data=google.protobuf.json_format.MessageToJson(value, indent=None).encode(),
            )
        try:
            data = json.dumps(value, cls=_Encoder, separators=(",", ":"), sort_keys=True).encode()
        except (TypeError, ValueError) as err:
            raise TypeError(f"Value of type {type(value).__name__} is not serializable: {err}") from err
        return common_pb.Payload(metadata={"encoding": b"json/plain"}, data=data)

    def from_payload(self, payload: common_pb.Payload, type_hint: Any = None) -> Any:
        encoding = payload.metadata.get("encoding", b"").decode()
        if encoding == "binary/null":
            return None
        if encoding == "binary/plain":
            return payload.data
        if encoding == "json/protobuf":
            name = payload.metadata.get("messageType", b"").decode()
            cls = type_hint if isinstance(type_hint, type) and issubclass(type_hint, google.protobuf.message.Message) else None
            if cls is None:
                cls = google.protobuf.symbol_database.Default().GetSymbol(name)
            return google.protobuf.json_format.Parse(payload.data, cls(), ignore_unknown_fields=True)
        if encoding == "json/plain":
            return value_to_type(type_hint, json.loads(payload.data))
        raise RuntimeError(f"Unknown payload encoding {encoding!r}")


@dataclasses.dataclass
class DataConverter:
    """Entry point for (de)serialising argument lists; ``default`` is what clients and workers use."""

    payload_converter: PayloadConverter = dataclasses.field(default_factory=PayloadConverter)

    default: typing.ClassVar[DataConverter]

    def encode(self, values: Sequence[Any]) -> list[common_pb.Payload]:
        return [self.payload_converter.to_payload(v) for v in values]

    def encode_payloads(self, values: Sequence[Any]) -> common_pb.Payloads:
        return common_pb.Payloads(payloads=self.encode(values))

    def decode(self, payloads: Sequence[common_pb.Payload], type_hints: Sequence[Any] | None = None) -> list[Any]:
        out = []
        for i, p in enumerate(payloads):
            hint = type_hints[i] if type_hints and i < len(type_hints) else None
            out.append(self.payload_converter.from_payload(p, hint))
        return out

    def decode_one(self, payloads: common_pb.Payloads | None, type_hint: Any = None) -> Any:
        if payloads is None or not payloads.payloads:
            return None
        return self.payload_converter.from_payload(payloads.payloads[0], type_hint)


DataConverter.default = DataConverter()
