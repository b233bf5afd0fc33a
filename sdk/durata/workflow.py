"""Workflow-side API (decorators and the functions workflow code calls), mirroring temporalio.workflow.

Every call delegates to the deterministic runtime that runs the current workflow task: the asyncio loop
returned by ``asyncio.get_running_loop()`` inside workflow code is Durata's per-run workflow loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import logging
import typing
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from enum import Enum, IntEnum
from random import Random
from typing import Any, TypeVar

from .common import RetryPolicy, WorkflowIDReusePolicy
from .exceptions import TemporalError

T = TypeVar("T")
_MISSING: Any = object()


# ---------------------------------------------------------------- definitions


class HandlerUnfinishedPolicy(Enum):
    """What happens when the workflow finishes while a signal or update handler is still running."""

    WARN_AND_ABANDON = 1  # log a warning (and warnings.warn) naming the unfinished handlers
    ABANDON = 2


@dataclasses.dataclass
class _Handler:
    name: str | None  # None = dynamic
    fn: Callable[..., Any]
    is_async: bool
    arg_types: list[Any]
    ret_type: Any
    validator: Callable[..., Any] | None = None
    unfinished_policy: HandlerUnfinishedPolicy = HandlerUnfinishedPolicy.WARN_AND_ABANDON


@dataclasses.dataclass
class _Definition:
    name: str
    cls: type
    run_fn: Callable[..., Any]
    arg_types: list[Any]
    ret_type: Any
    init_takes_args: bool
    signals: dict[str, _Handler]
    queries: dict[str, _Handler]
    updates: dict[str, _Handler]


def _types_of(fn: Callable[..., Any]) -> tuple[list[Any], Any]:
    try:
        hints = typing.get_type_hints(fn)
    except Exception:
        hints = {}
    params = [p for p in inspect.signature(fn).parameters.values() if p.name != "self"]
    return [hints.get(p.name, Any) for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)], hints.get(
        "return", Any
    )


def defn(cls: Any = None, *, name: str | None = None, sandboxed: bool = True, dynamic: bool = False) -> Any:
    """Class decorator registering a workflow; exactly one method must be marked ``@workflow.run``."""

    def deco(c: type) -> type:
        run_fn = None
        signals: dict[str, _Handler] = {}
        queries: dict[str, _Handler] = {}
        updates: dict[str, _Handler] = {}
        for klass in reversed(c.__mro__):
            for attr in vars(klass).values():
                kind = getattr(attr, "__durata_kind__", None)
                if kind == "run":
                    run_fn = attr
                elif kind in ("signal", "query", "update"):
                    at, rt = _types_of(attr)
                    h = _Handler(attr.__durata_name__, attr, inspect.iscoroutinefunction(attr), at, rt,
                                 getattr(attr, "__durata_validator__", None),
                                 getattr(attr, "__durata_unfinished_policy__", HandlerUnfinishedPolicy.WARN_AND_ABANDON))
                    {"signal": signals, "query": queries, "update": updates}[kind][h.name or "*"] = h
        if run_fn is None:
            raise ValueError(f"Workflow class {c.__name__} has no @workflow.run method")
        at, rt = _types_of(run_fn)
        init = vars(c).get("__init__")
        c.__durata_workflow_definition__ = _Definition(  # type: ignore[attr-defined]
            name or c.__name__, c, run_fn, at, rt, bool(getattr(init, "__durata_init__", False)),
            signals, queries, updates,
        )
        return c

    return deco(cls) if cls is not None else deco


def _get_definition(cls: Any) -> _Definition:
    d = getattr(cls, "__durata_workflow_definition__", None)
    if d is None:
        raise TypeError(f"{cls!r} is not a workflow: decorate it with @workflow.defn")
    return d


def init(fn: T) -> T:
    """Mark ``__init__`` as taking the same arguments as the run method."""
    fn.__durata_init__ = True  # type: ignore[attr-defined]
    return fn


def run(fn: T) -> T:
    is_async = inspect.iscoroutinefunction(fn)  # (not narrowing ``fn`` keeps its type T)
    if not is_async:
        raise ValueError("@workflow.run method must be async")
    fn.__durata_kind__ = "run"  # type: ignore[attr-defined]
    return fn


class UnfinishedUpdateHandlersWarning(RuntimeWarning):
    """The workflow finished before all update handlers had finished executing."""


class UnfinishedSignalHandlersWarning(RuntimeWarning):
    """The workflow finished before all signal handlers had finished executing."""


def _handler_deco(kind: str, fn: Any, name: str | None, dynamic: bool,
                  unfinished_policy: HandlerUnfinishedPolicy = HandlerUnfinishedPolicy.WARN_AND_ABANDON) -> Any:
    def deco(f: Any) -> Any:
        f.__durata_kind__ = kind
        f.__durata_name__ = None if dynamic else (name or f.__name__)
        f.__durata_unfinished_policy__ = unfinished_policy
        if kind == "update":
            def validator(vf: Any) -> Any:
                f.__durata_validator__ = vf
                return vf

            f.validator = validator
        return f

    return deco(fn) if fn is not None else deco


def signal(fn: Any = None, *, name: str | None = None, dynamic: bool = False,
           unfinished_policy: HandlerUnfinishedPolicy = HandlerUnfinishedPolicy.WARN_AND_ABANDON, **_: Any) -> Any:
    return _handler_deco("signal", fn, name, dynamic, unfinished_policy)


def query(fn: Any = None, *, name: str | None = None, dynamic: bool = False, **_: Any) -> Any:
    return _handler_deco("query", fn, name, dynamic)


def update(fn: Any = None, *, name: str | None = None, dynamic: bool = False,
           unfinished_policy: HandlerUnfinishedPolicy = HandlerUnfinishedPolicy.WARN_AND_ABANDON, **_: Any) -> Any:
    return _handler_deco("update", fn, name, dynamic, unfinished_policy)


def handler_name(fn: Any) -> str:
    """Name for a signal/query/update given a decorated method or a string."""
    if isinstance(fn, str):
        return fn
    n = getattr(fn, "__durata_name__", None)
    if n is None:
        raise TypeError(f"{fn!r} is not a named workflow signal/query/update handler")
    return n


def workflow_name(wf: Any) -> str:
    """Workflow type for a class, its run method, or a string."""
    if isinstance(wf, str):
        return wf
    if isinstance(wf, type):
        return _get_definition(wf).name
    owner = getattr(wf, "__qualname__", "").split(".")[0]
    mod = inspect.getmodule(wf)
    cls = getattr(mod, owner, None)
    if cls is not None and hasattr(cls, "__durata_workflow_definition__"):
        return cls.__durata_workflow_definition__.name
    raise TypeError(f"Cannot determine workflow type from {wf!r}")


def workflow_result_type(wf: Any) -> Any:
    if callable(wf) and not isinstance(wf, type) and getattr(wf, "__durata_kind__", None):
        return _types_of(wf)[1]
    return None


# ---------------------------------------------------------------- enums and infos


class ActivityCancellationType(IntEnum):
    TRY_CANCEL = 0
    WAIT_CANCELLATION_COMPLETED = 1
    ABANDON = 2


class ChildWorkflowCancellationType(IntEnum):
    ABANDON = 0
    TRY_CANCEL = 1
    WAIT_CANCELLATION_COMPLETED = 2
    WAIT_CANCELLATION_REQUESTED = 3


class ParentClosePolicy(IntEnum):
    UNSPECIFIED = 0
    TERMINATE = 1
    ABANDON = 2
    REQUEST_CANCEL = 3


@dataclasses.dataclass(frozen=True)
class ParentInfo:
    namespace: str
    run_id: str
    workflow_id: str


@dataclasses.dataclass(frozen=True)
class Info:
    attempt: int
    continued_run_id: str | None
    cron_schedule: str | None
    execution_timeout: timedelta | None
    first_execution_run_id: str
    namespace: str
    parent: ParentInfo | None
    run_id: str
    run_timeout: timedelta | None
    start_time: datetime
    task_queue: str
    task_timeout: timedelta
    workflow_id: str
    workflow_start_time: datetime
    workflow_type: str
    search_attributes: Mapping[str, Any]
    typed_search_attributes: Any = None

    def is_continue_as_new_suggested(self) -> bool:
        """Server hint (from the current WorkflowTaskStarted event) that history is getting large."""
        return bool(_rt()._suggest_continue_as_new)

    def get_current_history_length(self) -> int:
        return int(_rt()._history_length)

    def get_current_history_size(self) -> int:
        return int(_rt()._history_size)


class ContinueAsNewError(BaseException):
    """Raised by ``continue_as_new``; the worker turns it into a ContinueAsNew command."""

    def __init__(self, args: Sequence[Any], workflow: str | None, task_queue: str | None,
                 run_timeout: timedelta | None, task_timeout: timedelta | None,
                 memo: Mapping[str, Any] | None, search_attributes: Mapping[str, Any] | None,
                 retry_policy: RetryPolicy | None) -> None:
        super().__init__("Continue as new")
        self.input_args = list(args)
        self.workflow = workflow
        self.task_queue = task_queue
        self.run_timeout = run_timeout
        self.task_timeout = task_timeout
        self.memo = memo
        self.search_attributes = search_attributes
        self.retry_policy = retry_policy


class NondeterminismError(TemporalError):
    pass


# ---------------------------------------------------------------- runtime access


def _rt() -> Any:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if loop is None or not getattr(loop, "_durata_workflow_runtime", False):
        raise RuntimeError("Not in workflow event loop")
    return loop


def in_workflow() -> bool:
    try:
        _rt()
        return True
    except RuntimeError:
        return False


def info() -> Info:
    return _rt().wf_info()


def instance() -> Any:
    return _rt().wf_instance_obj


def now() -> datetime:
    """Workflow time: the start time of the current workflow task (deterministic on replay)."""
    return _rt().wf_now()


def time() -> float:
    return _rt().time()


def time_ns() -> int:
    return int(_rt().time() * 1e9)


def random() -> Random:
    """A Random seeded from the run; the same values on every replay."""
    return _rt().wf_random


def uuid4() -> uuid.UUID:
    return uuid.UUID(int=random().getrandbits(128), version=4)


def memo() -> Mapping[str, Any]:
    return _rt().wf_memo()


def memo_value(key: str, default: Any = _MISSING, *, type_hint: Any = None) -> Any:
    m = _rt().wf_memo_raw()
    if key not in m:
        if default is _MISSING:
            raise KeyError(f"Memo has no key {key}")
        return default
    return _rt().converter.payload_converter.from_payload(m[key], type_hint)


def upsert_memo(updates: Mapping[str, Any]) -> None:
    _rt().wf_upsert_memo(updates)


def upsert_search_attributes(attributes: Any) -> None:
    """Accepts a mapping name → value (or list of values); ``None``/empty removes the attribute."""
    _rt().wf_upsert_search_attributes(attributes)


def patched(id: str) -> bool:
    """True when running new code for change ``id`` (records a marker); False when replaying older history."""
    return _rt().wf_patch(id, deprecated=False)


def deprecate_patch(id: str) -> None:
    _rt().wf_patch(id, deprecated=True)


def get_last_completion_result(type_hint: Any = None) -> Any:
    return _rt().wf_last_completion_result(type_hint)


def has_last_completion_result() -> bool:
    return _rt().wf_has_last_completion_result()


def all_handlers_finished() -> bool:
    return _rt().wf_all_handlers_finished()


async def sleep(duration: float | timedelta, *, summary: str | None = None) -> None:
    """Durable timer."""
    await asyncio.sleep(duration.total_seconds() if isinstance(duration, timedelta) else duration)


async def wait_condition(fn: Callable[[], bool], *, timeout: timedelta | float | None = None,  # noqa: ASYNC109
                         timeout_summary: str | None = None) -> None:
    """Wait until ``fn()`` is true; raises asyncio.TimeoutError after ``timeout`` (a durable timer)."""
    fut = _rt().wf_wait_condition(fn)
    if timeout is None:
        await fut
        return
    secs = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
    await asyncio.wait_for(fut, secs)


def continue_as_new(arg: Any = _MISSING, *, args: Sequence[Any] = (), workflow: Any = None,
                    task_queue: str | None = None, run_timeout: timedelta | None = None,
                    task_timeout: timedelta | None = None, retry_policy: RetryPolicy | None = None,
                    memo: Mapping[str, Any] | None = None, search_attributes: Any = None, **_: Any) -> typing.NoReturn:
    _rt()
    all_args = [arg] if arg is not _MISSING else list(args)
    raise ContinueAsNewError(all_args, workflow_name(workflow) if workflow else None, task_queue,
                             run_timeout, task_timeout, memo, search_attributes, retry_policy)


# ---------------------------------------------------------------- activities


ActivityHandle = asyncio.Task


def start_activity(activity: Any, arg: Any = _MISSING, *, args: Sequence[Any] = (),
                   task_queue: str | None = None, result_type: Any = None,
                   schedule_to_close_timeout: timedelta | None = None,
                   schedule_to_start_timeout: timedelta | None = None,
                   start_to_close_timeout: timedelta | None = None,
                   heartbeat_timeout: timedelta | None = None,
                   retry_policy: RetryPolicy | None = None,
                   cancellation_type: ActivityCancellationType = ActivityCancellationType.TRY_CANCEL,
                   activity_id: str | None = None, **_: Any) -> asyncio.Task[Any]:
    """Schedule an activity; the returned task resolves to its result, cancelling it cancels the activity."""
    from .activity import activity_name

    if start_to_close_timeout is None and schedule_to_close_timeout is None:
        raise ValueError(
            f"Activity {activity_name(activity)!r} needs start_to_close_timeout or schedule_to_close_timeout"
        )
    if result_type is None and callable(activity):
        result_type = _types_of(activity)[1]
    all_args = [arg] if arg is not _MISSING else list(args)
    return _rt().wf_start_activity(
        activity_name(activity), all_args, task_queue=task_queue, result_type=result_type,
        schedule_to_close_timeout=schedule_to_close_timeout, schedule_to_start_timeout=schedule_to_start_timeout,
        start_to_close_timeout=start_to_close_timeout, heartbeat_timeout=heartbeat_timeout,
        retry_policy=retry_policy, cancellation_type=cancellation_type, activity_id=activity_id,
    )


async def execute_activity(activity: Any, arg: Any = _MISSING, **kwargs: Any) -> Any:
    return await start_activity(activity, arg, **kwargs)


start_activity_method = start_activity
start_activity_class = start_activity


async def execute_activity_method(activity: Any, arg: Any = _MISSING, **kwargs: Any) -> Any:
    return await start_activity(activity, arg, **kwargs)


execute_activity_class = execute_activity_method


def start_local_activity(activity: Any, arg: Any = _MISSING, *, args: Sequence[Any] = (), result_type: Any = None,
                         schedule_to_close_timeout: timedelta | None = None,
                         start_to_close_timeout: timedelta | None = None, retry_policy: RetryPolicy | None = None,
                         activity_id: str | None = None, **_: Any) -> asyncio.Task[Any]:
    """Run an activity inside the worker within this workflow task; its outcome is recorded as a marker."""
    from .activity import activity_name

    if start_to_close_timeout is None and schedule_to_close_timeout is None:
        raise ValueError(
            f"Local activity {activity_name(activity)!r} needs start_to_close_timeout or schedule_to_close_timeout"
        )
    if result_type is None and callable(activity):
        result_type = _types_of(activity)[1]
    all_args = [arg] if arg is not _MISSING else list(args)
    return _rt().wf_start_local_activity(
        activity_name(activity), all_args, result_type=result_type, start_to_close_timeout=start_to_close_timeout,
        schedule_to_close_timeout=schedule_to_close_timeout, retry_policy=retry_policy, activity_id=activity_id)


async def execute_local_activity(activity: Any, arg: Any = _MISSING, **kwargs: Any) -> Any:
    return await start_local_activity(activity, arg, **kwargs)


# ---------------------------------------------------------------- child workflows


class ChildWorkflowHandle:
    """Started child workflow: await it for the result; cancel() requests its cancellation."""

    def __init__(self, id: str, run_id: str, task: asyncio.Task[Any]) -> None:
        self.id = id
        self.first_execution_run_id = run_id
        self.run_id = run_id
        self._task = task

    def __await__(self) -> typing.Generator[Any, None, Any]:
        return self._task.__await__()

    def cancel(self) -> bool:
        return self._task.cancel()

    def done(self) -> bool:
        return self._task.done()

    async def signal(self, signal: Any, arg: Any = _MISSING, *, args: Sequence[Any] = ()) -> None:
        all_args = [arg] if arg is not _MISSING else list(args)
        await _rt().wf_signal_external(self.id, "", handler_name(signal), all_args, child_only=True)


async def start_child_workflow(workflow: Any, arg: Any = _MISSING, *, args: Sequence[Any] = (), id: str | None = None,
                               task_queue: str | None = None, result_type: Any = None,
                               cancellation_type: ChildWorkflowCancellationType = ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
                               parent_close_policy: ParentClosePolicy = ParentClosePolicy.TERMINATE,
                               execution_timeout: timedelta | None = None, run_timeout: timedelta | None = None,
                               task_timeout: timedelta | None = None,
                               id_reuse_policy: WorkflowIDReusePolicy = WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                               retry_policy: RetryPolicy | None = None, cron_schedule: str = "",
                               memo: Mapping[str, Any] | None = None, search_attributes: Any = None,
                               **_: Any) -> ChildWorkflowHandle:
    if result_type is None:
        result_type = workflow_result_type(workflow)
    all_args = [arg] if arg is not _MISSING else list(args)
    return await _rt().wf_start_child(
        workflow_name(workflow), all_args, id=id or str(uuid4()), task_queue=task_queue, result_type=result_type,
        cancellation_type=cancellation_type, parent_close_policy=parent_close_policy,
        execution_timeout=execution_timeout, run_timeout=run_timeout, task_timeout=task_timeout,
        id_reuse_policy=id_reuse_policy, retry_policy=retry_policy, cron_schedule=cron_schedule, memo=memo,
        search_attributes=search_attributes,
    )


async def execute_child_workflow(workflow: Any, arg: Any = _MISSING, **kwargs: Any) -> Any:
    handle = await start_child_workflow(workflow, arg, **kwargs)
    return await handle


class ExternalWorkflowHandle:
    def __init__(self, id: str, run_id: str | None) -> None:
        self.id = id
        self.run_id = run_id

    async def signal(self, signal: Any, arg: Any = _MISSING, *, args: Sequence[Any] = ()) -> None:
        all_args = [arg] if arg is not _MISSING else list(args)
        await _rt().wf_signal_external(self.id, self.run_id or "", handler_name(signal), all_args, child_only=False)

    async def cancel(self) -> None:
        await _rt().wf_cancel_external(self.id, self.run_id or "", child_only=False)


def get_external_workflow_handle(workflow_id: str, *, run_id: str | None = None) -> ExternalWorkflowHandle:
    _rt()
    return ExternalWorkflowHandle(workflow_id, run_id)


# ---------------------------------------------------------------- logging and unsafe


class _ReplaySafeLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Logger that stays silent while the workflow replays history."""

    def isEnabledFor(self, level: int) -> bool:
        try:
            if _rt().wf_is_replaying():
                return False
        except RuntimeError:
            pass
        return self.logger.isEnabledFor(level)

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        try:
            i = info()
            msg = f"{msg} ({{'workflow_id': {i.workflow_id!r}, 'run_id': {i.run_id!r}, 'workflow_type': {i.workflow_type!r}}})"
        except RuntimeError:
            pass
        return msg, kwargs


