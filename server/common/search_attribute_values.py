"""Search attribute values: Temporal's decoding rules, validation messages, ``type`` metadata and the typed
values the visibility store indexes.

Types are ``IndexedValueType`` numbers; the attribute catalogue (system names, a namespace's custom aliases)
lives in services/frontend/search_attributes.py and is handed in as a name -> type mapping.

Decoding follows Temporal's ``sadefs.DecodeValue``: JSON ``null`` or an empty list means "no value" (an upsert
removes the attribute); a one-element list is accepted for a scalar type; Int must be a JSON integer, Double any
JSON number, Bool a JSON boolean, Datetime an RFC 3339 string, Keyword/Text a string, KeywordList a list of
strings.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from temporalio.api.common.v1 import message_pb2 as common
from temporalio.api.enums.v1 import common_pb2 as common_enums

from server.common.errors import InvalidArgument

IVT = common_enums.IndexedValueType

# Temporal's IndexedValueType.String(): what messages and the ``type`` metadata carry.
TYPE_NAMES: dict[int, str] = {
    IVT.INDEXED_VALUE_TYPE_TEXT: "Text",
    IVT.INDEXED_VALUE_TYPE_KEYWORD: "Keyword",
    IVT.INDEXED_VALUE_TYPE_INT: "Int",
    IVT.INDEXED_VALUE_TYPE_DOUBLE: "Double",
    IVT.INDEXED_VALUE_TYPE_BOOL: "Bool",
    IVT.INDEXED_VALUE_TYPE_DATETIME: "Datetime",
    IVT.INDEXED_VALUE_TYPE_KEYWORD_LIST: "KeywordList",
}
_TYPES_BY_NAME = {v: k for k, v in TYPE_NAMES.items()}

_RFC3339 = re.compile(r"^\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)$")

# Predefined attributes a user may set (Temporal's predefinedWhiteList); the other system ones are refused.
USER_SETTABLE_PREDEFINED = {
    "TemporalChangeVersion", "BinaryChecksums", "BuildIds", "BatcherNamespace", "BatcherUser",
    "TemporalScheduledStartTime", "TemporalScheduledById", "TemporalSchedulePaused", "TemporalNamespaceDivision",
    "TemporalPauseInfo", "TemporalReportedProblems",
}  # fmt: skip


# Temporal's frontend.searchAttributesNumberOfKeysLimit / SizeOfValueLimit / TotalSizeLimit defaults.
MAX_KEYS = 100
MAX_VALUE_BYTES = 2 * 1024
MAX_TOTAL_BYTES = 40 * 1024


def type_name(value_type: int) -> str:
    return TYPE_NAMES.get(value_type, "Unspecified")


def metadata_type(payload: common.Payload) -> int:
    """The type named in a payload's ``type`` metadata, UNSPECIFIED if none or unknown."""
    raw = payload.metadata.get("type", b"").decode(errors="replace")
    return _TYPES_BY_NAME.get(raw, IVT.INDEXED_VALUE_TYPE_UNSPECIFIED)


def set_type(payload: common.Payload, value_type: int) -> None:
    if value_type in TYPE_NAMES:
        payload.metadata["type"] = TYPE_NAMES[value_type].encode()


def raw_value(payload: common.Payload) -> Any:
    """The JSON value inside a payload; None for nil payloads. ValueError if it is not JSON."""
    encoding = payload.metadata.get("encoding", b"")
    if encoding == b"binary/null" or not payload.data:
        return None
    if encoding not in (b"json/plain", b""):
        raise ValueError(f"unsupported encoding {encoding.decode(errors='replace')}")
    return json.loads(payload.data)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _scalar_ok(v: Any, value_type: int) -> bool:
    if value_type == IVT.INDEXED_VALUE_TYPE_INT:
        return _is_int(v) and -(2**63) <= v < 2**63
    if value_type == IVT.INDEXED_VALUE_TYPE_DOUBLE:
        return isinstance(v, int | float) and not isinstance(v, bool)
    if value_type == IVT.INDEXED_VALUE_TYPE_BOOL:
        return isinstance(v, bool)
    if value_type == IVT.INDEXED_VALUE_TYPE_DATETIME:
        return isinstance(v, str) and parse_datetime(v) is not None
    return isinstance(v, str)  # Keyword, Text


def parse_datetime(text: str) -> datetime | None:
    """An RFC 3339 time (what Go's time.Time JSON decoding accepts) -> aware datetime; None if it is not one."""
    m = _RFC3339.match(text)
    if m is None:
        return None
    s = text.replace("t", "T").replace("z", "Z")
    frac = m.group(1) or ""
    if len(frac) > 7:  # Python keeps microseconds; nanoseconds are truncated
        s = s.replace(frac, frac[:7], 1)
    try:
        return datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return None


def decode_value(payload: common.Payload, value_type: int) -> Any:
    """The value as the given type (a list of str for KeywordList); None means "no value". ValueError if invalid."""
    v = raw_value(payload)
    if v is None:
        return None
    if value_type == IVT.INDEXED_VALUE_TYPE_KEYWORD_LIST:
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise ValueError("not a list of strings")
        return list(v) or None
    if isinstance(v, list):
        if not v:
            return None
        if len(v) != 1:
            raise ValueError("list of values not allowed")
        v = v[0]
        if v is None:
            return None
    if not _scalar_ok(v, value_type):
        raise ValueError("wrong type")
    if value_type == IVT.INDEXED_VALUE_TYPE_DOUBLE:
        return float(v)
    if value_type == IVT.INDEXED_VALUE_TYPE_DATETIME:
        return parse_datetime(v)
    return v


