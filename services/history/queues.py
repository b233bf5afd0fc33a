"""Queue processors of one shard: transfer and visibility (immediate, by task id) and timer (by
visibility time, using the injected Clock).

Tasks reach a processor in memory: the shard hands over what it committed, right after the transaction
committed (``add_tasks``); upcoming timers wait in a heap. The database is read only when the in-memory view
may be incomplete: when the processor starts (shard load/acquire: everything outstanding is read back), after
an overflow of the in-memory buffer, when the shard reports a write of unknown outcome (``request_read``), when
the clock reaches the timer "horizon" (timers beyond it were not kept in memory), and as a slow safety sweep.

Completed tasks are deleted, so after a restart whatever is left in the tables is exactly the outstanding work
(plus, at most, the last ~50 ms of completed tasks: deletions are batched, one store call per flush, and tasks are
at-least-once with idempotent handlers, so re-running those after a crash is harmless)."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
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
TIMER_READ_BATCH = 1_000  # rows per timer-table read (future timers are kept, so read generously)
Key = int | tuple[datetime, int]
TimerKey = tuple[datetime, int]
START_KEY: TimerKey = (EPOCH, 0)


class QueueProcessor:
    def __init__(self, engine: Engine, shard: ShardContext, category: TaskCategory, handler: Handler) -> None:
        self.engine = engine
        self.shard = shard
        self.category = category
        self.handler = handler
        self._timer = category == TaskCategory.TIMER
        config = engine.config
        self._sweep_seconds = config.queue_sweep_seconds
        self._cap = config.queue_max_buffered_tasks
        self._wake = asyncio.Event()
        self._inflight: set[Key] = set()
        # Completed but not yet deleted: never re-run (a read may still return them), deleted by the flusher.
        self._acked: set[Key] = set()
        self._ack_buffer: list[Key] = []
        self._has_acks = asyncio.Event()
        self._acks_full = asyncio.Event()
        self._flush_task: asyncio.Task[None] | None = None
        self._workers: set[asyncio.Task[None]] = set()
        self._sem = asyncio.Semaphore(MAX_CONCURRENCY)
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = False
        # The database may hold tasks the processor does not know: read it (from the start of the table).
        self._need_read = True
        # Timer queue: future timers by (visibility_time, task_id). Every outstanding timer with key <= _horizon
        # is known (heap, running or acked); None = all of them. Beyond the horizon, read when the clock gets there.
        self._timers: dict[TimerKey, HistoryTask] = {}
        self._heap: list[TimerKey] = []
        self._horizon: TimerKey | None = None
        # Tasks handed over while a read is under way; applied after it (the read may not have seen them).
        self._reading = False
        self._during_read: list[HistoryTask] = []
        self.log = log.bind(shard_id=shard.shard_id, category=category.name)

    def start(self) -> None:
        register = getattr(self.shard, "register_queue", None)
        if register is not None:
            register(self.category, self)
        self._loop_task = asyncio.create_task(self._run(), name=f"history-{self.category.name}-{self.shard.shard_id}")
        self._flush_task = asyncio.create_task(
            self._flush_loop(), name=f"history-{self.category.name}-{self.shard.shard_id}-ack"
        )

    # ------------------------------------------------------------------ input

    def add_tasks(self, tasks: list[HistoryTask]) -> None:
        """Tasks of this category whose transaction has committed (called by the shard)."""
        if self._stopping:
            return
        if self._reading:
            self._during_read.extend(tasks)
            return
        for t in tasks:
            self._admit(t)

    def request_read(self) -> None:
        """Tasks may exist in the database that were not handed over: read it."""
        self._need_read = True
        self._wake.set()

    def _admit(self, t: HistoryTask) -> None:
        if not self._timer:
            key: Key = t.task_id
            if key in self._inflight or key in self._acked:
                return
            if len(self._inflight) >= self._cap:
                self._need_read = True  # overflow: dropped here, read back once work has drained
                return
            self._spawn(key, t)
            return
        tkey: TimerKey = (t.visibility_time, t.task_id)
        if tkey in self._inflight or tkey in self._acked or tkey in self._timers:
            return
        if self._horizon is not None and tkey > self._horizon:
            return  # beyond what is kept in memory: read when the clock reaches the horizon
        if t.visibility_time <= self.engine.clock.now():
            if len(self._inflight) >= self._cap:
                self._lower_horizon(tkey)
                self._wake.set()
                return
            self._spawn(tkey, t)
            return
        if len(self._timers) >= self._cap and not self._evict_after(tkey):
            self._lower_horizon(tkey)
            return
        self._timers[tkey] = t
        if not self._heap or tkey < self._heap[0]:
            self._wake.set()  # earlier than what the loop sleeps towards
        heapq.heappush(self._heap, tkey)

    def _lower_horizon(self, dropped: TimerKey) -> None:
        """``dropped`` (and what follows) is not kept in memory: the next read starts just before it."""
        before = (dropped[0], dropped[1] - 1)
        if self._horizon is None or before < self._horizon:
            self._horizon = before
            self._wake.set()  # the loop may sleep towards a later time

    def _evict_after(self, key: TimerKey) -> bool:
        """The timer buffer is full: drop up to a tenth of it, the latest timers, if they come after ``key``."""
        keys = sorted(self._timers)
        n = max(1, self._cap // 10)
        evict = [k for k in keys[-n:] if k > key]
        if not evict:
            return False
        for k in evict:
            del self._timers[k]
        self._lower_horizon(evict[0])
        self._heap = sorted(self._timers)
        return True

    async def stop(self) -> None:
        self._stopping = True
        unregister = getattr(self.shard, "unregister_queue", None)
        if unregister is not None:
            unregister(self.category, self)
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
        # Drop the in-memory view: whoever owns the shard next reads it back from the database.
        self._timers.clear()
        self._heap.clear()
        self._during_read.clear()
        # Best effort: whatever is not deleted now simply runs again (idempotently) after a restart.
        try:
            await self._flush()
        except Exception as e:
            self.log.info("could not delete completed history tasks on stop", error=repr(e))

    # ------------------------------------------------------------------ loop

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_sweep = loop.time() + self._sweep_seconds
        while not self._stopping and not self.shard.lost:
            self._wake.clear()
            if loop.time() >= next_sweep:
                self._need_read = True
            next_time: datetime | None = None
            try:
                if len(self._inflight) < self._cap:
                    if self._need_read:
                        await self._read(START_KEY)
                        next_sweep = loop.time() + self._sweep_seconds
                    elif self._timer and self._horizon is not None and self._horizon[0] <= self.engine.clock.now():
                        await self._read(self._horizon)
                if self._timer:
                    next_time = self._fire_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                self.log.exception("queue read failed")
                self._need_read = True
                next_time = None
            # A pending read (the last one hit its limit, or failed) runs when work finishes, or within a second.
            wait_seconds = 1.0 if self._need_read else next_sweep - loop.time()
            await self._sleep(next_time, max(0.0, min(wait_seconds, self._sweep_seconds)))

    async def _read(self, after: TimerKey) -> None:
        """Read outstanding tasks from the database (from the start, or past the timer horizon)."""
        ex = self.engine.persistence.executions
        sid = self.shard.shard_id
        self._need_read = False  # cleared before reading: a drop during the read asks for another one
        self._reading = True
        try:
            if self._timer:
                limit = max(TIMER_READ_BATCH, self.engine.config.queue_batch_size)
                tasks = await ex.get_scheduled_tasks(sid, after, far_future(), limit)
                if len(tasks) < limit:
                    self._horizon = None
                else:
                    last = (tasks[-1].visibility_time, tasks[-1].task_id)
                    if after == START_KEY:
                        self._lower_horizon((last[0], last[1] + 1))
                    else:
                        self._horizon = last
            else:
                limit = self.engine.config.queue_batch_size + len(self._inflight) + len(self._acked)
                tasks = await ex.get_immediate_tasks(sid, self.category, 0, MAX_TASK_ID, limit)
                if len(tasks) >= limit:
                    self._need_read = True
        finally:
            self._reading = False
            during, self._during_read = self._during_read, []
        if self._stopping:
            return
        for t in tasks:
            self._admit(t)
        for t in during:
            self._admit(t)

    def _fire_due(self) -> datetime | None:
        """Start every timer that is due; returns when the next one (or the horizon) is."""
        now = self.engine.clock.now()
        heap = self._heap
        while heap:
            key = heap[0]
            t = self._timers.get(key)
            if t is None:
                heapq.heappop(heap)
                continue
            if key[0] > now or len(self._inflight) >= self._cap:
                break
            heapq.heappop(heap)
            del self._timers[key]
            self._spawn(key, t)
        if len(self._inflight) >= self._cap:
            return None  # a finishing task wakes the loop
        next_time = heap[0][0] if heap else None
        if self._horizon is not None and (next_time is None or self._horizon[0] < next_time):
            next_time = self._horizon[0]
        return next_time

    async def _sleep(self, next_time: datetime | None, wait_seconds: float) -> None:
        if self._wake.is_set():
            return
        if next_time is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait_seconds)
            return
        waits: list[asyncio.Task[object]] = [
            asyncio.create_task(self._wake.wait()),
            asyncio.create_task(self.engine.clock.sleep_until(next_time)),  # type: ignore[arg-type]
        ]
        try:
            await asyncio.wait(waits, timeout=wait_seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
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
            if self._need_read or len(self._inflight) == self._cap - 1:
                self._wake.set()  # a pending read, or timers held back by a full buffer, can go now

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
