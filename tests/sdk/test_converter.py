"""Payload encodings and Failure mapping (no server needed)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pydantic
from durata.converter import DataConverter
from durata.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    RetryState,
    TimeoutError,
    TimeoutType,
)
from durata.failure import from_failure, to_failure
from temporalio.api.common.v1 import message_pb2 as common_pb


@dataclasses.dataclass
class Inner:
    n: int


@dataclasses.dataclass
class Outer:
    name: str
    inner: Inner
    items: list[Inner]
    opt: Inner | None = None


class Model(pydantic.BaseModel):
    id: int
    tags: list[str]
    inner: Inner | None = None


def _enc(p: common_pb.Payload) -> str:
    return p.metadata["encoding"].decode()


def test_encodings_round_trip():
    conv = DataConverter.default
    values = [None, b"\x00raw", {"a": 1}, Outer("x", Inner(1), [Inner(2)]), Model(id=1, tags=["t"]),
              common_pb.WorkflowExecution(workflow_id="w", run_id="r")]
    payloads = conv.encode(values)
    assert [_enc(p) for p in payloads] == ["binary/null", "binary/plain", "json/plain", "json/plain", "json/plain",
                                           "json/protobuf"]
    assert payloads[5].metadata["messageType"] == b"temporal.api.common.v1.WorkflowExecution"
    out = conv.decode(payloads, [None, bytes, dict, Outer, Model, common_pb.WorkflowExecution])
    assert out == values
    # Without a type hint protobuf payloads are resolved from messageType.
    assert conv.decode([payloads[5]])[0] == values[5]
    assert payloads[3].data == b'{"inner":{"n":1},"items":[{"n":2}],"name":"x","opt":null}'


def test_failure_mapping_round_trip():
    app = ApplicationError("bad", {"d": 1}, type="MyType", non_retryable=True, next_retry_delay=timedelta(seconds=3))
    f = to_failure(app)
    assert f.application_failure_info.type == "MyType" and f.application_failure_info.non_retryable
    back = from_failure(f)
    assert isinstance(back, ApplicationError) and back.details == ({"d": 1},)
    assert back.next_retry_delay == timedelta(seconds=3) and back.message == "bad"

    err = ActivityError("Activity task failed", scheduled_event_id=5, started_event_id=6, identity="i",
                        activity_type="a", activity_id="1", retry_state=RetryState.TIMEOUT)
    err.__cause__ = TimeoutError("t", type=TimeoutType.HEARTBEAT, last_heartbeat_details=[3])
    back2 = from_failure(to_failure(err))
    assert isinstance(back2, ActivityError) and back2.retry_state == RetryState.TIMEOUT
    assert isinstance(back2.cause, TimeoutError) and back2.cause.type == TimeoutType.HEARTBEAT
    assert back2.cause.last_heartbeat_details == [3]

    plain = from_failure(to_failure(ValueError("v")))
    assert isinstance(plain, ApplicationError) and plain.type == "ValueError" and not plain.non_retryable
    assert isinstance(from_failure(to_failure(CancelledError("c"))), CancelledError)