def go_format(v: Any) -> str:
    """A decoded JSON value as Go's ``%v`` prints it (Temporal's messages show values this way)."""
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        f = float(v)
        if f.is_integer() and abs(f) < 1e21:
            return str(int(f))
        return repr(f)  # shortest round-trip form, exponents as Go writes them (1e-05)
    if isinstance(v, list):
        return "[" + " ".join(go_format(x) for x in v) + "]"
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{go_format(v[k])}" for k in sorted(v)) + "]"
    return str(v)


def validate(
    attributes: common.SearchAttributes,
    custom: Mapping[str, int],
    predefined: Mapping[str, int],
    system: Mapping[str, int],
) -> None:
    """Temporal's search attribute Validator: InvalidArgument with its message on the first bad attribute, then its
    size limits. Also sets the ``type`` metadata on every payload that lacks it (what Temporal's ApplyTypeMap does
    on reads)."""
    fields = attributes.indexed_fields
    if len(fields) > MAX_KEYS:
        raise InvalidArgument(f"number of search attributes {len(fields)} exceeds limit {MAX_KEYS}")
    for name, payload in fields.items():
        if name in system or (name in predefined and name not in USER_SETTABLE_PREDEFINED):
            raise InvalidArgument(f"{name} attribute can't be set in SearchAttributes")
        value_type = custom.get(name, predefined.get(name))
        if value_type is None:
            raise InvalidArgument(f"search attribute {name} is not defined")
        try:
            decode_value(payload, value_type)
        except ValueError:
            try:
                shown = go_format(raw_value(payload))
            except ValueError:
                shown = f"value from <{payload}>"
            raise InvalidArgument(
                f"invalid value for search attribute {name} of type {type_name(value_type)}: {shown}"
            ) from None
        if "type" not in payload.metadata:
            set_type(payload, value_type)
    for name, payload in fields.items():
        if len(payload.data) > MAX_VALUE_BYTES:
            raise InvalidArgument(
                f"search attribute {name} value size {len(payload.data)} exceeds size limit {MAX_VALUE_BYTES}"
            )
    if attributes.ByteSize() > MAX_TOTAL_BYTES:
        raise InvalidArgument(
            f"total size of search attributes {attributes.ByteSize()} exceeds size limit {MAX_TOTAL_BYTES}"
        )


def apply_type_map(attributes: common.SearchAttributes, types: Mapping[str, int]) -> None:
    """Set the ``type`` metadata where it is missing and the attribute is known (Temporal's ApplyTypeMap)."""
    for name, payload in attributes.indexed_fields.items():
        if "type" not in payload.metadata and name in types:
            set_type(payload, types[name])


def format_datetime(value: datetime) -> str:
    """Go's RFC3339Nano in UTC, as Temporal's SQL visibility returns datetimes: 2001-02-03T04:05:06.5Z."""
    value = value.astimezone(UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text + "Z"


def canonical_payload(payload: common.Payload, value_type: int) -> common.Payload:
    """The payload as Temporal's visibility returns it: ``type`` metadata, datetimes in RFC 3339 UTC."""
    out = common.Payload()
    out.CopyFrom(payload)
    if value_type in TYPE_NAMES and "type" not in out.metadata:
        set_type(out, value_type)
    if value_type == IVT.INDEXED_VALUE_TYPE_DATETIME:
        try:
            v = decode_value(payload, value_type)
        except ValueError:
            return out
        if isinstance(v, datetime):
            out.metadata["encoding"] = b"json/plain"
            out.data = json.dumps(format_datetime(v)).encode()
    return out


def indexed_values(
    attributes: common.SearchAttributes, columns: Mapping[str, str], types: Mapping[str, int]
) -> dict[str, Any]:
    """column -> typed value for the visibility row, for the attributes that have a column (alias -> column).
    Values that do not decode as their type are skipped (they were validated on the way in)."""
    out: dict[str, Any] = {}
    for name, payload in attributes.indexed_fields.items():
        column = columns.get(name)
        value_type = types.get(name)
        if column is None or value_type is None:
            continue
        try:
            value = decode_value(payload, value_type)
        except ValueError:
            continue
        if value is not None:
            out[column] = value
    return out


_SLOT_TYPES = {
    "keyword": IVT.INDEXED_VALUE_TYPE_KEYWORD, "text": IVT.INDEXED_VALUE_TYPE_TEXT,
    "keyword_list": IVT.INDEXED_VALUE_TYPE_KEYWORD_LIST, "int": IVT.INDEXED_VALUE_TYPE_INT,
    "double": IVT.INDEXED_VALUE_TYPE_DOUBLE, "bool": IVT.INDEXED_VALUE_TYPE_BOOL,
    "datetime": IVT.INDEXED_VALUE_TYPE_DATETIME,
}  # fmt: skip


def custom_types(aliases: Mapping[str, str]) -> dict[str, int]:
    """A namespace's ``custom_search_attribute_aliases`` (slot -> alias) -> alias -> type."""
    from server.persistence.visibility_query import slot_kind

    out: dict[str, int] = {}
    for slot, alias in aliases.items():
        kind = slot_kind(slot)
        if kind is not None:
            out[alias] = _SLOT_TYPES[kind]
    return out


def slot_values(attributes: common.SearchAttributes, aliases: Mapping[str, str]) -> dict[str, Any]:
    """The visibility row's typed attribute columns (``keyword01`` -> value) for a run's search attributes: the
    namespace's custom slots and the predefined attributes that have a column."""
    from server.persistence.schema import PREDEFINED_COLUMNS
    from server.persistence.visibility_query import slot_column

    columns = {alias: slot_column(slot) for slot, alias in aliases.items()}
    types = custom_types(aliases)
    for name, (column, kind) in PREDEFINED_COLUMNS.items():
        columns[name] = column
        types[name] = _SLOT_TYPES[kind]
    return indexed_values(attributes, columns, types)
