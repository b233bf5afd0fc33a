"""Activity-side API: ``@activity.defn`` and the functions an activity calls while running."""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import inspect
import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, NoReturn, TypeVar, overload

F = TypeVar("F", bound=Callable[..., Any])


@dataclasses.dataclass(frozen=True)
class _Definition:
    name: str
    fn: Callable[..., Any]
    is_async: bool


@overload
def defn(fn: F) -> F: ...
@overload
def defn(*, name: str | None = None, no_thread_cancel_exception: bool = False) -> Callable[[F], F]: ...
def defn(fn: Any = None, *, name: str | None = None, no_thread_cancel_exception: bool = False) -> Any:
    """Mark a function (async or sync) as an activity; the name defaults to the function's name."""

    def deco(f: F) -> F:
        is_async = inspect.iscoroutinefunction(f) or (
            not inspect.isfunction(f) and inspect.iscoroutinefunction(type(f).__call__)
        )
        f.__durata_activity_definition__ = _Definition(name or f.__name__, f, is_async)  # type: ignore[attr-defined]
        return f

    return deco(fn) if fn is not None else deco


def _get_definition(fn: Any) -> _Definition:
    """Definition for a decorated function; bound methods (activities on a class instance) keep their self."""
    d = getattr(fn, "__durata_activity_definition__", None)
    if d is None:
        raise TypeError(f"{fn!r} is not an activity: decorate it with @activity.defn")
    if inspect.ismethod(fn):
        return _Definition(d.name, fn, d.is_async)
    return d


def activity_name(fn: Any) -> str:
    """Activity type name for a decorated function or a plain string."""
    if isinstance(fn, str):
        return fn
    d = getattr(fn, "__durata_activity_definition__", None)
    if d is not None:
        return d.name
    return getattr(fn, "__name__", str(fn))


@dataclasses.dataclass(frozen=True)
class Info:
    """What an activity knows about its own execution."""

    activity_id: str
    activity_type: str
    attempt: int
    current_attempt_scheduled_time: datetime | None
    heartbeat_details: Sequence[Any]
    heartbeat_timeout: timedelta | None
    is_local: bool
    schedule_to_close_timeout: timedelta | None
    scheduled_time: datetime | None
    start_to_close_timeout: timedelta | None
    started_time: datetime | None
    task_queue: str
    task_token: bytes
    workflow_id: str
    workflow_namespace: str
    workflow_run_id: str
    workflow_type: str


class _Context:
    """Per-execution state, set by the activity worker; heartbeats go through ``heartbeat_fn``."""

    def __init__(self, info: Info, heartbeat_fn: Callable[[Sequence[Any]], None]) -> None:
        self.info = info
        self.heartbeat_fn = heartbeat_fn
        self.cancelled = threading.Event()
        self.cancel_reason: str | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._async_cancel_waiters: list[asyncio.Future[None]] = []

    def set_cancelled(self, reason: str) -> None:
        self.cancel_reason = reason
        self.cancelled.set()
        for fut in self._async_cancel_waiters:
            if not fut.done():
                fut.set_result(None)


_current: contextvars.ContextVar[_Context] = contextvars.ContextVar("durata_activity_context")


def _ctx() -> _Context:
    try:
        return _current.get()
    except LookupError:
        raise RuntimeError("Not in activity context") from None


def in_activity() -> bool:
    return _current.get(None) is not None


def info() -> Info:
    return _ctx().info


def heartbeat(*details: Any) -> None:
    """Record progress; throttled by the worker. Cancellation arrives via the heartbeat response."""
    _ctx().heartbeat_fn(details)


def raise_complete_async() -> NoReturn:
    """End the activity function without completing the activity: something else completes it later, through
    ``Client.get_async_activity_handle(task_token=activity.info().task_token)`` (or the activity's ids)."""
    raise _CompleteAsyncError()


class _CompleteAsyncError(BaseException):
    pass


def is_cancelled() -> bool:
    return _ctx().cancelled.is_set()


async def wait_for_cancelled() -> None:
    ctx = _ctx()
    if ctx.cancelled.is_set():
        return
    fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    ctx._async_cancel_waiters.append(fut)
    await fut


def wait_for_cancelled_sync(timeout: timedelta | float | None = None) -> None:
    t = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
    _ctx().cancelled.wait(t)


class _LoggerAdapter(logging.LoggerAdapter):  # type: ignore[type-arg]
    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        ctx = _current.get(None)
        if ctx is not None:
            msg = f"{msg} ({{'activity_id': {ctx.info.activity_id!r}, 'activity_type': {ctx.info.activity_type!r}, 'attempt': {ctx.info.attempt}, 'workflow_id': {ctx.info.workflow_id!r}}})"
        return msg, kwargs


logger = _LoggerAdapter(logging.getLogger("durata.activity"), {})
