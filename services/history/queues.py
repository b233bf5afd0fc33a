"""Queue processors of one shard: transfer and visibility (immediate, by task id) and timer (by
visibility time, using the injected Clock). Completed tasks are deleted, so after a restart whatever is left
in the tables is exactly the outstanding work."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import structlog
import structlog.contextvars

from server.common.errors import NamespaceNotFound, NotFound, Unavailable
from server.persistence.interface import HistoryTask, TaskCategory

from . import metrics
from .engine import Engine
from .shard import ShardContext

log = structlog.get_logger("durata.history.queues")
Handler = Callable[[Engine, ShardContext, HistoryTask], Awaitable[None]]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_TASK_ID = (1 << 62)
MAX_CONCURRENCY = 64


class QueueProcessor:
    def __init__(self, engine: Engine, shard: ShardContext, category: TaskCategory, handler: Handler) -> None:
        self.engine = engine
        self.shard = shard
        self.category = category
        self.handler = handler
        self._wake = asyncio.Event()
        self._inflight: set[int | tuple[datetime, int]] = set()
        self._workers: set[asyncio.Task[None]] = set()
        self._sem = asyncio.Semaphore(MAX_CONCURRENCY)
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._full = False  # the last read hit its limit: re-read as soon as work finishes
        self._sleeping_until: datetime | None = None
        self.log = log.bind(shard_id=shard.shard_id, category=category.name)

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._run(), name=f"history-{self.category.name}-{self.shard.shard_id}")

    def notify(self, visibility_time: datetime | None = None) -> None:
        """New tasks were committed. A timer later than the one we already sleep towards needs no wake-up."""
        if (
            visibility_time is not None
            and self._sleeping_until is not None
            and visibility_time >= self._sleeping_until
        ):
            return
        self._wake.set()

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        for w in list(self._workers):
            w.cancel()
        if self._workers:
            await asyncio.gather(*self._workers, return_exceptions=True)

    async def _run(self) -> None:
        while not self._stopping and not self.shard.lost:
            self._wake.clear()
            try:
                next_time = await self._poll_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                self.log.exception("queue read failed")
                next_time = None
            await self._sleep(next_time)

    async def _poll_once(self) -> datetime | None:
        ex = self.engine.persistence.executions
        limit = self.engine.config.queue_batch_size + len(self._inflight)
        sid = self.shard.shard_id
        if self.category == TaskCategory.TIMER:
            now = self.engine.clock.now()
            due = await ex.get_scheduled_tasks(sid, (EPOCH, 0), now, limit)
            self._full = len(due) >= limit
            for t in due:
                self._spawn((t.visibility_time, t.task_id), t)
            # Only the earliest future timer matters for sleeping; reading just one row keeps polls cheap.
            upcoming = await ex.get_scheduled_tasks(sid, (now, MAX_TASK_ID), far_future(), 1)
            return upcoming[0].visibility_time if upcoming else None
        tasks = await ex.get_immediate_tasks(sid, self.category, 0, MAX_TASK_ID, limit)
        self._full = len(tasks) >= limit
        for t in tasks:
            self._spawn(t.task_id, t)
        return None

    async def _sleep(self, next_time: datetime | None) -> None:
        if self._wake.is_set():
            return
        waits: list[asyncio.Task[object]] = [asyncio.create_task(self._wake.wait())]
        if next_time is not None:
            waits.append(asyncio.create_task(self.engine.clock.sleep_until(next_time)))  # type: ignore[arg-type]
            self._sleeping_until = next_time
        try:
            await asyncio.wait(waits, timeout=self.engine.config.queue_poll_seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._sleeping_until = None
            for w in waits:
                w.cancel()

    def _spawn(self, key: int | tuple[datetime, int], task: HistoryTask) -> None:
        if key in self._inflight:
            return
        self._inflight.add(key)
        worker = asyncio.create_task(self._process(key, task))
        self._workers.add(worker)
        worker.add_done_callback(self._workers.discard)

    async def _process(self, key: int | tuple[datetime, int], task: HistoryTask) -> None:
        attempt = 0
        try:
            while not self._stopping and not self.shard.lost:
                try:
                    async with self._sem:
                        with structlog.contextvars.bound_contextvars(
                            namespace_id=task.namespace_id, workflow_id=task.workflow_id, run_id=task.run_id,
                            shard_id=self.shard.shard_id,
                        ):
                            await self.handler(self.engine, self.shard, task)
                    await self._complete(task)
                    metrics.task_processed(self.category.name, "ok")
                    return
                except asyncio.CancelledError:
                    raise
                except (NotFound, NamespaceNotFound):  # run or namespace gone: nothing left to do
                    await self._complete(task)
                    return
                except Exception as e:
                    attempt += 1
                    metrics.task_processed(self.category.name, "error")
                    if not isinstance(e, Unavailable) or attempt % 10 == 1:
                        self.log.warning("history task failed; will retry", task_id=task.task_id, workflow_id=task.workflow_id, error=repr(e), attempt=attempt)
                    await asyncio.sleep(min(0.05 * (2 ** min(attempt, 7)), 5.0))
        finally:
            self._inflight.discard(key)
            if self._full:
                self._wake.set()

    async def _complete(self, task: HistoryTask) -> None:
        ex = self.engine.persistence.executions
        if self.category == TaskCategory.TIMER:
            await ex.complete_scheduled_tasks(self.shard.shard_id, [(task.visibility_time, task.task_id)])
        else:
            await ex.complete_immediate_tasks(self.shard.shard_id, self.category, [task.task_id])


def far_future() -> datetime:
    return datetime(9999, 1, 1, tzinfo=UTC)
