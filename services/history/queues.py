"""Queue processors of one shard: transfer and visibility (immediate, by task id) and timer (by
visibility time, using the injected Clock). Completed tasks are deleted, so after a restart whatever is left
in the tables is exactly the outstanding work (plus, at most, the last ~50 ms of completed tasks: deletions are
batched, one store call per flush, and tasks are at-least-once with idempotent handlers, so re-running those after
a crash is harmless)."""

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
ACK_FLUSH_SECONDS = 0.05  # completed tasks are deleted in one batch at most this long after completion ...
ACK_FLUSH_COUNT = 100  # ... or as soon as this many have accumulated
Key = int | tuple[datetime, int]


class QueueProcessor:
    def __init__(self, engine: Engine, shard: ShardContext, category: TaskCategory, handler: Handler) -> None:
        self.engine = engine
        self.shard = shard
        self.category = category
        self.handler = handler
        self._wake = asyncio.Event()
        self._inflight: set[Key] = set()
        # Completed but not yet deleted: never re-run (a poll may still read them), deleted by the flusher.
        self._acked: set[Key] = set()
        self._ack_buffer: list[Key] = []
        self._has_acks = asyncio.Event()
        self._acks_full = asyncio.Event()
        self._flush_task: asyncio.Task[None] | None = None
        self._workers: set[asyncio.Task[None]] = set()
        self._sem = asyncio.Semaphore(MAX_CONCURRENCY)
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._full = False  # the last read hit its limit: re-read as soon as work finishes
        self._sleeping_until: datetime | None = None
        self.log = log.bind(shard_id=shard.shard_id, category=category.name)

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._run(), name=f"history-{self.category.name}-{self.shard.shard_id}")
        self._flush_task = asyncio.create_task(
            self._flush_loop(), name=f"history-{self.category.name}-{self.shard.shard_id}-ack"
        )

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
        if self._flush_task is not None:
            self._flush_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flush_task
        # Best effort: whatever is not deleted now simply runs again (idempotently) after a restart.
        try:
            await self._flush()
        except Exception as e:
            self.log.info("could not delete completed history tasks on stop", error=repr(e))

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
        limit = self.engine.config.queue_batch_size + len(self._inflight) + len(self._acked)
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

    def _spawn(self, key: Key, task: HistoryTask) -> None:
        if key in self._inflight or key in self._acked:
            return
        self._inflight.add(key)
        worker = asyncio.create_task(self._process(key, task))
        self._workers.add(worker)
        worker.add_done_callback(self._workers.discard)

    async def _process(self, key: Key, task: HistoryTask) -> None:
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
                    self._complete(key)
                    metrics.task_processed(self.category.name, "ok")
                    return
                except asyncio.CancelledError:
                    raise
                except (NotFound, NamespaceNotFound):  # run or namespace gone: nothing left to do
                    self._complete(key)
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

    def _complete(self, key: Key) -> None:
        """Mark a task done; the flusher deletes it with the others of its batch."""
        self._acked.add(key)
        self._ack_buffer.append(key)
        self._has_acks.set()
        if len(self._ack_buffer) >= ACK_FLUSH_COUNT:
            self._acks_full.set()

    async def _flush_loop(self) -> None:
        while True:
            await self._has_acks.wait()
            if not self._acks_full.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._acks_full.wait(), ACK_FLUSH_SECONDS)
            try:
                await self._flush()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.log.warning("deleting completed history tasks failed; will retry", error=repr(e))
                await asyncio.sleep(0.5)

    async def _flush(self) -> None:
        keys, self._ack_buffer = self._ack_buffer, []
        self._has_acks.clear()
        self._acks_full.clear()
        if not keys:
            return
        ex = self.engine.persistence.executions
        try:
            if self.category == TaskCategory.TIMER:
                await ex.complete_scheduled_tasks(self.shard.shard_id, keys)  # type: ignore[arg-type]
            else:
                await ex.complete_immediate_tasks(self.shard.shard_id, self.category, keys)  # type: ignore[arg-type]
        except BaseException:
            self._ack_buffer[:0] = keys  # keep them (still marked done) for the next attempt
            self._has_acks.set()
            raise
        self._acked.difference_update(keys)


def far_future() -> datetime:
    return datetime(9999, 1, 1, tzinfo=UTC)
