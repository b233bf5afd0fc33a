"""Signal, update and query handling for a workflow run (mixed into WorkflowInstance).

Signal and update handlers run as workflow tasks. Updates: the validator runs first (live only); a rejection
is a protocol message without a command, an acceptance and the final response are protocol messages each
referenced by a PROTOCOL_MESSAGE command, which is what history records and replay matches.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from temporalio.api.command.v1 import message_pb2 as command_pb
from temporalio.api.common.v1 import message_pb2 as common_pb
from temporalio.api.enums.v1 import command_type_pb2 as ct
from temporalio.api.protocol.v1 import message_pb2 as protocol_pb
from temporalio.api.update.v1 import message_pb2 as update_pb

from .. import exceptions as exc
from .. import workflow as wf
from ..failure import to_failure
from ._loop import HandlerExecution, WorkflowLoop

logger = logging.getLogger("durata.worker")
C = ct.CommandType


class HandlerOps(WorkflowLoop):
    def _apply_signal(self, name: str, payloads: list[common_pb.Payload]) -> None:
        h = self.defn.signals.get(name) or self.defn.signals.get("*")
        if h is None:
            logger.warning("Workflow %s has no handler for signal %r; dropped (known: %s)", self.defn.name, name,
                           sorted(self.defn.signals))
            return
        if h.name is None:
            args: list[Any] = [name, payloads]
        else:
            try:
                args = self.converter.decode(payloads, h.arg_types)
            except Exception as err:
                logger.warning("Could not decode signal %r arguments: %s", name, err)
                return
        self._spawn_handler(h, args, on_failure=self._fail_from_handler, name=name)

    def _spawn_handler(self, h: wf._Handler, args: list[Any], on_failure: Callable[[BaseException], None],
                       on_success: Callable[[Any], None] | None = None, *, kind: str = "signal", name: str = "",
                       update_id: str | None = None) -> None:
        obj = self.wf_instance_obj
        execution = HandlerExecution(kind, name or h.name or "", h.unfinished_policy, update_id)

        async def run() -> None:
            self._handler_seq += 1
            key = self._handler_seq
            self._handlers[key] = execution
            try:
                r = h.fn(obj, *args)
                if asyncio.iscoroutine(r):
                    r = await r
            except BaseException as err:  # noqa: BLE001 - routed to failure handling
                on_failure(err)
                return
            finally:
                self._handlers.pop(key, None)
            if on_success:
                on_success(r)

        self.create_task(run())

    def _warn_unfinished_handlers(self) -> None:
        """Like temporalio (HandlerUnfinishedPolicy.WARN_AND_ABANDON): the run finished with handlers running."""
        if self._warned_unfinished:
            return
        warnable = [e for e in self._handlers.values() if e.policy == wf.HandlerUnfinishedPolicy.WARN_AND_ABANDON]
        updates = [{"name": e.name, "id": e.update_id} for e in warnable if e.kind == "update"]
        signals = collections.Counter(e.name for e in warnable if e.kind == "signal")
        if not updates and not signals:
            return
        self._warned_unfinished = True
        where = f"Workflow {self.defn.name} (workflow_id={self.workflow_id!r}, run_id={self.run_id!r})"
        if updates:
            msg = _UNFINISHED_UPDATES.format(where=where) + json.dumps(updates)
            logger.warning(msg)
            warnings.warn(wf.UnfinishedUpdateHandlersWarning(msg), stacklevel=1)
        if signals:
            counts = [{"name": n, "count": c} for n, c in signals.most_common()]
            msg = _UNFINISHED_SIGNALS.format(where=where) + json.dumps(counts)
            logger.warning(msg)
            warnings.warn(wf.UnfinishedSignalHandlersWarning(msg), stacklevel=1)

    def _fail_from_handler(self, err: BaseException) -> None:
        if isinstance(err, exc.FailureError) and not self._closed:
            self._closed = True
            c = command_pb.Command(command_type=C.COMMAND_TYPE_FAIL_WORKFLOW_EXECUTION)
            c.fail_workflow_execution_command_attributes.failure.CopyFrom(to_failure(err, self.converter))
            self._emit(c)
        elif not isinstance(err, asyncio.CancelledError | exc.FailureError):
            self.task_failure = err

    # ---------------------------------------------------------------- updates

    def _apply_update(self, req: update_pb.Request, msg_id: str, seq_id: int, run_validator: bool) -> None:
        uid = req.meta.update_id
        h = self.defn.updates.get(req.input.name) or self.defn.updates.get("*")
        if h is None:
            self._reject(req, msg_id, seq_id, exc.ApplicationError(
                f"Update handler for '{req.input.name}' expected but not found, known updates: "
                f"[{' '.join(sorted(self.defn.updates))}]"))
            return
        try:
            args = (self.converter.decode(req.input.args.payloads, h.arg_types) if h.name is not None
                    else [req.input.name, list(req.input.args.payloads)])
            if run_validator and h.validator is not None:
                h.validator(self.wf_instance_obj, *args)
        except Exception as err:
            self._reject(req, msg_id, seq_id, err)
            return
        acc = update_pb.Acceptance(accepted_request_message_id=msg_id, accepted_request_sequencing_event_id=seq_id,
                                   accepted_request=req)
        self._message(uid, f"{uid}/accept", acc)

        def done(outcome: update_pb.Outcome) -> None:
            self._message(uid, f"{uid}/complete", update_pb.Response(meta=req.meta, outcome=outcome))

        def ok(result: Any) -> None:
            try:
                done(update_pb.Outcome(success=self.converter.encode_payloads([result])))
            except Exception as err:
                done(update_pb.Outcome(failure=to_failure(exc.ApplicationError(str(err)), self.converter)))

        def failed(err: BaseException) -> None:
            if isinstance(err, exc.FailureError | asyncio.CancelledError):
                done(update_pb.Outcome(failure=to_failure(err, self.converter)))
            else:
                self.task_failure = err

        self._spawn_handler(h, args, on_failure=failed, on_success=ok, kind="update", name=req.input.name,
                            update_id=uid)

    def _reject(self, req: update_pb.Request, msg_id: str, seq_id: int, err: BaseException) -> None:
        if self._replaying:
            return
        rej = update_pb.Rejection(rejected_request_message_id=msg_id, rejected_request_sequencing_event_id=seq_id,
                                  rejected_request=req, failure=to_failure(err, self.converter))
        self.messages.append(_message(req.meta.update_id, f"{req.meta.update_id}/reject", rej))

    def _message(self, update_id: str, msg_id: str, body: Any) -> None:
        if not self._replaying:
            self.messages.append(_message(update_id, msg_id, body))
        c = command_pb.Command(command_type=C.COMMAND_TYPE_PROTOCOL_MESSAGE)
        c.protocol_message_command_attributes.message_id = msg_id
        self._emit(c, update_id=update_id)

    # ---------------------------------------------------------------- queries

    def query(self, name: str, payloads: Sequence[common_pb.Payload]) -> common_pb.Payloads:
        """Run a query handler synchronously against current state (must not emit commands)."""
        if name == "__stack_trace":
            return self.converter.encode_payloads([self._stack_trace()])
        if name == "__temporal_workflow_metadata":
            return self.converter.encode_payloads([self._metadata()])
        h = self.defn.queries.get(name) or self.defn.queries.get("*")
        if h is None:
            raise exc.ApplicationError(f"Query handler for '{name}' expected but not found, known queries: "
                                       f"[{' '.join(sorted(self.defn.queries))}]")
        args = self.converter.decode(payloads, h.arg_types) if h.name else [name, list(payloads)]
        before = len(self._unmatched)
        with self.running_workflow_code():
            result = h.fn(self.wf_instance_obj, *args)
        if len(self._unmatched) != before:
            raise RuntimeError("Query handlers must not start activities, timers or other commands")
        return self.converter.encode_payloads([result])

    def _metadata(self) -> Any:
        """Handler listing used by the CLI/UI (temporal.api.sdk.v1.WorkflowMetadata)."""
        from temporalio.api.sdk.v1 import workflow_metadata_pb2 as md

        d = md.WorkflowDefinition(type=self.defn.name)
        for target, handlers in ((d.query_definitions, self.defn.queries), (d.signal_definitions, self.defn.signals),
                                 (d.update_definitions, self.defn.updates)):
            for name, h in sorted(handlers.items()):
                target.append(md.WorkflowInteractionDefinition(name="" if h.name is None else name,
                                                               description=(h.fn.__doc__ or "").strip()))
        return md.WorkflowMetadata(definition=d)

    def _stack_trace(self) -> str:
        """Where each pending workflow coroutine is suspended (follows the await chain)."""
        out = []
        for t in self._tasks:
            if t.done():
                continue
            lines = []
            coro: Any = t.get_coro()
            while coro is not None:
                frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
                if frame is None:
                    break
                lines.append(f'  File "{frame.f_code.co_filename}", line {frame.f_lineno}, in {frame.f_code.co_name}')
                coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
            out.append(f"{t.get_name()}:\n" + "\n".join(lines))
        return "\n\n".join(out)


_UNFINISHED_UPDATES = (
    "[TMPRL1102] {where} finished while update handlers are still running. This may have interrupted work that "
    "the update handler was doing, and the client that sent the update will receive a 'workflow execution already "
    "completed' RPCError instead of the update result. You can wait for all update and signal handlers to complete "
    "by using `await workflow.wait_condition(lambda: workflow.all_handlers_finished())`. Alternatively, if both you "
    "and the clients sending the update are okay with interrupting running handlers when the workflow finishes, "
    "and causing clients to receive errors, then you can disable this warning via the update handler decorator: "
    "`@workflow.update(unfinished_policy=workflow.HandlerUnfinishedPolicy.ABANDON)`. The following updates were "
    "unfinished (and warnings were not disabled for their handler): "
)
_UNFINISHED_SIGNALS = (
    "[TMPRL1102] {where} finished while signal handlers are still running. This may have interrupted work that "
    "the signal handler was doing. You can wait for all update and signal handlers to complete by using "
    "`await workflow.wait_condition(lambda: workflow.all_handlers_finished())`. Alternatively, if both you and the "
    "clients sending the signal are okay with interrupting running handlers when the workflow finishes, then you "
    "can disable this warning via the signal handler decorator: "
    "`@workflow.signal(unfinished_policy=workflow.HandlerUnfinishedPolicy.ABANDON)`. The following signals were "
    "unfinished (and warnings were not disabled for their handler): "
)


def _message(update_id: str, msg_id: str, body: Any) -> protocol_pb.Message:
    m = protocol_pb.Message(id=msg_id, protocol_instance_id=update_id)
    m.body.Pack(body)
    return m
