"""One workflow run: a deterministic asyncio event loop driven by history events.

The worker hands each workflow task's history to ``process_history``. Events are split into activations
at ``WorkflowTaskStarted`` events; each activation applies the events since the previous one (signals,
activity results, fired timers, ...), then runs ready callbacks until the workflow is blocked. Commands the
workflow produces are kept in order and matched positionally against the command events that follow each
``WorkflowTaskCompleted``; a mismatch is a non-determinism error. Commands of the final (live) activation
are what the worker sends back.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Sequence
from datetime import UTC, timedelta
from random import Random
from typing import Any

from temporalio.api.command.v1 import message_pb2 as command_pb
from temporalio.api.enums.v1 import command_type_pb2 as ct
from temporalio.api.enums.v1 import event_type_pb2 as et
from temporalio.api.history.v1 import message_pb2 as history_pb
from temporalio.api.protocol.v1 import message_pb2 as protocol_pb
from temporalio.api.update.v1 import message_pb2 as update_pb

from .. import exceptions as exc
from .. import workflow as wf
from ..common import decode_search_attributes, encode_search_attributes
from ..converter import DataConverter
from ..failure import from_failure, to_failure
from . import _commands as cmds
from ._handlers import HandlerOps
from ._local import LocalActivity, LocalActivityOps, LocalOutcome, marker_outcome
from ._loop import NondeterminismError, decode_sas
from ._ops import WorkflowOps

E = et.EventType
C = ct.CommandType


class WorkflowInstance(WorkflowOps, LocalActivityOps, HandlerOps):
    """One run: splits history into activations and matches commands with history (see module docstring)."""

    def __init__(self, defn: wf._Definition, namespace: str, workflow_id: str, run_id: str,
                 converter: DataConverter | None = None) -> None:
        super().__init__(defn, namespace, workflow_id, run_id, converter)
        self.pending_local: dict[int, LocalActivity] = {}
        self._local_markers: dict[int, LocalOutcome] = {}

    @classmethod
    def create(cls, defn: wf._Definition, namespace: str, workflow_id: str, run_id: str,
               converter: DataConverter | None = None) -> WorkflowInstance:
        # typeshed declares the AbstractEventLoop surface abstract; at runtime it is a plain class and a workflow
        # loop deliberately leaves I/O, subprocesses and signals unimplemented (as temporalio's does).
        return cls(defn, namespace, workflow_id, run_id, converter)  # type: ignore[abstract]

    # ------------------------------------------------------------ history driving

    def _match(self, ev: history_pb.HistoryEvent) -> None:
        if not self._unmatched:
            if cmds.is_patch_marker(ev) or cmds.is_change_version_upsert(ev):
                return
            raise self._nde(
                f"history event {ev.event_id} is {cmds.describe_event(ev)} but the workflow produced no command "
                f"(expected {cmds.describe_event(ev)})"
            )
        c = self._unmatched[0]
        if not cmds.matches(c.proto, c.update_id, ev):
            if cmds.is_patch_marker(ev) or cmds.is_change_version_upsert(ev):
                return  # patch removed after deprecate_patch (or written by another SDK version): allowed
            raise self._nde(
                f"history event {ev.event_id} expected {cmds.describe_event(ev)} but the workflow produced "
                f"{cmds.describe_command(c.proto, c.update_id)}"
            )
        self._unmatched.popleft()
        c.event_id = ev.event_id
        if c.on_matched:
            c.on_matched(ev)

    def process_history(self, events: Sequence[history_pb.HistoryEvent], started_event_id: int,
                        updates: Sequence[protocol_pb.Message] = ()) -> list[command_pb.Command] | None:
        """Apply new events; returns the commands of the live activation (None if there was none)."""
        jobs: list[history_pb.HistoryEvent] = []
        result: list[command_pb.Command] | None = None
        events = [e for e in events if e.event_id > self.last_event_id]
        for i, ev in enumerate(events):
            t = ev.event_type
            self.last_event_id = ev.event_id
            if t in cmds.COMMAND_EVENT_TYPES:
                self._match(ev)
                continue
            if self._after_completed and t not in _INTERLEAVED:
                self._after_completed = False
                if self._unmatched:
                    c = self._unmatched[0]
                    raise self._nde(
                        f"the workflow produced {cmds.describe_command(c.proto, c.update_id)} but history has no "
                        f"matching event (history event {ev.event_id} is {cmds.event_type_name(t)})"
                    )
            if t == E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
                self._after_completed = True
            if t == E.EVENT_TYPE_WORKFLOW_TASK_STARTED:
                nxt = events[i + 1] if i + 1 < len(events) else None
                replay = nxt is not None and nxt.event_type == E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
                if not replay and ev.event_id != started_event_id:
                    continue  # failed/timed-out task: its events roll into the next activation
                if self._unmatched:
                    c = self._unmatched[0]
                    raise self._nde(
                        f"the workflow produced {cmds.describe_command(c.proto, c.update_id)} but history has no "
                        f"matching event before event {ev.event_id} ({cmds.event_type_name(t)})"
                    )
                replay_updates: list[tuple[update_pb.Request, str, int]] = []
                if replay:
                    for la in events[i + 2:]:
                        if la.event_type not in cmds.COMMAND_EVENT_TYPES and la.event_type not in _INTERLEAVED:
                            break
                        if la.event_type == E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
                            a = la.workflow_execution_update_accepted_event_attributes
                            replay_updates.append((a.accepted_request, a.accepted_request_message_id,
                                                   a.accepted_request_sequencing_event_id))
                        lo = marker_outcome(la) if la.event_type == E.EVENT_TYPE_MARKER_RECORDED else None
                        if lo is not None:
                            self._local_markers[lo[0]] = lo[1]
                        if cmds.is_patch_marker(la):
                            pid = cmds.patch_id_of_marker(la.marker_recorded_event_attributes.details)
                            if pid:
                                self._patches_in_history.add(pid)
                    self._activate(jobs, ev, True, replay_updates, run_validators=False)
                else:
                    live = []
                    for m in updates:
                        req = update_pb.Request()
                        m.body.Unpack(req)
                        live.append((req, m.id, m.event_id))
                    self._activate(jobs, ev, False, live, run_validators=True)
                    result = [c.proto for c in self._unmatched]
                jobs = []
            elif t not in (E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
                           E.EVENT_TYPE_WORKFLOW_TASK_FAILED, E.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT):
                jobs.append(ev)
        if result is None and self._unmatched and not self._disposed:
            c = self._unmatched[0]
            raise self._nde(
                f"the workflow produced {cmds.describe_command(c.proto, c.update_id)} but history ended at event "
                f"{self.last_event_id} without a matching event"
            )
        return result

    def _activate(self, jobs: list[history_pb.HistoryEvent], started: history_pb.HistoryEvent, replaying: bool,
                  updates: list[tuple[update_pb.Request, str, int]], run_validators: bool) -> None:
        self._activation += 1
        self._replaying = replaying
        self._now = started.event_time.ToDatetime(tzinfo=UTC)
        sa = started.workflow_task_started_event_attributes
        self._history_length = started.event_id
        self._history_size = sa.history_size_bytes
        self._suggest_continue_as_new = sa.suggest_continue_as_new
        start_main = False

        def apply() -> None:
            nonlocal start_main
            for ev in jobs:
                if ev.event_type == E.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
                    self._init_workflow(ev.workflow_execution_started_event_attributes)
                    start_main = True
                else:
                    self._apply(ev)
            for req, msg_id, seq_id in updates:
                self._apply_update(req, msg_id, seq_id, run_validators)
            if start_main:
                self._start_main()

        self._run(apply)
        while replaying and any(s in self._local_markers for s in self.pending_local):
            for seq in [s for s in self.pending_local if s in self._local_markers]:
                self.resolve_local(seq, self._local_markers.pop(seq))
            self._run()
        self._finish_activation()

    # ------------------------------------------------------------ start and completion

    def _init_workflow(self, attrs: history_pb.WorkflowExecutionStartedEventAttributes) -> None:
        self._start = attrs
        seed_src = attrs.original_execution_run_id or self.run_id
        try:
            seed = uuid.UUID(seed_src).int & ((1 << 64) - 1)
        except ValueError:
            seed = int.from_bytes(hashlib.sha256(seed_src.encode()).digest()[:8], "big")
        self.wf_random = Random(seed)
        self._memo = dict(attrs.memo.fields)
        self._search_attributes = dict(attrs.search_attributes.indexed_fields)
        parent = None
        if attrs.HasField("parent_workflow_execution"):
            parent = wf.ParentInfo(attrs.parent_workflow_namespace, attrs.parent_workflow_execution.run_id,
                                   attrs.parent_workflow_execution.workflow_id)
        self._info = wf.Info(
            attempt=attrs.attempt or 1,
            continued_run_id=attrs.continued_execution_run_id or None,
            cron_schedule=attrs.cron_schedule or None,
            execution_timeout=_td(attrs.workflow_execution_timeout),
            first_execution_run_id=attrs.first_execution_run_id or self.run_id,
            namespace=self.namespace,
            parent=parent,
            run_id=self.run_id,
            run_timeout=_td(attrs.workflow_run_timeout),
            start_time=self._now,
            task_queue=attrs.task_queue.name,
            task_timeout=_td(attrs.workflow_task_timeout) or timedelta(seconds=10),
            workflow_id=self.workflow_id,
            workflow_start_time=self._now,
            workflow_type=self.defn.name,
            search_attributes=decode_sas(self.converter, self._search_attributes),
            typed_search_attributes=decode_search_attributes(self._search_attributes),
        )
        self._main_args = self.converter.decode(attrs.input.payloads, self.defn.arg_types)
        cls = self.defn.cls
        self.wf_instance_obj = cls(*self._main_args) if self.defn.init_takes_args else cls()

    def _start_main(self) -> None:
        self._main_task = self.create_task(self.defn.run_fn(self.wf_instance_obj, *self._main_args), name="run")
        self._main_task.add_done_callback(self._on_main_done)

    def _on_main_done(self, task: asyncio.Task[Any]) -> None:
        if self._closed:
            return
        c = command_pb.Command()
        err = task.exception() if not task.cancelled() else asyncio.CancelledError()
        if err is None:
            c.command_type = C.COMMAND_TYPE_COMPLETE_WORKFLOW_EXECUTION
            try:
                result = self.converter.encode_payloads([task.result()])
            except Exception as e:
                self.task_failure = e
                return
            c.complete_workflow_execution_command_attributes.result.CopyFrom(result)
        elif isinstance(err, wf.ContinueAsNewError):
            self._continue_as_new_command(c, err)
        elif self._cancel_requested and exc.is_cancelled_exception(err):
            c.command_type = C.COMMAND_TYPE_CANCEL_WORKFLOW_EXECUTION
            c.cancel_workflow_execution_command_attributes.SetInParent()
        elif isinstance(err, exc.FailureError | asyncio.CancelledError):
            c.command_type = C.COMMAND_TYPE_FAIL_WORKFLOW_EXECUTION
            c.fail_workflow_execution_command_attributes.failure.CopyFrom(to_failure(err, self.converter))
        else:
            self.task_failure = err
            return
        self._closed = True
        self._emit(c)

    def _continue_as_new_command(self, c: command_pb.Command, err: wf.ContinueAsNewError) -> None:
        assert self._start is not None
        c.command_type = C.COMMAND_TYPE_CONTINUE_AS_NEW_WORKFLOW_EXECUTION
        a = c.continue_as_new_workflow_execution_command_attributes
        a.workflow_type.name = err.workflow or self.defn.name
        a.task_queue.name = err.task_queue or self._start.task_queue.name
        a.input.CopyFrom(self.converter.encode_payloads(err.input_args))
        if err.run_timeout:
            a.workflow_run_timeout.FromTimedelta(err.run_timeout)
        elif self._start.HasField("workflow_run_timeout"):
            a.workflow_run_timeout.CopyFrom(self._start.workflow_run_timeout)
        if err.task_timeout:
            a.workflow_task_timeout.FromTimedelta(err.task_timeout)
        if err.retry_policy:
            err.retry_policy.apply_to_proto(a.retry_policy)
        if err.memo is not None:
            for k, v in err.memo.items():
                a.memo.fields[k].CopyFrom(self.converter.payload_converter.to_payload(v))
        else:
            a.memo.fields.update(self._memo)
        if err.search_attributes is not None:
            a.search_attributes.CopyFrom(encode_search_attributes(err.search_attributes))

    # ------------------------------------------------------------ job application and teardown

    def _apply(self, ev: history_pb.HistoryEvent) -> None:
        t = ev.event_type
        if t == E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            a = ev.workflow_execution_signaled_event_attributes
            self._apply_signal(a.signal_name, list(a.input.payloads))
        elif t == E.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED:
            if not self._cancel_requested:
                self._cancel_requested = True
                if self._main_task is not None:
                    self._main_task.cancel()
        else:
            ref = _ref_event_id(ev)
            resolver = self._by_event.get(ref) if ref else None
            if resolver is None and t == E.EVENT_TYPE_TIMER_FIRED:
                handle = self._timers.pop(ev.timer_fired_event_attributes.timer_id, None)
                if handle is not None and not handle._cancelled:
                    self._ready.append(handle)
            elif resolver is not None:
                resolver(ev)

    def dispose(self) -> None:
        """Tear down on eviction: cancel pending tasks so coroutines close cleanly; commands are discarded."""
        self._disposed = True
        self._unmatched.clear()
        for t in self._tasks:
            if not t.done():
                t.cancel()
        for _ in range(100):
            if not self._ready:
                break
            self._run()
        self._tasks.clear()

    @property
    def closed(self) -> bool:
        return self._closed


# Written by the server between command events of one completion (cancel of a not-yet-started activity).
_INTERLEAVED = frozenset({E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, E.EVENT_TYPE_ACTIVITY_TASK_CANCELED})


def _td(d: Any) -> timedelta | None:
    return d.ToTimedelta() if (d.seconds or d.nanos) else None


def _ref_event_id(ev: history_pb.HistoryEvent) -> int:
    """The scheduled/initiated event id a result event refers to."""
    attrs_name = ev.WhichOneof("attributes")
    if not attrs_name:
        return 0
    attrs = getattr(ev, attrs_name)
    for field in ("scheduled_event_id", "initiated_event_id"):
        if hasattr(attrs, field) and getattr(attrs, field):
            return int(getattr(attrs, field))
    return 0


__all__ = ["WorkflowInstance", "NondeterminismError", "from_failure"]
