"""Saved workflow histories: JSON (CLI/UI ``--output json`` or proto JSON) and binary protobuf."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Sequence
from typing import Any

import google.protobuf.json_format
from temporalio.api.history.v1 import message_pb2 as history_pb

# Older CLI/UI exports use PascalCase enum values ("WorkflowExecutionStarted"); proto JSON wants the full names.
_ENUM_PREFIXES = {
    "eventType": "EVENT_TYPE_", "kind": "TASK_QUEUE_KIND_", "parentClosePolicy": "PARENT_CLOSE_POLICY_",
    "workflowIdReusePolicy": "WORKFLOW_ID_REUSE_POLICY_", "initiator": "CONTINUE_AS_NEW_INITIATOR_",
    "retryState": "RETRY_STATE_", "timeoutType": "TIMEOUT_TYPE_", "indexedValueType": "INDEXED_VALUE_TYPE_",
}


def _fix_enums(node: Any) -> Any:
    if isinstance(node, dict):
        for k, v in node.items():
            prefix = _ENUM_PREFIXES.get(k)
            if prefix and isinstance(v, str) and not v.startswith(prefix):
                node[k] = prefix + re.sub(r"(?<!^)(?=[A-Z])", "_", v).upper()
            else:
                _fix_enums(v)
    elif isinstance(node, list):
        for v in node:
            _fix_enums(v)
    return node


@dataclasses.dataclass
class WorkflowHistory:
    """A workflow's id and its (immutable) history events."""

    workflow_id: str
    events: Sequence[history_pb.HistoryEvent]

    @property
    def run_id(self) -> str:
        return self.events[0].workflow_execution_started_event_attributes.original_execution_run_id

    @staticmethod
    def from_json(workflow_id: str, history: str | dict[str, Any]) -> WorkflowHistory:
        data = json.loads(history) if isinstance(history, str) else json.loads(json.dumps(history))
        proto = google.protobuf.json_format.ParseDict(_fix_enums(data), history_pb.History(), ignore_unknown_fields=True)
        return WorkflowHistory(workflow_id, list(proto.events))

    @staticmethod
    def from_proto(workflow_id: str, data: bytes | history_pb.History) -> WorkflowHistory:
        proto = data if isinstance(data, history_pb.History) else history_pb.History.FromString(data)
        return WorkflowHistory(workflow_id, list(proto.events))

    def to_proto(self) -> history_pb.History:
        return history_pb.History(events=self.events)

    def to_json(self) -> str:
        return google.protobuf.json_format.MessageToJson(self.to_proto())

    def to_json_dict(self) -> dict[str, Any]:
        return google.protobuf.json_format.MessageToDict(self.to_proto())
