"""The deterministic asyncio event loop a workflow run executes on, plus the run state shared by its parts.

``WorkflowLoop`` is the base class of ``WorkflowInstance``; the operation mixins (``WorkflowOps``,
``LocalActivityOps``, ``HandlerOps``) derive from it so they are type-checked against the same state. Every
asyncio delay inside a workflow becomes a durable Temporal timer; callbacks run only inside ``_run``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import json
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Generator, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from random import Random
from typing import Any, TypeVar, TypeVarTuple, Unpack

from temporalio.api.command.v1 import message_pb2 as command_pb
from temporalio.api.common.v1 import message_pb2 as common_pb
from temporalio.api.enums.v1 import command_type_pb2 as ct
from temporalio.api.history.v1 import message_pb2 as history_pb
from temporalio.api.protocol.v1 import message_pb2 as protocol_pb

from .. import exceptions as exc
from .. import workflow as wf
from ..converter import DataConverter

logger = logging.getLogger("durata.worker")
C = ct.CommandType
_T = TypeVar("_T")
_Ts = TypeVarTuple("_Ts")


class NondeterminismError(exc.NondeterminismError):
    pass


class _Cmd:
    """An emitted command waiting to be matched with its history event."""

    def __init__(self, proto: command_pb.Command, activation: int, update_id: str = "",
                 on_matched: Callable[[history_pb.HistoryEvent], None] | None = None) -> None:
        self.proto = proto
        self.activation = activation
        self.update_id = update_id
        self.on_matched = on_matched
        self.event_id = 0


class _TimerHandle(asyncio.TimerHandle):
    def __init__(self, when: float, cb: Callable[..., object], args: tuple[Any, ...], loop: WorkflowLoop,
                 context: contextvars.Context | None, timer_id: str) -> None:
        super().__init__(when, cb, args, loop, context=context)
        self.timer_id = timer_id
        self.workflow_loop = loop
        self.cmd: _Cmd | None = None

    def cancel(self) -> None:
        if not self.cancelled():
            self.workflow_loop._cancel_timer(self)
        super().cancel()


class HandlerExecution:
    """A running signal or update handler (for ``all_handlers_finished`` and unfinished-handler warnings)."""

    def __init__(self, kind: str, name: str, policy: wf.HandlerUnfinishedPolicy, update_id: str | None) -> None:
        self.kind = kind
        self.name = name
        self.policy = policy
        self.update_id = update_id


class WorkflowLoop(asyncio.AbstractEventLoop):
    """Deterministic event loop + the state of one run (history driving lives in WorkflowInstance)."""

    _durata_workflow_runtime = True

    def __init__(self, defn: wf._Definition, namespace: str, workflow_id: str, run_id: str,
                 converter: DataConverter | None = None) -> None:
        self.defn = defn
        self.namespace = namespace
        self.workflow_id = workflow_id
        self.run_id = run_id
        self.converter = converter or DataConverter.default
        self._ready: collections.deque[asyncio.Handle] = collections.deque()
        self._unmatched: collections.deque[_Cmd] = collections.deque()
        self._conditions: list[tuple[Callable[[], bool], asyncio.Future[Any]]] = []
        self._tasks: list[asyncio.Task[Any]] = []
        self._activation = 0
        self._replaying = False
        self._now = datetime.fromtimestamp(0, UTC)
        self._seq: collections.Counter[str] = collections.Counter()
        self._timers: dict[str, _TimerHandle] = {}
        self._by_event: dict[int, Callable[[history_pb.HistoryEvent], None]] = {}  # scheduled/initiated id → resolver
        self._patches_memo: dict[str, bool] = {}
        self._patches_in_history: set[str] = set()
        self._change_versions: list[str] = []
        self.used_flags: set[int] = set()
        self._main_task: asyncio.Task[Any] | None = None
        self._main_args: list[Any] = []
        self._closed = False
        self._cancel_requested = False
        self.task_failure: BaseException | None = None
        self.messages: list[protocol_pb.Message] = []
        self._handlers: dict[int, HandlerExecution] = {}
        self._handler_seq = 0
        self._warned_unfinished = False
        self.last_event_id = 0
        self.wf_instance_obj: Any = None
        self.wf_random = Random(0)
        self._start: history_pb.WorkflowExecutionStartedEventAttributes | None = None
        self._memo: dict[str, common_pb.Payload] = {}
        self._search_attributes: dict[str, common_pb.Payload] = {}
        self._info: wf.Info | None = None
        self._disposed = False
        self._after_completed = False
        self._history_length = 0
        self._history_size = 0
        self._suggest_continue_as_new = False
        # Deadlock detection (see _deadlock.py): when the current _run started (monotonic), on which thread, and
        # the executor future of the activation in progress.
        self.run_started: float | None = None
        self.run_thread: int | None = None
        self.interrupt_lock = threading.Lock()
        self.activation_future: asyncio.Future[Any] | None = None

    # ------------------------------------------------------------ asyncio loop surface

    def time(self) -> float:
        return self._now.timestamp()

    def get_debug(self) -> bool:
        return False

    def is_running(self) -> bool:
        return True

    def is_closed(self) -> bool:
        return False

    def create_future(self) -> asyncio.Future[Any]:
        return asyncio.Future(loop=self)

    def create_task(self, coro: Coroutine[Any, Any, _T] | Generator[Any, None, _T], *, name: str | None = None,
                    context: contextvars.Context | None = None) -> asyncio.Task[_T]:
        task = asyncio.Task(coro, loop=self, name=name, context=context)
        self._tasks.append(task)
        return task

    def call_soon(self, callback: Callable[[Unpack[_Ts]], object], *args: *_Ts,
                  context: contextvars.Context | None = None) -> asyncio.Handle:
        h = asyncio.Handle(callback, args, self, context=context)
        self._ready.append(h)
        return h

    def call_later(self, delay: float, callback: Callable[[Unpack[_Ts]], object], *args: *_Ts,
                   context: contextvars.Context | None = None) -> asyncio.TimerHandle:
        return self.call_at(self.time() + delay, callback, *args, context=context)

    def call_at(self, when: float, callback: Callable[[Unpack[_Ts]], object], *args: *_Ts,
                context: contextvars.Context | None = None) -> asyncio.TimerHandle:
        """Every asyncio delay inside a workflow becomes a durable Temporal timer."""
        delay = round(when - self.time(), 3)
        self._seq["timer"] += 1
        timer_id = str(self._seq["timer"])
        handle = _TimerHandle(when, callback, args, self, context, timer_id)
        if delay <= 0:
            self._ready.append(handle)
            return handle
        c = command_pb.Command(command_type=C.COMMAND_TYPE_START_TIMER)
        c.start_timer_command_attributes.timer_id = timer_id
        c.start_timer_command_attributes.start_to_fire_timeout.FromTimedelta(timedelta(seconds=delay))
        handle.cmd = self._emit(c)
        self._timers[timer_id] = handle
        return handle

    def _cancel_timer(self, handle: _TimerHandle) -> None:
        if self._timers.pop(handle.timer_id, None) is None:
            return
        if handle.cmd is None or not self._drop_if_unsent(handle.cmd):
            c = command_pb.Command(command_type=C.COMMAND_TYPE_CANCEL_TIMER)
            c.cancel_timer_command_attributes.timer_id = handle.timer_id
            self._emit(c)

    def _timer_handle_cancelled(self, handle: asyncio.TimerHandle) -> None:
        pass

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        if not self._disposed:
            logger.error("Workflow event loop error: %s", context.get("message"), exc_info=context.get("exception"))

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        self.call_exception_handler(context)

    # ------------------------------------------------------------ commands

    def _emit(self, proto: command_pb.Command, update_id: str = "",
              on_matched: Callable[[history_pb.HistoryEvent], None] | None = None) -> _Cmd:
        c = _Cmd(proto, self._activation, update_id, on_matched)
        if not self._disposed:
            self._unmatched.append(c)
        return c

    def _drop_if_unsent(self, c: _Cmd) -> bool:
        """Commands emitted and cancelled in the same activation are never sent (nor replayed)."""
        if c.activation == self._activation and c in self._unmatched:
            self._unmatched.remove(c)
            return True
        return False

    def _nde(self, msg: str) -> NondeterminismError:
        return NondeterminismError(
            f"Nondeterminism error in workflow {self.defn.name!r} (workflow_id={self.workflow_id!r}, "
            f"run_id={self.run_id!r}): {msg}"
        )

    def _finish_activation(self) -> None:
        """A close command must be the last command of a completion."""
        closes = [c for c in self._unmatched if c.proto.command_type in CLOSE_COMMANDS]
        for c in closes[1:]:
            self._unmatched.remove(c)
        if closes and self._unmatched[-1] is not closes[0]:
            self._unmatched.remove(closes[0])
            self._unmatched.append(closes[0])
        if closes and not self._replaying:
            self._warn_unfinished_handlers()

    def _warn_unfinished_handlers(self) -> None:
        """Overridden by HandlerOps (a run that finishes with handlers still running logs a warning)."""

    # ------------------------------------------------------------ running callbacks

    @contextlib.contextmanager
    def running_workflow_code(self) -> Iterator[None]:
        """This loop is the running loop while workflow code runs; the run is timed for deadlock detection."""
        prev = asyncio.events._get_running_loop()
        asyncio.events._set_running_loop(self)
        self.run_thread = threading.get_ident()
        self.run_started = time.monotonic()
        try:
            yield
        finally:
            with self.interrupt_lock:
                self.run_started = None
            asyncio.events._set_running_loop(prev)

    def _run(self, first: Callable[[], None] | None = None) -> None:
        with self.running_workflow_code():
            if first:
                first()
            while True:
                while self._ready:
                    h = self._ready.popleft()
                    if not h.cancelled():
                        h._run()
                progressed = False
                for cond in list(self._conditions):
                    fn, fut = cond
                    if fut.done():
                        self._conditions.remove(cond)
                        continue
                    try:
                        ok = fn()
                    except Exception as err:
                        fut.set_exception(err)
                        self._conditions.remove(cond)
                        continue
                    if ok:
                        fut.set_result(True)
                        self._conditions.remove(cond)
                        progressed = True
                        break  # re-run the ready queue before checking further conditions
                if not self._ready and not progressed:
                    break


CLOSE_COMMANDS = frozenset({
    C.COMMAND_TYPE_COMPLETE_WORKFLOW_EXECUTION, C.COMMAND_TYPE_FAIL_WORKFLOW_EXECUTION,
    C.COMMAND_TYPE_CANCEL_WORKFLOW_EXECUTION, C.COMMAND_TYPE_CONTINUE_AS_NEW_WORKFLOW_EXECUTION,
})


def decode_sas(conv: DataConverter, fields: Mapping[str, common_pb.Payload]) -> dict[str, Any]:
    """Search attributes as temporalio's untyped ``Info.search_attributes`` (every value a list)."""
    out: dict[str, Any] = {}
    for k, p in fields.items():
        try:
            v = json.loads(p.data) if p.data else None
        except ValueError:
            continue
        out[k] = v if isinstance(v, list) else [v]
    return out
