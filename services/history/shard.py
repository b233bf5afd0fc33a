"""A shard owned by this host: range-id fencing, task-id allocation, the mutable-state cache, per-workflow
locks, and the one-persistence-call-per-state-change commit (transactional outbox)."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import structlog
from temporalio.api.history.v1 import message_pb2 as history_pb2

from server.common.clock import Clock
from server.common.errors import (
    ConditionFailed,
    CurrentRunConflict,
    NotFound,
    ShardOwnershipLost,
    Unavailable,
)
from server.common.sharding import task_id_range
from server.gen.durata.internal.history.v1 import state_pb2
from server.persistence.interface import (
    CurrentRunMode,
    ExecutionRecord,
    HistoryBatch,
    HistoryTask,
    NewRun,
    Persistence,
    RunUpdate,
    ShardRecord,
    TaskCategory,
)

from .config import HistoryConfig
from .events import encode_batch
from .mutable_state import MutableState
from .namespaces import NamespaceCache
from .notifier import Notifier

log = structlog.get_logger("durata.history.shard")
R = TypeVar("R")
EVENT_TAIL_MAX = 256  # events kept per cached run
RunKey = tuple[str, str, str]


class TaskSink(Protocol):
    """What a queue processor exposes to its shard (see queues.QueueProcessor)."""

    def add_tasks(self, tasks: list[HistoryTask]) -> None:
        """Tasks whose transaction has committed."""

    def request_read(self) -> None:
        """Tasks may have been written without being handed over: read the database."""


@dataclass
class CachedRun:
    record: state_pb2.MutableState
    db_record_version: int
    # The run's most recent committed events, contiguous and ending at record.next_event_id - 1: what the
    # next sticky WFT, an activity start or a result fetch reads, served without a history read.
    events: list[history_pb2.HistoryEvent] = field(default_factory=list)


class ShardContext:
    def __init__(
        self,
        shard_id: int,
        persistence: Persistence,
        clock: Clock,
        config: HistoryConfig,
        host_identity: str,
        namespaces: NamespaceCache,
        notifier: Notifier,
        on_lost: Callable[[int], None],
    ) -> None:
        self.shard_id = shard_id
        self.persistence = persistence
        self.clock = clock
        self.config = config
        self.host_identity = host_identity
        self.namespaces = namespaces
        self.notifier = notifier
        self._on_lost = on_lost
        # Queue processors of this shard register here: committed tasks are handed to them in memory.
        self._queues: dict[TaskCategory, TaskSink] = {}
        self.range_id = 0
        self._next_task_id = 0
        self._max_task_id = 0
        self._cache: OrderedDict[RunKey, CachedRun] = OrderedDict()
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._lock_users: dict[tuple[str, str], int] = {}
        self._range_lock = asyncio.Lock()
        self.lost = False
        self.log = log.bind(shard_id=shard_id)

    # ------------------------------------------------------------------ ownership and task ids

    async def acquire(self) -> None:
        rec = await self.persistence.shards.get_or_create_shard(self.shard_id)
        await self._renew_range(rec)

    async def _renew_range(self, rec: ShardRecord) -> None:
        new = ShardRecord(self.shard_id, rec.range_id + 1, rec.data, self.host_identity)
        await self.persistence.shards.update_shard(new, expected_range_id=rec.range_id)
        self.range_id = new.range_id
        self._next_task_id, self._max_task_id = task_id_range(new.range_id)
        self.log.info("shard acquired", range_id=new.range_id)

    async def _allocate_task_ids(self, n: int) -> list[int]:
        async with self._range_lock:
            if self._next_task_id + n > self._max_task_id:
                try:
                    await self._renew_range(ShardRecord(self.shard_id, self.range_id, b"", self.host_identity))
                except ShardOwnershipLost:
                    self._lose()
                    raise
            ids = list(range(self._next_task_id, self._next_task_id + n))
            self._next_task_id += n
            return ids

    def _lose(self) -> None:
        if not self.lost:
            self.lost = True
            self.log.warning("shard ownership lost")
            self._on_lost(self.shard_id)

    def check_owned(self) -> None:
        if self.lost:
            raise ShardOwnershipLost(self.shard_id)

    # ------------------------------------------------------------------ locks and cache

    def lock(self, namespace_id: str, workflow_id: str) -> _WorkflowLock:
        return _WorkflowLock(self, (namespace_id, workflow_id))

    def _cache_put(
        self, key: RunKey, record: state_pb2.MutableState, version: int, events: list[history_pb2.HistoryEvent] | None = None
    ) -> None:
        self._cache[key] = CachedRun(record, version, events or [])
        self._cache.move_to_end(key)
        while len(self._cache) > self.config.mutable_state_cache_size:
            self._cache.popitem(last=False)

    def evict(self, key: RunKey) -> None:
        self._cache.pop(key, None)

    def cached_events(self, key: RunKey, first: int, end: int) -> list[history_pb2.HistoryEvent] | None:
        """Committed events first <= id < end if the cache holds all of them (shared objects: read only)."""
        cached = self._cache.get(key)
        if cached is None or not cached.events:
            return None
        lo, hi = cached.events[0].event_id, cached.events[-1].event_id
        if first < lo or end - 1 > hi:
            return None
        return cached.events[first - lo : end - lo]

    def _event_tail(self, key: RunKey, ms: MutableState) -> list[history_pb2.HistoryEvent]:
        """The cached tail extended by this commit's events, trimmed to what the next WFT can still ask for."""
        prev = self._cache.get(key)
        new = ms.new_events
        if not new:
            return prev.events if prev is not None else []
        tail = list(new)
        if prev is not None and prev.events and prev.events[-1].event_id + 1 == new[0].event_id:
            tail = prev.events + tail
        low = ms.record.last_completed_wft_started_event_id
        if low and tail[0].event_id <= low:
            tail = tail[min(low - tail[0].event_id + 1, len(tail)) :]
        return tail[-EVENT_TAIL_MAX:]

    async def load(self, namespace_id: str, workflow_id: str, run_id: str) -> MutableState | None:
        """A private copy of the run's mutable state (cache, else database), or None."""
        self.check_owned()
        key = (namespace_id, workflow_id, run_id)
        cached = self._cache.get(key)
        if cached is None:
            rec = await self.persistence.executions.get_workflow_execution(self.shard_id, namespace_id, workflow_id, run_id)
            if rec is None:
                return None
            record = state_pb2.MutableState()
            record.ParseFromString(rec.data)
            cached = CachedRun(record, rec.db_record_version)
            self._cache_put(key, record, rec.db_record_version)
        copy = state_pb2.MutableState()
        copy.CopyFrom(cached.record)
        ns = await self.namespaces.get(namespace_id)
        ms = MutableState(copy, self.clock.now(), cached.db_record_version, ns.retention, ns.name)
        ms.suggest_can_events = self.config.suggest_continue_as_new_history_count
        ms.suggest_can_bytes = self.config.suggest_continue_as_new_history_size_bytes
        return ms

    async def current_run_id(self, namespace_id: str, workflow_id: str) -> str | None:
        cur = await self.persistence.executions.get_current_execution(self.shard_id, namespace_id, workflow_id)
        return cur.run_id if cur is not None else None

    # ------------------------------------------------------------------ transactions

    async def update_run(
        self, namespace_id: str, workflow_id: str, run_id: str, fn: Callable[[MutableState], R], *, locked: bool = False
    ) -> tuple[R, MutableState]:
        """Load -> fn (sans-IO) -> one persistence call; retried on optimistic-concurrency conflicts."""
        if not locked:
            async with self.lock(namespace_id, workflow_id):
                return await self.update_run(namespace_id, workflow_id, run_id, fn, locked=True)
        key = (namespace_id, workflow_id, run_id)
        for _ in range(self.config.condition_retries):
            ms = await self.load(namespace_id, workflow_id, run_id)
            if ms is None:
                raise NotFound(f"Workflow execution not found: {workflow_id}/{run_id}")
            result = fn(ms)
            if not ms.changed:
                return result, ms
            try:
                await self.commit_update(ms, new_run=ms.new_run)
            except ConditionFailed:
                self.evict(key)
                continue
            except BaseException:
                self.evict(key)  # the write may or may not have happened: reload next time
                raise
            return result, ms
        raise Unavailable("Too many concurrent updates of the workflow; try again.")

    async def _tasks(self, ms: MutableState) -> list[HistoryTask]:
        ids = await self._allocate_task_ids(len(ms.tasks) + 1)
        r = ms.record
        out = [
            HistoryTask(t.category, tid, t.visibility_time, r.namespace_id, r.workflow_id, r.run_id, t.info.SerializeToString())
            for t, tid in zip(ms.tasks, ids[1:], strict=True)
        ]
        for ev in ms.new_events:
            ev.task_id = ids[0]
        return out

    def _batch(self, ms: MutableState, txn_id: int) -> HistoryBatch | None:
        if not ms.new_events:
            return None
        return HistoryBatch(ms.new_events[0].event_id, ms.new_events[-1].event_id, encode_batch(ms.new_events), txn_id)

    @staticmethod
    def _exec_record(ms: MutableState, version: int) -> ExecutionRecord:
        r = ms.record
        return ExecutionRecord(
            r.namespace_id, r.workflow_id, r.run_id, r.SerializeToString(), r.next_event_id, version, r.state, r.status
        )

    async def commit_update(self, ms: MutableState, new_run: MutableState | None = None) -> None:
        self.check_owned()
        tasks = await self._tasks(ms)
        ms.record.state_transition_count += 1
        update = RunUpdate(
            execution=self._exec_record(ms, ms.db_record_version + 1),
            expected_db_record_version=ms.db_record_version,
            events=self._batch(ms, tasks[0].task_id if tasks else 0),
            tasks=tasks,
        )
        nr = await self._new_run(new_run, CurrentRunMode.SWAP, ms.record.run_id) if new_run is not None else None
        await self._guard(self.persistence.executions.update_workflow_execution(self.shard_id, self.range_id, update, nr))
        self._committed(ms, ms.db_record_version + 1, tasks)
        if new_run is not None and nr is not None:
            self._committed(new_run, 1, nr.tasks)

    async def _new_run(self, ms: MutableState, mode: CurrentRunMode, previous_run_id: str) -> NewRun:
        tasks = await self._tasks(ms)
        ms.record.state_transition_count += 1
        batch = self._batch(ms, tasks[0].task_id if tasks else 0)
        assert batch is not None
        return NewRun(
            execution=self._exec_record(ms, 1),
            events=batch,
            current_mode=mode,
            create_request_id=ms.record.create_request_id,
            start_time=ms.now,
            previous_run_id=previous_run_id,
            tasks=tasks,
        )

    async def commit_new_run(self, ms: MutableState, mode: CurrentRunMode, previous_run_id: str = "") -> None:
        """Raises CurrentRunConflict if the current-run row is not as expected."""
        self.check_owned()
        nr = await self._new_run(ms, mode, previous_run_id)
        await self._guard(self.persistence.executions.create_workflow_execution(self.shard_id, self.range_id, nr))
        self._committed(ms, 1, nr.tasks)

    async def _guard(self, call: Awaitable[None]) -> None:
        try:
            await call
        except ShardOwnershipLost:
            self._lose()
            raise ShardOwnershipLost(self.shard_id) from None
        except (ConditionFailed, CurrentRunConflict):
            raise  # definitely not written
        except BaseException:
            # The write may or may not have committed (timeout, lost connection, cancellation): its tasks were
            # not handed over, so let the queues read the database.
            for q in list(self._queues.values()):
                q.request_read()
            raise

    # ------------------------------------------------------------------ queues

    def register_queue(self, category: TaskCategory, sink: TaskSink) -> None:
        self._queues[category] = sink

    def unregister_queue(self, category: TaskCategory, sink: TaskSink) -> None:
        if self._queues.get(category) is sink:
            del self._queues[category]

    def _committed(self, ms: MutableState, version: int, tasks: list[HistoryTask]) -> None:
        r = ms.record
        key = (r.namespace_id, r.workflow_id, r.run_id)
        stored = state_pb2.MutableState()
        stored.CopyFrom(r)
        self._cache_put(key, stored, version, self._event_tail(key, ms))
        ms.db_record_version = version
        if ms.new_events or ms.dirty:
            self.notifier.notify(key)
        if not tasks:
            return
        # Called only after the transaction committed: hand the tasks to this shard's processors in memory.
        by_category: dict[TaskCategory, list[HistoryTask]] = {}
        for t in tasks:
            by_category.setdefault(t.category, []).append(t)
        for cat, ts in by_category.items():
            # Processors register when the shard is acquired, with no await in between, so a sink exists for
            # every commit; after a release, the next owner reads the tables anyway.
            sink = self._queues.get(cat)
            if sink is not None:
                sink.add_tasks(ts)


class _WorkflowLock:
    """Serializes all updates of one workflow id (all its runs) within the shard."""

    def __init__(self, shard: ShardContext, key: tuple[str, str]) -> None:
        self._shard = shard
        self._key = key

    async def __aenter__(self) -> None:
        s = self._shard
        lock = s._locks.get(self._key)
        if lock is None:
            lock = s._locks[self._key] = asyncio.Lock()
        s._lock_users[self._key] = s._lock_users.get(self._key, 0) + 1
        await lock.acquire()

    async def __aexit__(self, *exc: object) -> None:
        s = self._shard
        s._locks[self._key].release()
        n = s._lock_users[self._key] - 1
        if n:
            s._lock_users[self._key] = n
        else:
            del s._lock_users[self._key]
            del s._locks[self._key]
