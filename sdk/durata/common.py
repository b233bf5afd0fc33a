"""Shared value types (retry policy, id policies) mirroring temporalio.common's public names."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta
from enum import IntEnum
from typing import Any, ClassVar

from temporalio.api.common.v1 import message_pb2 as common_pb
from temporalio.api.enums.v1 import workflow_pb2 as wf_enums


def td_to_proto(td: timedelta | None, target: Any) -> None:
    """Copy a timedelta into a google.protobuf.Duration field (None leaves it unset)."""
    if td is not None:
        target.FromTimedelta(td)


def proto_to_td(d: Any) -> timedelta | None:
    """Unset/zero durations mean "no value" in Temporal's API."""
    if d is None or (d.seconds == 0 and d.nanos == 0):
        return None
    return d.ToTimedelta()


@dataclasses.dataclass
class RetryPolicy:
    """Retry policy for activities and workflows (same fields as temporalio.common.RetryPolicy)."""

    initial_interval: timedelta = timedelta(seconds=1)
    backoff_coefficient: float = 2.0
    maximum_interval: timedelta | None = None
    maximum_attempts: int = 0
    non_retryable_error_types: list[str] | None = None

    def apply_to_proto(self, proto: common_pb.RetryPolicy) -> None:
        proto.initial_interval.FromTimedelta(self.initial_interval)
        proto.backoff_coefficient = self.backoff_coefficient
        if self.maximum_interval is not None:
            proto.maximum_interval.FromTimedelta(self.maximum_interval)
        proto.maximum_attempts = self.maximum_attempts
        if self.non_retryable_error_types:
            proto.non_retryable_error_types.extend(self.non_retryable_error_types)

    def to_proto(self) -> common_pb.RetryPolicy:
        p = common_pb.RetryPolicy()
        self.apply_to_proto(p)
        return p

    @staticmethod
    def from_proto(proto: common_pb.RetryPolicy) -> RetryPolicy:
        return RetryPolicy(
            initial_interval=proto_to_td(proto.initial_interval) or timedelta(seconds=1),
            backoff_coefficient=proto.backoff_coefficient or 2.0,
            maximum_interval=proto_to_td(proto.maximum_interval),
            maximum_attempts=proto.maximum_attempts,
            non_retryable_error_types=list(proto.non_retryable_error_types) or None,
        )


class WorkflowIDReusePolicy(IntEnum):
    """How a closed run with the same id affects a new start."""

    ALLOW_DUPLICATE = wf_enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE
    ALLOW_DUPLICATE_FAILED_ONLY = wf_enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY
    REJECT_DUPLICATE = wf_enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE
    TERMINATE_IF_RUNNING = wf_enums.WORKFLOW_ID_REUSE_POLICY_TERMINATE_IF_RUNNING


class WorkflowIDConflictPolicy(IntEnum):
    """How a running workflow with the same id affects a new start."""

    UNSPECIFIED = wf_enums.WORKFLOW_ID_CONFLICT_POLICY_UNSPECIFIED
    FAIL = wf_enums.WORKFLOW_ID_CONFLICT_POLICY_FAIL
    USE_EXISTING = wf_enums.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING
    TERMINATE_EXISTING = wf_enums.WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING


class QueryRejectCondition(IntEnum):
    NONE = 1
    NOT_OPEN = 2
    NOT_COMPLETED_CLEANLY = 3


class SearchAttributeIndexedValueType(IntEnum):
    TEXT = 1
    KEYWORD = 2
    INT = 3
    DOUBLE = 4
    BOOL = 5
    DATETIME = 6
    KEYWORD_LIST = 7


_SA_TYPE_NAMES = {1: "Text", 2: "Keyword", 3: "Int", 4: "Double", 5: "Bool", 6: "Datetime", 7: "KeywordList"}


