"""Workflow updates (reference 2.11): the in-memory registry of a host's in-flight updates and the sans-IO
processing of the protocol messages a workflow task completion carries. Updates that produced events are
also remembered in mutable state (``MutableState.updates``), so idempotency survives restarts."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field

from google.protobuf import any_pb2
from temporalio.api.command.v1 import message_pb2 as command_pb2
from temporalio.api.enums.v1 import failed_cause_pb2 as fc
from temporalio.api.enums.v1 import update_pb2 as update_enums
from temporalio.api.failure.v1 import message_pb2 as failure_pb2
from temporalio.api.history.v1 import message_pb2 as history_pb2
from temporalio.api.protocol.v1 import message_pb2 as protocol_pb2
from temporalio.api.update.v1 import message_pb2 as update_pb2

from .activities import CommandError
from .mutable_state import MutableState

STAGE = update_enums.UpdateWorkflowExecutionLifecycleStage
ADMITTED = STAGE.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ADMITTED
ACCEPTED = STAGE.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ACCEPTED
COMPLETED = STAGE.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_COMPLETED
BAD_MESSAGE = fc.WORKFLOW_TASK_FAILED_CAUSE_BAD_UPDATE_WORKFLOW_EXECUTION_MESSAGE
NOT_PROCESSED = (
    "Workflow Update is rejected because it wasn't processed by worker. "
    "Probably, Workflow Update is not supported by the worker."
)


@dataclass
class UpdateEntry:
    request: update_pb2.Request
    stage: int = ADMITTED
    sent_stamp: int = 0  # stamp of the WFT that last delivered it (0 = not delivered since admission)
    outcome: update_pb2.Outcome | None = None


@dataclass
class UpdateEffect:
    """What a committed completion did to an update (applied to the registry after the commit)."""

    update_id: str
    stage: int
    outcome: update_pb2.Outcome | None = None


class UpdateRegistry:
    """Per run: update id -> entry. In memory only; a lost host loses admitted-but-unaccepted updates
    (their callers time out and retry), as with the real server."""

    def __init__(self) -> None:
        self._runs: dict[Hashable, dict[str, UpdateEntry]] = {}

    def get(self, run: Hashable, update_id: str) -> UpdateEntry | None:
        return self._runs.get(run, {}).get(update_id)

    def admit(self, run: Hashable, request: update_pb2.Request, stage: int = ADMITTED) -> UpdateEntry:
        entry = UpdateEntry(request=request, stage=stage)
        self._runs.setdefault(run, {})[request.meta.update_id] = entry
        return entry

    def remove(self, run: Hashable, update_id: str) -> None:
        ups = self._runs.get(run)
        if ups is not None:
            ups.pop(update_id, None)
            if not ups:
                del self._runs[run]

    def drop_run(self, run: Hashable) -> None:
        self._runs.pop(run, None)

    def deliverable(self, run: Hashable) -> list[UpdateEntry]:
        return [e for e in self._runs.get(run, {}).values() if e.stage == ADMITTED]

    def has_undelivered(self, run: Hashable) -> bool:
        return any(e.stage == ADMITTED and e.sent_stamp == 0 for e in self._runs.get(run, {}).values())

    def requests(self, run: Hashable) -> dict[str, update_pb2.Request]:
        return {uid: e.request for uid, e in self._runs.get(run, {}).items()}

    def apply(self, run: Hashable, effects: list[UpdateEffect], wft_stamp: int) -> None:
        for eff in effects:
            entry = self.get(run, eff.update_id)
            if entry is None:
                continue
            entry.stage = max(entry.stage, eff.stage)
            if eff.outcome is not None:
                entry.outcome = eff.outcome
                self.remove(run, eff.update_id)  # waiters keep their reference
        # Delivered on this WFT but neither accepted nor rejected: the server rejects it (2.11).
        for uid, entry in list(self._runs.get(run, {}).items()):
            if entry.stage == ADMITTED and entry.sent_stamp == wft_stamp and wft_stamp:
                entry.outcome = update_pb2.Outcome(
                    failure=failure_pb2.Failure(message=NOT_PROCESSED, application_failure_info=failure_pb2.ApplicationFailureInfo())
                )
                entry.stage = COMPLETED
                self.remove(run, uid)


def request_messages(entries: list[UpdateEntry], started_event_id: int, stamp: int) -> list[protocol_pb2.Message]:
    """Messages of a WFT poll response: one Request per deliverable update, sequenced before WFT started."""
    out = []
    for e in entries:
        body = any_pb2.Any()
        body.Pack(e.request)
        uid = e.request.meta.update_id
        out.append(
            protocol_pb2.Message(id=f"{uid}/request", protocol_instance_id=uid, event_id=started_event_id - 1, body=body)
        )
        e.sent_stamp = stamp
    return out


@dataclass
class ProtocolContext:
    """The protocol messages of one completion; ``requests`` are the registry's known update requests."""

    messages: dict[str, protocol_pb2.Message]
    requests: dict[str, update_pb2.Request] = field(default_factory=dict)
    consumed: set[str] = field(default_factory=set)
    effects: list[UpdateEffect] = field(default_factory=list)

    @classmethod
    def of(cls, messages: list[protocol_pb2.Message], requests: dict[str, update_pb2.Request]) -> ProtocolContext:
        return cls({m.id: m for m in messages}, requests)

    def command(
        self, ms: MutableState, a: command_pb2.ProtocolMessageCommandAttributes, completed_id: int
    ) -> history_pb2.HistoryEvent | None:
        msg = self.messages.get(a.message_id)
        if msg is None or a.message_id in self.consumed:
            raise CommandError(BAD_MESSAGE, f"ProtocolMessageCommand references unknown message {a.message_id!r}.")
        return self._process(ms, msg, completed_id)

    def remaining(self, ms: MutableState, completed_id: int) -> None:
        for mid, msg in self.messages.items():
            if mid not in self.consumed and ms.running:
                self._process(ms, msg, completed_id)

    def _process(self, ms: MutableState, msg: protocol_pb2.Message, completed_id: int) -> history_pb2.HistoryEvent | None:
        self.consumed.add(msg.id)
        body = msg.body
        r = ms.record
        if body.Is(update_pb2.Acceptance.DESCRIPTOR):
            acc = update_pb2.Acceptance()
            body.Unpack(acc)
            uid = msg.protocol_instance_id or acc.accepted_request.meta.update_id
            known = r.updates.get(uid)
            if known is not None and known.accepted_event_id:
                return None  # already accepted (a repeated message)
            durable = known is not None and known.admitted_event_id > 0
            # A durable request's UpdateAccepted carries no request: its UpdateAdmitted event does (as Temporal).
            request = None if durable else (
                acc.accepted_request if acc.HasField("accepted_request") else self.requests.get(uid)
            )
            if request is None and not durable:
                raise CommandError(BAD_MESSAGE, f"Acceptance of unknown update {uid!r}.")
            ev = ms.append(
                history_pb2.WorkflowExecutionUpdateAcceptedEventAttributes(
                    protocol_instance_id=uid,
                    accepted_request_message_id=acc.accepted_request_message_id,
                    accepted_request_sequencing_event_id=acc.accepted_request_sequencing_event_id,
                    accepted_request=request,
                )
            )
            r.updates[uid].accepted_event_id = ev.event_id
            self.effects.append(UpdateEffect(uid, ACCEPTED))
            return ev
        if body.Is(update_pb2.Response.DESCRIPTOR):
            resp = update_pb2.Response()
            body.Unpack(resp)
            uid = resp.meta.update_id or msg.protocol_instance_id
            info = r.updates.get(uid)
            if info is None or not info.accepted_event_id:
                raise CommandError(BAD_MESSAGE, f"Response for update {uid!r} which was not accepted.")
            if info.completed_event_id:
                return None
            ev = ms.append(
                history_pb2.WorkflowExecutionUpdateCompletedEventAttributes(
                    meta=resp.meta, accepted_event_id=info.accepted_event_id, outcome=resp.outcome
                )
            )
            info.completed_event_id = ev.event_id
            self.effects.append(UpdateEffect(uid, COMPLETED, resp.outcome))
            return ev
        if body.Is(update_pb2.Rejection.DESCRIPTOR):
            rej = update_pb2.Rejection()
            body.Unpack(rej)
            uid = msg.protocol_instance_id or rej.rejected_request.meta.update_id
            known = r.updates.get(uid)
            if known is not None and known.admitted_event_id and not known.accepted_event_id:
                del r.updates[uid]  # a rejected durable request leaves no entry, as Temporal removes it
            self.effects.append(UpdateEffect(uid, COMPLETED, update_pb2.Outcome(failure=rej.failure)))
            return None
        raise CommandError(BAD_MESSAGE, f"Unsupported protocol message body {body.type_url!r}.")
