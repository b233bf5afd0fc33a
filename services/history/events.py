"""Building history events: one constructor for every event type, keyed by its attributes message."""

from __future__ import annotations

from datetime import datetime

from google.protobuf.message import Message
from temporalio.api.enums.v1 import event_type_pb2
from temporalio.api.history.v1 import message_pb2 as history_pb2

HistoryEvent = history_pb2.HistoryEvent

# Attributes message full name -> (oneof field name, EventType value).
_ATTR_FIELDS: dict[str, tuple[str, int]] = {}
for _f in HistoryEvent.DESCRIPTOR.oneofs_by_name["attributes"].fields:
    _type = event_type_pb2.EventType.Value("EVENT_TYPE_" + _f.name[: -len("_event_attributes")].upper())
    assert _f.message_type is not None
    _ATTR_FIELDS[_f.message_type.full_name] = (_f.name, _type)


def make_event(attributes: Message, event_time: datetime, event_id: int = 0) -> history_pb2.HistoryEvent:
    """An event whose event_type always matches its attributes oneof (sdk-core checks both)."""
    field_name, event_type = _ATTR_FIELDS[attributes.DESCRIPTOR.full_name]
    ev = HistoryEvent(event_id=event_id, event_type=event_type)  # type: ignore[arg-type]
    ev.event_time.FromDatetime(event_time)
    getattr(ev, field_name).CopyFrom(attributes)
    return ev


def attributes_of(event: history_pb2.HistoryEvent) -> Message:
    which = event.WhichOneof("attributes")
    return getattr(event, which) if which else None  # type: ignore[return-value]


def decode_batch(data: bytes) -> list[history_pb2.HistoryEvent]:
    h = history_pb2.History()
    h.ParseFromString(data)
    return list(h.events)


def encode_batch(events: list[history_pb2.HistoryEvent]) -> bytes:
    return history_pb2.History(events=events).SerializeToString()


CLOSE_EVENT_TYPES = frozenset(
    {
        event_type_pb2.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
        event_type_pb2.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
        event_type_pb2.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
        event_type_pb2.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
        event_type_pb2.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
        event_type_pb2.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
    }
)