logger = _ReplaySafeLogger(logging.getLogger("durata.workflow"), {})


class unsafe:  # noqa: N801 - mirrors temporalio.workflow.unsafe namespace
    @staticmethod
    def is_replaying() -> bool:
        return _rt().wf_is_replaying()

    @staticmethod
    @contextlib.contextmanager
    def imports_passed_through() -> Iterator[None]:
        """Durata has no import sandbox, so this is intentionally a plain context manager."""
        yield

    @staticmethod
    @contextlib.contextmanager
    def sandbox_unrestricted() -> Iterator[None]:
        yield


__all__ = [
    "ActivityCancellationType", "ChildWorkflowCancellationType", "ChildWorkflowHandle", "ContinueAsNewError",
    "HandlerUnfinishedPolicy", "UnfinishedSignalHandlersWarning", "UnfinishedUpdateHandlersWarning",
    "Info", "ParentClosePolicy", "continue_as_new", "defn", "deprecate_patch", "execute_activity",
    "execute_child_workflow", "get_external_workflow_handle", "info", "init", "logger", "memo", "memo_value", "now",
    "patched", "query", "random", "run", "signal", "sleep", "start_activity", "start_child_workflow", "unsafe",
    "update", "upsert_memo", "upsert_search_attributes", "uuid4", "wait_condition", "Awaitable",
]