@dataclasses.dataclass(frozen=True)
class SearchAttributeKey:
    """Typed search attribute name (temporalio.common.SearchAttributeKey)."""

    name: str
    indexed_value_type: SearchAttributeIndexedValueType

    @staticmethod
    def for_text(name: str) -> SearchAttributeKey:
        return SearchAttributeKey(name, SearchAttributeIndexedValueType.TEXT)

    @staticmethod
    def for_keyword(name: str) -> SearchAttributeKey:
        return SearchAttributeKey(name, SearchAttributeIndexedValueType.KEYWORD)

    @staticmethod
    def for_int(name: str) -> SearchAttributeKey:
        return SearchAttributeKey(name, SearchAttributeIndexedValueType.INT)

    @staticmethod
    def for_float(name: str) -> SearchAttributeKey:
        return SearchAttributeKey(name, SearchAttributeIndexedValueType.DOUBLE)

    @staticmethod
    def for_bool(name: str) -> SearchAttributeKey:
        return SearchAttributeKey(name, SearchAttributeIndexedValueType.BOOL)

    @staticmethod
    def for_datetime(name: str) -> SearchAttributeKey:
        return SearchAttributeKey(name, SearchAttributeIndexedValueType.DATETIME)

    @staticmethod
    def for_keyword_list(name: str) -> SearchAttributeKey:
        return SearchAttributeKey(name, SearchAttributeIndexedValueType.KEYWORD_LIST)

    def value_set(self, value: Any) -> SearchAttributeUpdate:
        return SearchAttributeUpdate(self, value)

    def value_unset(self) -> SearchAttributeUpdate:
        return SearchAttributeUpdate(self, None)


@dataclasses.dataclass(frozen=True)
class SearchAttributePair:
    key: SearchAttributeKey
    value: Any


@dataclasses.dataclass(frozen=True)
class SearchAttributeUpdate:
    key: SearchAttributeKey
    value: Any


@dataclasses.dataclass(frozen=True)
class TypedSearchAttributes:
    """Collection of typed search attributes (temporalio.common.TypedSearchAttributes)."""

    search_attributes: tuple[SearchAttributePair, ...] | list[SearchAttributePair] = ()

    empty: ClassVar[TypedSearchAttributes]

    def get(self, key: SearchAttributeKey, default: Any = None) -> Any:
        for p in self.search_attributes:
            if p.key.name == key.name:
                return p.value
        return default

    def __getitem__(self, key: SearchAttributeKey) -> Any:
        for p in self.search_attributes:
            if p.key.name == key.name:
                return p.value
        raise KeyError(key.name)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, SearchAttributeKey) and any(p.key.name == key.name for p in self.search_attributes)

    def __len__(self) -> int:
        return len(self.search_attributes)


TypedSearchAttributes.empty = TypedSearchAttributes()


def _sa_payload(value: Any, type_id: int | None) -> common_pb.Payload:
    p = common_pb.Payload(metadata={"encoding": b"json/plain"})
    if type_id:
        p.metadata["type"] = _SA_TYPE_NAMES[type_id].encode()
    if value is None or value == []:
        p.data = b"null"
    else:
        if isinstance(value, datetime):
            value = value.isoformat()
        p.data = json.dumps(value, separators=(",", ":")).encode()
    return p


def encode_search_attributes(attrs: Any) -> common_pb.SearchAttributes:
    """Encode typed attributes/updates (with type metadata) or a legacy ``{name: [values]}`` mapping."""
    out = common_pb.SearchAttributes()
    if isinstance(attrs, TypedSearchAttributes):
        attrs = list(attrs.search_attributes)
    if isinstance(attrs, list | tuple):
        for item in attrs:
            value = list(item.value) if isinstance(item.value, list | tuple) else item.value
            out.indexed_fields[item.key.name].CopyFrom(_sa_payload(value, int(item.key.indexed_value_type)))
        return out
    for name, value in dict(attrs).items():
        if isinstance(value, list | tuple) and len(value) == 1:
            value = value[0]
        out.indexed_fields[name].CopyFrom(_sa_payload(value, None))
    return out


def decode_search_attributes(fields: Any) -> TypedSearchAttributes:
    """Decode indexed fields whose payload carries a known ``type`` (as the official SDK does)."""
    by_name = {v: k for k, v in _SA_TYPE_NAMES.items()}
    pairs = []
    for name, p in fields.items():
        t = by_name.get(p.metadata.get("type", b"").decode())
        if t is None or not p.data:
            continue
        v = json.loads(p.data)
        if v is None:
            continue
        if t == SearchAttributeIndexedValueType.DATETIME and isinstance(v, str):
            v = datetime.fromisoformat(v.replace("Z", "+00:00"))
        elif isinstance(v, list) and t != SearchAttributeIndexedValueType.KEYWORD_LIST and len(v) == 1:
            v = v[0]
        pairs.append(SearchAttributePair(SearchAttributeKey(name, SearchAttributeIndexedValueType(t)), v))
    return TypedSearchAttributes(pairs)
