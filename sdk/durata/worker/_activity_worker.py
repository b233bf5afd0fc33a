"""Activity task polling and execution: async activities on the loop, sync ones on a thread pool."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import ctypes
import logging
import threading
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from temporalio.api.taskqueue.v1 import message_pb2 as tq_pb
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv

from .. import activity as act
from .. import exceptions as exc
from ..exceptions import RPCStatusCode
from ..failure import to_failure
from ..workflow import _types_of
from ._poller import TaskPoller

if TYPE_CHECKING:
    from ..client import Client

logger = logging.getLogger("durata.worker")


def _td(d: Any) -> timedelta | None:
    return d.ToTimedelta() if (d.seconds or d.nanos) else None


class _Running:
    """One executing activity attempt plus its heartbeat throttling state."""

    def __init__(self, worker: ActivityWorker, task: wsv.PollActivityTaskQueueResponse, ctx: act._Context,
                 throttle: float) -> None:
        self.worker = worker
        self.task = task
        self.ctx = ctx
        self.throttle = throttle
        self.pending: Sequence[Any] | None = None
        self.last_sent = 0.0
        self.sender: asyncio.Task[None] | None = None
        self.exec_task: asyncio.Future[Any] | None = None
        self.thread_id: int | None = None
        self.last_details: Sequence[Any] = ()

    def heartbeat(self, details: Sequence[Any]) -> None:
        """Called on the worker loop; sends at most once per throttle interval, keeping the latest details."""
        self.pending = details
        self.last_details = details
        if self.sender is None or self.sender.done():
            self.sender = asyncio.get_running_loop().create_task(self._send())

    async def _send(self) -> None:
        while self.pending is not None:
            wait = self.last_sent + self.throttle - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            details, self.pending = self.pending, None
            self.last_sent = time.monotonic()
            try:
                req = wsv.RecordActivityTaskHeartbeatRequest(
                    task_token=self.task.task_token, identity=self.worker.identity,
                    namespace=self.worker.client.namespace,
                    details=self.worker.client.data_converter.encode_payloads(list(details)))
                resp = await self.worker.client._call("RecordActivityTaskHeartbeat", req)
                if resp.cancel_requested:
                    self.cancel("CANCELLED")
            except exc.RPCError as err:
                if err.status == RPCStatusCode.NOT_FOUND:
                    self.cancel("NOT_FOUND")
                else:
                    logger.warning("Heartbeat failed: %s", err.message)
            except Exception as err:
                logger.warning("Heartbeat details not serializable: %s", err)

    def cancel(self, reason: str) -> None:
        if self.ctx.cancelled.is_set():
            return
        self.ctx.set_cancelled(reason)
        if self.thread_id is not None:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self.thread_id),
                                                       ctypes.py_object(exc.CancelledError))
        elif self.exec_task is not None:
            self.exec_task.cancel()


class ActivityWorker(TaskPoller):
    def __init__(self, client: Client, task_queue: str, activities: Sequence[Any], *, identity: str,
                 max_concurrent: int, executor: concurrent.futures.Executor | None, pollers: int,
                 max_heartbeat_throttle: timedelta, default_heartbeat_throttle: timedelta) -> None:
        self.client = client
        self.task_queue = task_queue
        self.identity = identity
        self.defns: dict[str, act._Definition] = {}
        for a in activities:
            d = act._get_definition(a)
            self.defns[d.name] = d
        needs_threads = any(not d.is_async for d in self.defns.values())
        self.executor = executor or (concurrent.futures.ThreadPoolExecutor(max_concurrent) if needs_threads else None)
        self._own_executor = executor is None and self.executor is not None
        super().__init__(max_concurrent)
        self.pollers = pollers
        self.max_throttle = max_heartbeat_throttle.total_seconds()
        self.default_throttle = default_heartbeat_throttle.total_seconds()
        self.running: dict[bytes, _Running] = {}
        self.eager_started = 0

    async def run(self) -> None:
        await asyncio.gather(*(self._poll_loop() for _ in range(self.pollers)))

    # Eager execution: the workflow worker asks the server to hand activities it schedules straight back in the
    # workflow-task completion response, for as many as this worker has free slots (reserved before asking).

    def can_run(self, activity_type: str) -> bool:
        return not self.stopping and activity_type in self.defns

    async def try_reserve(self) -> bool:
        """Take a slot without waiting (False if none is free)."""
        if self.stopping or self.slots.locked():
            return False
        await self.slots.acquire()  # not locked: returns at once
        return True

    def release_reservation(self) -> None:
        self.slots.release()

    def run_eager(self, task: wsv.PollActivityTaskQueueResponse) -> None:
        """Run a task the server returned eagerly on a reserved slot (released when it finishes)."""
        self.eager_started += 1
        t: asyncio.Task[Any] = asyncio.create_task(self._execute(task))
        self.inflight.add(t)
        t.add_done_callback(self._done)

    async def _poll_loop(self) -> None:
        def poll() -> Any:
            return self.client._call("PollActivityTaskQueue", wsv.PollActivityTaskQueueRequest(
                namespace=self.client.namespace, task_queue=tq_pb.TaskQueue(name=self.task_queue),
                identity=self.identity), timeout=70)

        await self._run_poll_loop("Activity", poll, self._execute)

    async def _execute(self, task: wsv.PollActivityTaskQueueResponse) -> None:
        conv = self.client.data_converter
        name = task.activity_type.name
        defn = self.defns.get(name)
        hb_timeout = _td(task.heartbeat_timeout)
        throttle = min(hb_timeout.total_seconds() * 0.8, self.max_throttle) if hb_timeout else self.default_throttle
        info = act.Info(
            activity_id=task.activity_id, activity_type=name, attempt=task.attempt,
            current_attempt_scheduled_time=task.current_attempt_scheduled_time.ToDatetime(),
            heartbeat_details=conv.decode(task.heartbeat_details.payloads), heartbeat_timeout=hb_timeout,
            is_local=False, schedule_to_close_timeout=_td(task.schedule_to_close_timeout),
            scheduled_time=task.scheduled_time.ToDatetime(), start_to_close_timeout=_td(task.start_to_close_timeout),
            started_time=task.started_time.ToDatetime(), task_queue=self.task_queue, task_token=task.task_token,
            workflow_id=task.workflow_execution.workflow_id, workflow_namespace=task.workflow_namespace,
            workflow_run_id=task.workflow_execution.run_id, workflow_type=task.workflow_type.name)
        loop = asyncio.get_running_loop()
        running: _Running

        def hb(details: Sequence[Any]) -> None:
            if threading.get_ident() == loop_thread:
                running.heartbeat(details)
            else:
                loop.call_soon_threadsafe(running.heartbeat, details)

        loop_thread = threading.get_ident()
        ctx = act._Context(info, hb)
        ctx.loop = loop
        running = _Running(self, task, ctx, throttle)
        self.running[task.task_token] = running
        try:
            if defn is None:
                raise exc.ApplicationError(
                    f"Activity function {name} is not registered on this worker, available activities: "
                    f"{', '.join(sorted(self.defns)) or '(none)'}", type="NotFoundError")
            arg_types, ret_type = _types_of(defn.fn)
            args = conv.decode(task.input.payloads, arg_types)
            try:
                result = await self._invoke(defn, args, running)
            except act._CompleteAsyncError:
                logger.debug("Activity %s (%s) will be completed asynchronously", task.activity_id, name)
                return
            await self._respond("RespondActivityTaskCompleted", wsv.RespondActivityTaskCompletedRequest(
                task_token=task.task_token, identity=self.identity, namespace=self.client.namespace,
                result=conv.encode_payloads([result])))
        except BaseException as err:  # noqa: BLE001 - every outcome is reported to the server
            await self._report_error(task, running, err)
            if isinstance(err, KeyboardInterrupt | SystemExit):
                raise
        finally:
            self.running.pop(task.task_token, None)
            if running.sender is not None:
                running.sender.cancel()

    async def _invoke(self, defn: act._Definition, args: list[Any], running: _Running) -> Any:
        context = contextvars.copy_context()
        context.run(act._current.set, running.ctx)
        if defn.is_async:
            running.exec_task = asyncio.get_running_loop().create_task(defn.fn(*args), context=context)
            return await running.exec_task

        def in_thread() -> Any:
            running.thread_id = threading.get_ident()
            try:
                return context.run(defn.fn, *args)
            finally:
                running.thread_id = None

        assert self.executor is not None
        return await asyncio.get_running_loop().run_in_executor(self.executor, in_thread)

    async def _report_error(self, task: wsv.PollActivityTaskQueueResponse, running: _Running, err: BaseException) -> None:
        conv = self.client.data_converter
        cancelled = running.ctx.cancelled.is_set()
        if cancelled and running.ctx.cancel_reason == "CANCELLED" and exc.is_cancelled_exception(err):
            await self._respond("RespondActivityTaskCanceled", wsv.RespondActivityTaskCanceledRequest(
                task_token=task.task_token, identity=self.identity, namespace=self.client.namespace))
            return
        if cancelled and running.ctx.cancel_reason == "WORKER_SHUTDOWN":
            err = exc.ApplicationError("Worker shutting down", type="WorkerShutdown")
        elif isinstance(err, asyncio.CancelledError):
            err = exc.ApplicationError("Activity cancelled", type="CancelledError")
        req = wsv.RespondActivityTaskFailedRequest(task_token=task.task_token, identity=self.identity,
                                                   namespace=self.client.namespace, failure=to_failure(err, conv))
        if running.last_details:
            try:
                req.last_heartbeat_details.CopyFrom(conv.encode_payloads(list(running.last_details)))
            except Exception:
                pass
        await self._respond("RespondActivityTaskFailed", req)

    async def _respond(self, method: str, req: Any) -> None:
        try:
            await self.client._call(method, req)
        except exc.RPCError as err:
            logger.warning("%s failed: %s", method, err.message)
        except Exception as err:  # e.g. channel closed during shutdown
            logger.warning("%s failed: %s", method, err)

    async def shutdown(self, graceful_timeout: timedelta) -> None:
        """Stop polling, give running activities ``graceful_timeout`` to finish, then cancel them."""
        self.stopping = True
        if self.inflight:
            _, pending = await asyncio.wait(list(self.inflight), timeout=graceful_timeout.total_seconds() or 0.001)
            if pending:
                for r in list(self.running.values()):
                    r.cancel("WORKER_SHUTDOWN")
                await asyncio.wait(pending, timeout=30)
        if self._own_executor and self.executor is not None:
            self.executor.shutdown(wait=False)
