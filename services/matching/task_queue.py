"""One task queue (namespace, name, type) on this host: the matcher between adders and pollers.

Normal queues own a persisted ``Backlog``; sticky queues keep everything in memory and only live while their
worker polls. Query tasks are in memory only and are served before anything else.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

import structlog
from google.protobuf import timestamp_pb2

from server.common.clock import Clock
from server.common.errors import FailedPrecondition, Unavailable
from server.gen.durata.internal.matching.v1 import service_pb2 as mpb
from server.persistence.interface import TaskQueueKey, TaskStore
from services.matching import metrics
from services.matching.backlog import Backlog, QueueLost
from services.matching.config import MatchingConfig
from services.matching.pollers import Poller, PollerHistory, PollerQueue
from services.matching.stats import RateTracker
from services.matching.tasks import MatchTask, TaskSource

if TYPE_CHECKING:
    from temporalio.api.common.v1 import message_pb2 as common_pb

log = structlog.get_logger("durata.matching")

STICKY_UNAVAILABLE = "StickyWorkerUnavailable"


class TaskQueueManager:
    def __init__(
        self, key: TaskQueueKey, sticky: bool, store: TaskStore, config: MatchingConfig, clock: Clock
    ) -> None:
        self.key = key
        self.sticky = sticky
        self._config = config
        self._clock = clock
        self._pollers = PollerQueue()
        self._queries: deque[MatchTask] = deque()
        self._ready: deque[MatchTask] = deque()
        self.poller_history = PollerHistory(config.poller_history_ttl)
        self.add_rate = RateTracker()
        self.dispatch_rate = RateTracker()
        # Wall time of the last poll start/end (sticky liveness) and monotonic time of the last activity (unload).
        self.last_poll_time: datetime | None = None
        self.last_active = time.monotonic()
        self._backlog: Backlog | None = (
            None if sticky else Backlog(key, store, config, clock, self._offer, lambda: len(self._ready))
        )
        self._wake_reader = asyncio.Event()
        self._wake_flusher = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []
        self.closed = False
        self._labels = (key.namespace_id, key.name, metrics.task_type_label(key.task_type))
        self._type_label = metrics.task_type_label(key.task_type)
        self._gauge_set = False
        # Set by the service: a parked poller of another partition of this queue on this host, or None. A task
        # nobody waits for here goes to such a poller at once instead of waiting for one to come here.
        self.borrow_poller: Callable[[], Poller | None] | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self._backlog is not None:
            await self._backlog.load()
            self._loops = [
                asyncio.create_task(self._read_loop(), name=f"matching-reader-{self.key.name}"),
                asyncio.create_task(self._flush_loop(), name=f"matching-flusher-{self.key.name}"),
            ]
            self._wake_reader.set()

    async def stop(self) -> None:
        """End parked polls empty, fail queued queries, persist the ack level, stop background loops."""
        if self.closed:
            return
        self.closed = True
        self._pollers.end()
        self.fail_queries(Unavailable("task queue unloaded"))
        if self._backlog is not None:
            await self._backlog.close()
            try:
                await self._backlog.flush_ack()
            except Exception as err:  # noqa: BLE001 - unloading must finish; rows are re-read later
                log.warning("ack flush on unload failed", task_queue=self.key.name, error=repr(err))
            if self._gauge_set:
                metrics.BACKLOG_SIZE.remove(*self._labels)
        for loop in self._loops:
            loop.cancel()
        for loop in self._loops:
            try:
                await loop
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
        self._ready.clear()

    @property
    def lost(self) -> bool:
        return self._backlog is not None and self._backlog.lost

    def is_idle(self, idle_for: float) -> bool:
        return (
            time.monotonic() - self.last_active > idle_for
            and not self._pollers.has_waiting()
            and not self._queries
            and (self.sticky or not self._ready)
        )

    # ------------------------------------------------------------------ adding

    def sticky_alive(self) -> bool:
        if self._pollers.has_waiting():
            return True
        if self.last_poll_time is None:
            return False
        return (self._clock.now() - self.last_poll_time).total_seconds() <= self._config.sticky_liveness

    async def add_task(self, info: mpb.TaskInfo) -> None:
        """Sync match if a poller waits (no database write), else persist to the backlog."""
        self._check_open()
        if self.sticky and not self.sticky_alive():
            metrics.TASKS_ADDED.labels(self._type_label, "sticky_unavailable").inc()
            raise FailedPrecondition(STICKY_UNAVAILABLE)
        self.last_active = time.monotonic()
        self.add_rate.record()
        poller = self._pollers.pop_waiting()
        if poller is None and self.borrow_poller is not None:
            poller = self.borrow_poller()
        if poller is not None:
            outcome: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            task = MatchTask(info=info, source=TaskSource.SYNC, sync_outcome=outcome, owner=self)
            poller.future.set_result(task)
            delivered = False
            try:
                delivered = await asyncio.wait_for(
                    asyncio.shield(outcome), timeout=self._config.sync_match_wait
                )
            except TimeoutError:
                log.info("sync match unconfirmed; persisting task", task_queue=self.key.name)
            finally:
                task.abandoned = not delivered
            if delivered:
                metrics.TASKS_ADDED.labels(self._type_label, "sync").inc()
                return
        await self._add_to_backlog(info)

    async def _add_to_backlog(self, info: mpb.TaskInfo) -> None:
        metrics.TASKS_ADDED.labels(self._type_label, "backlog").inc()
        if self._backlog is None:
            self._offer(MatchTask(info=info, source=TaskSource.BACKLOG, owner=self))
            return
        await self._backlog.append(info)
        if self._backlog.wants_read():
            self._wake_reader.set()  # the task stayed in the database only: parked pollers must not miss it
        self._update_gauge()

    def add_query(self, task: MatchTask) -> None:
        self._check_open()
        if self.sticky and not self.sticky_alive():
            raise FailedPrecondition(STICKY_UNAVAILABLE)
        self.last_active = time.monotonic()
        self._offer(task)

    def remove_query(self, task: MatchTask) -> None:
        try:
            self._queries.remove(task)
        except ValueError:
            pass

    def fail_queries(self, err: Exception) -> None:
        while self._queries:
            task = self._queries.popleft()
            if task.query is not None and not task.query.result.done():
                task.query.result.set_exception(err)

    def _offer(self, task: MatchTask, front: bool = False) -> None:
        """Give a task to the first parked poller (here, else on a sibling partition on this host), else queue it
        (queries ahead of everything)."""
        if task.owner is None:
            task.owner = self
        poller = self._pollers.pop_waiting()
        if poller is None and self.borrow_poller is not None and not self.closed:
            poller = self.borrow_poller()
        if poller is not None:
            poller.future.set_result(task)
            return
        queue = self._queries if task.source is TaskSource.QUERY else self._ready
        if front:
            queue.appendleft(task)
        else:
            queue.append(task)

    def _check_open(self) -> None:
        if self.closed or self.lost:
            raise QueueLost(f"task queue {self.key.name!r} is not loaded on this host; retry")

    # ------------------------------------------------------------------ polling

    def record_poll(
        self, identity: str, rate_per_second: float, capabilities: common_pb.WorkerVersionCapabilities | None
    ) -> None:
        now = self._clock.now()
        self.last_poll_time = now
        self.last_active = time.monotonic()
        self.poller_history.record(identity, now, rate_per_second, capabilities)

    def _take(self) -> MatchTask | None:
        task: MatchTask | None = None
        if self._queries:
            task = self._queries.popleft()
        elif self._ready:
            task = self._ready.popleft()
        if self._backlog is not None and self._backlog.wants_read():
            self._wake_reader.set()
        return task

    def ready_since(self) -> float | None:
        """When the task ``take_ready`` would return was created (epoch seconds; queries sort first), or None if
        there is none: a poller serving several partitions takes the oldest task first."""
        if self.closed or self.lost:
            return None
        if self._queries:
            return float("-inf")
        if self._ready:
            created = self._ready[0].info.create_time
            return created.seconds + created.nanos * 1e-9
        return None

    def take_ready(self) -> MatchTask | None:
        """A task available right now, without waiting (None if there is none)."""
        if self.closed or self.lost:
            return None
        return self._take()

    async def poll(
        self, identity: str, poller_id: str, end: float, worker_instance_key: str = ""
    ) -> MatchTask | None:
        """Wait until a task is available or monotonic time ``end``; None = answer empty."""
        remaining = end - time.monotonic()
        if self.closed or self.lost or remaining <= 0:
            return None
        task = self._take()
        if task is not None:
            return task
        poller = Poller(identity=identity, poller_id=poller_id, worker_instance_key=worker_instance_key)
        self._pollers.append(poller)
        fut = poller.future
        try:
            await asyncio.wait({fut}, timeout=remaining)
        except asyncio.CancelledError:
            self._pollers.remove(poller)
            if fut.done() and not fut.cancelled() and fut.result() is not None:
                taken = fut.result()
                assert taken is not None
                (taken.owner or self).requeue(taken)
            else:
                fut.cancel()
            raise
        self._pollers.remove(poller)
        if not fut.done():
            fut.cancel()
            return None
        return fut.result()

    # ------------------------------------------------------------------ finishing

    def complete(self, task: MatchTask, delivered: bool) -> None:
        """The task left the queue for good: delivered, stale or expired."""
        if delivered:
            self.dispatch_rate.record()
        if task.sync_outcome is not None:
            if not task.sync_outcome.done():
                task.sync_outcome.set_result(True)
        elif task.task_id and self._backlog is not None:
            self._backlog.ack(task.task_id)
            self._wake_flusher.set()
            self._update_gauge()

    def requeue(self, task: MatchTask) -> None:
        """The task was not delivered (poller gone, History unavailable): make it available again."""
        if task.source is TaskSource.SYNC:
            # The adder is still waiting: it persists the task. Otherwise it already did (abandoned).
            if task.sync_outcome is not None and not task.sync_outcome.done():
                task.sync_outcome.set_result(False)
            return
        if task.source is TaskSource.QUERY and (task.query is None or task.query.result.done()):
            return
        if self.closed:
            return  # backlog rows are re-read by the next owner; queries were failed on close
        self._offer(task, front=True)

    # ------------------------------------------------------------------ background

    async def _read_loop(self) -> None:
        assert self._backlog is not None
        while not self.closed:
            await self._wake_reader.wait()
            self._wake_reader.clear()
            try:
                while self._backlog.wants_read():
                    if await self._backlog.read_more() == 0:
                        break
                self._update_gauge()
            except QueueLost:
                self._on_lost()
                return
            except Exception as err:  # noqa: BLE001 - keep the queue alive, retry later
                log.warning("backlog read failed", task_queue=self.key.name, error=repr(err))
                await asyncio.sleep(self._config.backlog_read_retry)
                self._wake_reader.set()

    async def _flush_loop(self) -> None:
        assert self._backlog is not None
        while not self.closed:
            await self._wake_flusher.wait()
            await asyncio.sleep(self._config.ack_flush_interval)
            self._wake_flusher.clear()
            try:
                await self._backlog.flush_ack()
            except QueueLost:
                self._on_lost()
                return
            except Exception as err:  # noqa: BLE001
                log.warning("ack flush failed", task_queue=self.key.name, error=repr(err))
                self._wake_flusher.set()

    def _on_lost(self) -> None:
        log.warning(
            "task queue lease lost; unloading", task_queue=self.key.name, task_type=self.key.task_type
        )
        self._pollers.end()

    async def flush(self) -> None:
        if self._backlog is not None:
            await self._backlog.flush_ack()

    # ------------------------------------------------------------------ stats

    def _update_gauge(self) -> None:
        if self._backlog is not None:
            metrics.BACKLOG_SIZE.labels(*self._labels).set(self._backlog.approximate_count())
            self._gauge_set = True

    def backlog_count(self) -> int:
        if self._backlog is None:
            return len(self._ready)
        return self._backlog.approximate_count()

    def backlog_age_seconds(self) -> float:
        now = self._clock.now()
        oldest: datetime | None = None
        if self._backlog is not None:
            oldest = self._backlog.oldest_create_time()
        elif self._ready and self._ready[0].info.HasField("create_time"):
            oldest = self._ready[0].info.create_time.ToDatetime(tzinfo=now.tzinfo)
        return max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0

    def status(self) -> tuple[int, int, int]:
        """(read_level, ack_level, range_id) for TaskQueueStatus."""
        if self._backlog is None:
            return 0, 0, 0
        return self._backlog.read_level, self._backlog.ack_level, self._backlog.range_id

    def pop_waiting_poller(self) -> Poller | None:
        """A parked poller of this partition, taken off the queue (for a sibling partition's task)."""
        if self.closed or self.lost:
            return None
        return self._pollers.pop_waiting()

    def waiting_pollers(self) -> int:
        return self._pollers.count_waiting()

    def end_polls(self, identity: str | None = None, worker_instance_key: str = "") -> int:
        return self._pollers.end(identity, worker_instance_key)


def new_task_info(
    namespace_id: str,
    workflow_id: str,
    run_id: str,
    scheduled_event_id: int,
    attempt: int,
    stamp: int,
    now: datetime,
    schedule_to_start: float,
) -> mpb.TaskInfo:
    info = mpb.TaskInfo(
        namespace_id=namespace_id,
        workflow_id=workflow_id,
        run_id=run_id,
        scheduled_event_id=scheduled_event_id,
        attempt=attempt,
        stamp=stamp,
    )
    info.create_time.FromDatetime(now)
    if schedule_to_start > 0:
        expiry = timestamp_pb2.Timestamp()
        expiry.FromMilliseconds(int((now.timestamp() + schedule_to_start) * 1000))
        info.expiry_time.CopyFrom(expiry)
    return info
