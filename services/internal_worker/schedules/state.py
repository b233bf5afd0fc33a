"""The scheduler core's own state as it crosses a continue-as-new (StartScheduleArgs.state): a small,
versioned JSON document. Schedule, info and conflict token travel beside it as protos."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.api.common.v1 import message_pb2 as common
from temporalio.api.failure.v1 import message_pb2 as failure_pb

from .buffer import BufferedStart

STATE_VERSION = 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utc(t: datetime) -> datetime:
    if t.tzinfo is None:
        raise ValueError("scheduler times must be timezone-aware")
    return t.astimezone(UTC)


def ts_time(ts: Any) -> datetime:
    """A protobuf Timestamp as an aware UTC datetime (microseconds)."""
    return _EPOCH + timedelta(seconds=ts.seconds, microseconds=ts.nanos // 1000)


def copy_proto(message: Any, cls: Any) -> Any:
    out = cls()
    out.CopyFrom(message)
    return out


@dataclass
class Backfill:
    start: datetime  # exclusive: the next time processed is strictly after it
    end: datetime  # inclusive
    overlap_policy: int


@dataclass
class InFlight:
    """A StartWorkflow handed to the wrapper whose outcome has not come back yet."""

    start: BufferedStart
    workflow_id: str
    policy: int  # resolved
    non_overlapping: bool


@dataclass
class CoreState:
    cursor: datetime  # the actual time of the last scheduled time processed (or skipped over while paused)
    buffer: list[BufferedStart] = field(default_factory=list)
    backfills: list[Backfill] = field(default_factory=list)
    in_flight: dict[str, InFlight] = field(default_factory=dict)  # by request id
    last_completion_result: common.Payloads | None = None
    continued_failure: failure_pb.Failure | None = None
    need_refresh: bool = False
    awaiting_refresh: bool = False
    seq: int = 0  # manual starts so far: part of their request ids

    def dump(self) -> bytes:
        doc = {
            "v": STATE_VERSION,
            "cursor": self.cursor.isoformat(),
            "buffer": [_start_doc(b) for b in self.buffer],
            "backfills": [
                {"s": b.start.isoformat(), "e": b.end.isoformat(), "p": b.overlap_policy} for b in self.backfills
            ],
            "in_flight": [
                {"r": rid, "s": _start_doc(f.start), "w": f.workflow_id, "p": f.policy, "o": f.non_overlapping}
                for rid, f in self.in_flight.items()
            ],
            "last_result": _b64(self.last_completion_result),
            "failure": _b64(self.continued_failure),
            "need_refresh": self.need_refresh,
            "awaiting_refresh": self.awaiting_refresh,
            "seq": self.seq,
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def load(cls, raw: bytes) -> CoreState:
        doc = json.loads(raw)
        if doc.get("v") != STATE_VERSION:
            raise ValueError(f"unknown scheduler state version {doc.get('v')!r}")
        when = datetime.fromisoformat
        return cls(
            cursor=when(doc["cursor"]),
            buffer=[_start(d) for d in doc["buffer"]],
            backfills=[Backfill(when(d["s"]), when(d["e"]), d["p"]) for d in doc["backfills"]],
            in_flight={d["r"]: InFlight(_start(d["s"]), d["w"], d["p"], d["o"]) for d in doc["in_flight"]},
            last_completion_result=_unb64(doc["last_result"], common.Payloads),
            continued_failure=_unb64(doc["failure"], failure_pb.Failure),
            need_refresh=doc["need_refresh"],
            awaiting_refresh=doc["awaiting_refresh"],
            seq=doc["seq"],
        )


def _start_doc(b: BufferedStart) -> dict[str, Any]:
    return {"n": b.nominal.isoformat(), "a": b.actual.isoformat(), "p": b.overlap_policy, "m": b.manual}


def _start(d: dict[str, Any]) -> BufferedStart:
    return BufferedStart(datetime.fromisoformat(d["n"]), datetime.fromisoformat(d["a"]), d["p"], d["m"])


def _b64(message: Any) -> str | None:
    return None if message is None else base64.b64encode(message.SerializeToString()).decode()


def _unb64(text: str | None, cls: Any) -> Any:
    if text is None:
        return None
    out = cls()
    out.ParseFromString(base64.b64decode(text))
    return out
