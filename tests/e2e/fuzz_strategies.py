"""Hypothesis strategies that build any protobuf request from its descriptor: random field subsets, extreme
numbers, unknown enum values, long and odd strings, out-of-range durations and timestamps, nested messages."""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import strategies as st

F = FieldDescriptor
MAX_DEPTH = 3
# Requests name this namespace (registered by the test) or a bad one; never the canary's.
NAMESPACES = st.sampled_from(["fuzz", "fuzz", "fuzz", "", "no-such-namespace", "x" * 1000, "fuzz\x00"])

_STRINGS = st.one_of(
    st.sampled_from(["", "fuzz", "x" * 300, "y" * 10_000, "/_sys/queue", "💥\u202e", " ", "00000000-0000-0000-0000-000000000000",
                     "WorkflowId = 'x'", "((((", "ExecutionStatus = 999"]),
    st.text(max_size=24),
)


def _ints(lo: int, hi: int) -> st.SearchStrategy[int]:
    extremes = [v for v in (0, 1, -1, 2**31 - 1, -(2**31), 2**32 - 1, 2**63 - 1, -(2**63), 2**64 - 1) if lo <= v <= hi]
    return st.one_of(st.sampled_from(extremes), st.integers(lo, hi))


_INT_RANGES = {
    F.TYPE_INT32: (-(2**31), 2**31 - 1), F.TYPE_SINT32: (-(2**31), 2**31 - 1), F.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    F.TYPE_INT64: (-(2**63), 2**63 - 1), F.TYPE_SINT64: (-(2**63), 2**63 - 1), F.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    F.TYPE_UINT32: (0, 2**32 - 1), F.TYPE_FIXED32: (0, 2**32 - 1),
    F.TYPE_UINT64: (0, 2**64 - 1), F.TYPE_FIXED64: (0, 2**64 - 1),
}


def _scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    t = field.type
    if t == F.TYPE_STRING:
        return NAMESPACES if field.name == "namespace" else _STRINGS
    if t == F.TYPE_BYTES:
        return st.one_of(st.binary(max_size=48), st.sampled_from([b"", b"\xff" * 16, b"\n\x03abc"]))
    if t == F.TYPE_BOOL:
        return st.booleans()
    if t == F.TYPE_DOUBLE:
        return st.floats(allow_nan=True, allow_infinity=True)
    if t == F.TYPE_FLOAT:
        return st.floats(allow_nan=True, allow_infinity=True, width=32)
    if t == F.TYPE_ENUM:
        known = [v.number for v in field.enum_type.values]
        return st.one_of(st.sampled_from(known), st.integers(-3, 1000))
    if t in _INT_RANGES:
        return _ints(*_INT_RANGES[t])
    raise AssertionError(f"unhandled field type {t} of {field.full_name}")


def _well_known(desc: Descriptor) -> st.SearchStrategy[Message] | None:
    if desc.full_name in ("google.protobuf.Duration", "google.protobuf.Timestamp"):
        cls = GetMessageClass(desc)
        return st.builds(
            lambda s, n: cls(seconds=s, nanos=n),
            _ints(-(2**63), 2**63 - 1),
            st.one_of(st.sampled_from([0, -1, 999_999_999, -999_999_999]), st.integers(-(2**31), 2**31 - 1)),
        )
    return None


def _value(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any] | None:
    if field.type in (F.TYPE_MESSAGE, F.TYPE_GROUP):
        if depth >= MAX_DEPTH:
            return None
        return message(field.message_type, depth + 1)
    return _scalar(field)


def _build(desc: Descriptor, values: dict[str, Any]) -> Message:
    msg = GetMessageClass(desc)()
    for name, value in values.items():
        field = desc.fields_by_name[name]
        target = getattr(msg, name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            val_field = field.message_type.fields_by_name["value"]
            for k, v in value:
                if val_field.message_type is not None:
                    target[k].CopyFrom(v)
                else:
                    target[k] = v
        elif field.is_repeated:
            if field.message_type is not None:
                for item in value:
                    target.add().CopyFrom(item)
            else:
                target.extend(value)
        elif field.message_type is not None:
            target.CopyFrom(value)
        else:
            setattr(msg, name, value)
    return msg


def message(desc: Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
    """Any message of ``desc``: each field present or not, so required-field checks are reached as well."""
    known = _well_known(desc)
    if known is not None:
        return known
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for field in desc.fields:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key = _scalar(field.message_type.fields_by_name["key"])
            value = _value(field.message_type.fields_by_name["value"], depth)
            if value is not None:
                optional[field.name] = st.lists(st.tuples(key, value), max_size=3)
            continue
        value = _value(field, depth)
        if value is None:
            continue
        optional[field.name] = st.lists(value, max_size=3) if field.is_repeated else value
    return st.fixed_dictionaries({}, optional=optional).map(lambda values: _build(desc, values))  # type: ignore[arg-type]


# Workflow ids the test starts in the fuzz namespace, so that patched requests reach real runs, not just NOT_FOUND.
TARGET_WORKFLOW_IDS = ["fuzz-target-1", "fuzz-target-2"]
_REQUIRED = {
    "namespace": "fuzz", "workflow_id": TARGET_WORKFLOW_IDS[0], "signal_name": "sig", "request_id": "",
    "identity": "fuzzer", "query": "", "update_id": "u1", "activity_id": "a1",
}


def _patch(msg: Message, workflow_id: str) -> Message:
    """Fill the fields validation asks for first, keeping every random value, so the rest of the request (sizes,
    durations, policies, enums) reaches the checks behind them and the run-state code in History."""
    import uuid as _uuid

    desc = msg.DESCRIPTOR
    for name, value in _REQUIRED.items():
        field = desc.fields_by_name.get(name)
        if field is None or field.type != F.TYPE_STRING or field.is_repeated:
            continue
        if name == "request_id":
            value = str(_uuid.uuid4())
        elif name == "workflow_id":
            value = workflow_id
        if name in ("namespace", "workflow_id", "request_id") or not getattr(msg, name):
            setattr(msg, name, value)
    for name in ("workflow_execution", "execution"):
        field = desc.fields_by_name.get(name)
        if field is not None and field.message_type is not None and not field.is_repeated:
            getattr(msg, name).workflow_id = workflow_id
            getattr(msg, name).run_id = ""
    for name, inner in (("workflow_type", "name"), ("task_queue", "name")):
        field = desc.fields_by_name.get(name)
        if field is not None and field.message_type is not None and not field.is_repeated:
            sub = getattr(msg, name)
            if not getattr(sub, inner):
                setattr(sub, inner, "fuzz-type" if name == "workflow_type" else "fuzz-queue")
    return msg


def request(desc: Descriptor) -> st.SearchStrategy[Message]:
    """Half raw random messages, half random messages patched to pass the first checks."""
    return st.one_of(
        message(desc),
        st.builds(_patch, message(desc), st.sampled_from([*TARGET_WORKFLOW_IDS, "fuzz-new-id"])),
    )
