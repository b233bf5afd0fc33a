"""Deadlock detection: workflow code runs on a thread of the workflow-task executor, and a run of the workflow
loop (one activation) that does not yield within ``DEADLOCK_TIMEOUT`` seconds fails the workflow task.

Like temporalio: the failure names the workflow, carries the stack of the blocked thread, and the thread is
interrupted (an exception raised in it asynchronously) so that a busy loop in workflow code stops.
"""

from __future__ import annotations

import asyncio
import ctypes
import sys
import time
from collections.abc import Callable
from concurrent.futures import Executor
from types import TracebackType
from typing import Any, TypeVar

from ._loop import WorkflowLoop

DEADLOCK_TIMEOUT = 2.0
T = TypeVar("T")


class DeadlockError(Exception):
    """Fails the workflow task: the workflow did not yield within the deadlock timeout."""


class _InterruptDeadlock(BaseException):
    """Raised inside the blocked workflow thread to stop it."""


async def run_activation(inst: WorkflowLoop, fn: Callable[[], T], executor: Executor | None,
                         limit: float | None = DEADLOCK_TIMEOUT) -> T:
    """Run ``fn`` (which drives ``inst``) on ``executor``; raise DeadlockError if one loop run blocks too long.

    With no executor or no limit (debug mode) ``fn`` runs inline on the worker's event loop.
    """
    if executor is None or limit is None:
        return fn()
    fut = asyncio.get_running_loop().run_in_executor(executor, fn)
    inst.activation_future = fut
    while True:
        started = inst.run_started
        wait = limit if started is None else max(started + limit - time.monotonic(), 0.0)
        await asyncio.wait({fut}, timeout=wait)
        if fut.done():
            return fut.result()
        started = inst.run_started
        if started is not None and time.monotonic() - started >= limit:
            err = _deadlock_error(inst, limit)
            fut.add_done_callback(_consume)
            _interrupt(inst)
            raise err


def _consume(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()


def _deadlock_error(inst: WorkflowLoop, timeout: float) -> DeadlockError:
    err = DeadlockError(
        f"[TMPRL1101] Potential deadlock detected: workflow {inst.defn.name} (workflow_id={inst.workflow_id!r}, "
        f"run_id={inst.run_id!r}) didn't yield within {timeout:g} second(s).")
    tid = inst.run_thread
    try:  # the blocked thread's stack becomes the error's traceback (and so the failure's stack_trace)
        frame = sys._current_frames().get(tid) if tid is not None else None
        tb: TracebackType | None = None
        while frame is not None:  # innermost first, so the chain ends up outermost → innermost
            tb = TracebackType(tb, frame, frame.f_lasti, frame.f_lineno or 0)
            frame = frame.f_back
        return err.with_traceback(tb)
    except Exception as tb_err:  # noqa: BLE001 - the deadlock report matters more than its stack
        return DeadlockError(f"{err} (no stack: {tb_err})")


def _interrupt(inst: WorkflowLoop) -> None:
    with inst.interrupt_lock:
        if inst.run_started is not None and inst.run_thread is not None:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(inst.run_thread),
                                                       ctypes.py_object(_InterruptDeadlock))
