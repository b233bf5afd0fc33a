"""The persisted backlog of one normal task queue: lease, task-id allocation, batched writes, reads, ack level.

Why this shape: the queue row's ``range_id`` is a lease (fencing out any earlier owner), task ids come from the
lease's range so they only grow across owners, and a row is deleted only once its task was delivered or found
stale (the ack level moves over a contiguous prefix of finished ids). Tasks are read back in id order, so the
backlog is served FIFO and survives restarts.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import structlog

from server.common.clock import Clock
from server.common.errors import ConditionFailed, ServiceError, Unavailable
from server.common.sharding import task_id_range
from server.gen.durata.internal.matching.v1 import service_pb2 as mpb
from server.persistence.interface import TaskQueueKey, TaskQueueRecord, TaskRecord, TaskStore
from services.matching.config import MatchingConfig
from services.matching.tasks import MatchTask, TaskSource

log = structlog.get_logger("durata.matching")


class QueueLost(Unavailable):
    """Another matching host leased this task queue; this copy must be unloaded."""


@dataclass
class _Outstanding:
    done: bool
    create_time: datetime | None


class Backlog:
    def __init__(
        self,
        key: TaskQueueKey,
        store: TaskStore,
        config: MatchingConfig,
        clock: Clock,
        deliver: Callable[[MatchTask], None],
        buffered: Callable[[], int],
    ) -> None:
        self.key = key
        self._store = store
        self._config = config
        self._clock = clock
        # Hands a task read from (or just written to) the database to the queue's matcher.
        self._deliver = deliver
        # How many backlog tasks the matcher currently holds in memory.
        self._buffered = buffered
        self.range_id = 0
        self._next_id = 0
        self._range_end = 0  # exclusive
        self.ack_level = 0
        self._persisted_ack = 0
        # Highest task id handed to the matcher; everything above it is still only in the database.
        self.read_level = 0
        self.db_may_have_more = True
        self._unread_estimate = 0
        # Task ids handed to the matcher and not yet finished, ascending.
        self._outstanding: OrderedDict[int, _Outstanding] = OrderedDict()
        self._io_lock = asyncio.Lock()
        self._pending: list[tuple[mpb.TaskInfo, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        self.lost = False

    # ------------------------------------------------------------------ lease

    async def load(self) -> None:
        record = await self._store.lease_task_queue(self.key)
        self._take_range(record)
        self.ack_level = self._persisted_ack = self.read_level = record.ack_level
        log.info(
            "task queue leased",
            task_queue=self.key.name,
            task_type=self.key.task_type,
            range_id=self.range_id,
            ack_level=self.ack_level,
        )

    def _take_range(self, record: TaskQueueRecord) -> None:
        self.range_id = record.range_id
        self._next_id, self._range_end = task_id_range(record.range_id)

    async def _renew_range(self) -> None:
        old = self.range_id
        record = await self._store.lease_task_queue(self.key)
        if record.range_id != old + 1:
            self.lost = True
            raise QueueLost(f"task queue {self.key.name!r} was leased by another matching host")
        self._take_range(record)

    # ------------------------------------------------------------------ writes

    async def append(self, info: mpb.TaskInfo) -> None:
        """Persist one task (batched with concurrent appends); returns once it is durable."""
        if self.lost:
            raise QueueLost(f"task queue {self.key.name!r} moved to another matching host")
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((info, fut))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(
                self._write_loop(), name=f"matching-backlog-writer-{self.key.name}"
            )
        await asyncio.shield(fut)

    async def _write_loop(self) -> None:
        while self._pending:
            batch = self._pending[: self._config.backlog_write_batch]
            del self._pending[: len(batch)]
            try:
                await self._write_batch(batch)
            except BaseException as err:  # noqa: BLE001 - every waiter must learn the outcome
                exc = err if isinstance(err, ServiceError) else Unavailable(f"backlog write failed: {err}")
                if isinstance(err, ConditionFailed):
                    self.lost = True
                    exc = QueueLost(f"task queue {self.key.name!r} was leased by another matching host")
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                if isinstance(err, asyncio.CancelledError):
                    for _, fut in self._pending:
                        if not fut.done():
                            fut.set_exception(Unavailable("matching is stopping"))
                    self._pending.clear()
                    raise
                if self.lost:
                    log.warning(
                        "task queue lease lost", task_queue=self.key.name, task_type=self.key.task_type
                    )
                else:
                    log.warning("backlog write failed", task_queue=self.key.name, error=repr(err))

    async def _write_batch(self, batch: list[tuple[mpb.TaskInfo, asyncio.Future[None]]]) -> None:
        async with self._io_lock:
            if self._next_id + len(batch) > self._range_end:
                await self._renew_range()
            ids = list(range(self._next_id, self._next_id + len(batch)))
            self._next_id += len(batch)
            records = [
                TaskRecord(
                    task_id=tid,
                    data=info.SerializeToString(),
                    expiry_time=info.expiry_time.ToDatetime(tzinfo=self._clock.now().tzinfo)
                    if info.HasField("expiry_time")
                    else None,
                )
                for tid, (info, _) in zip(ids, batch, strict=True)
            ]
            await self._store.create_tasks(self.key, self.range_id, records)
            for tid, (info, fut) in zip(ids, batch, strict=True):
                if not self.db_may_have_more and self._buffered() < self._config.backlog_buffer_max:
                    self._hand_over(tid, info)
                else:
                    self.db_may_have_more = True
                    self._unread_estimate += 1
                if not fut.done():
                    fut.set_result(None)

    def _hand_over(self, task_id: int, info: mpb.TaskInfo) -> None:
        create_time = (
            info.create_time.ToDatetime(tzinfo=self._clock.now().tzinfo)
            if info.HasField("create_time")
            else None
        )
        self._outstanding[task_id] = _Outstanding(False, create_time)
        self.read_level = task_id
        self._deliver(MatchTask(info=info, source=TaskSource.BACKLOG, task_id=task_id))

    # ------------------------------------------------------------------ reads

    async def read_more(self) -> int:
        """Move the next page of database tasks into the matcher; returns how many."""
        async with self._io_lock:
            if not self.db_may_have_more or self.lost:
                return 0
            records = await self._store.get_tasks(
                self.key, self.read_level, self._range_end - 1, self._config.backlog_read_batch
            )
            for rec in records:
                info = mpb.TaskInfo()
                try:
                    info.ParseFromString(rec.data)
                except Exception:  # noqa: BLE001 - a corrupt row must not wedge the queue
                    log.error(
                        "dropping unreadable backlog task", task_queue=self.key.name, task_id=rec.task_id
                    )
                    self._outstanding[rec.task_id] = _Outstanding(True, None)
                    self.read_level = rec.task_id
                    continue
                self._hand_over(rec.task_id, info)
            self._unread_estimate = max(0, self._unread_estimate - len(records))
            if len(records) < self._config.backlog_read_batch:
                self.db_may_have_more = False
                self._unread_estimate = 0
            self._advance_ack()
            return len(records)

    def wants_read(self) -> bool:
        return self.db_may_have_more and not self.lost and self._buffered() < self._config.backlog_low_water

    # ------------------------------------------------------------------ acks

    def ack(self, task_id: int) -> None:
        entry = self._outstanding.get(task_id)
        if entry is not None:
            entry.done = True
            self._advance_ack()

    def _advance_ack(self) -> None:
        while self._outstanding:
            task_id, entry = next(iter(self._outstanding.items()))
            if not entry.done:
                return
            del self._outstanding[task_id]
            self.ack_level = task_id
        # Nothing handed out is pending: every id up to what was read is finished.
        self.ack_level = max(self.ack_level, self.read_level)

    @property
    def ack_dirty(self) -> bool:
        return self.ack_level > self._persisted_ack

    async def flush_ack(self) -> None:
        """Persist the ack level and delete the rows below it (fenced by range_id)."""
        if not self.ack_dirty or self.lost:
            return
        level = self.ack_level
        try:
            await self._store.update_task_queue(
                TaskQueueRecord(key=self.key, range_id=self.range_id, ack_level=level)
            )
        except ConditionFailed:
            self.lost = True
            raise QueueLost(f"task queue {self.key.name!r} was leased by another matching host") from None
        await self._store.complete_tasks_less_than(self.key, level + 1)
        self._persisted_ack = max(self._persisted_ack, level)

    # ------------------------------------------------------------------ stats

    def approximate_count(self) -> int:
        return sum(1 for e in self._outstanding.values() if not e.done) + self._unread_estimate

    def oldest_create_time(self) -> datetime | None:
        for entry in self._outstanding.values():
            if not entry.done:
                return entry.create_time
        return None

    async def close(self) -> None:
        if self._writer is not None and not self._writer.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._writer), timeout=5)
            except (TimeoutError, ServiceError):
                self._writer.cancel()
