"""Executions, current-run pointers, history batches and history tasks on the shared SQL layer.

Every write is one transaction that first checks the shard's range_id (fencing), so a stale shard owner can
never commit: the transactional-outbox invariant (events + mutable state + tasks together) holds per call.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from server.common.errors import ConditionFailed, CurrentRunConflict
from server.persistence.interface import (
    CurrentExecutionRecord,
    CurrentRunMode,
    ExecutionRecord,
    HistoryBatch,
    HistoryTask,
    NewRun,
    RunUpdate,
    TaskCategory,
)
from server.persistence.sql.stores import check_shard_range
from server.persistence.sql.tx import (
    Database,
    Row,
    Tx,
    fetch_one,
    from_micros,
    lock_suffix,
    opt_datetime,
    to_micros,
)

_RUN_WHERE = "shard_id = ? AND namespace_id = ? AND workflow_id = ? AND run_id = ?"
_CURRENT_WHERE = "shard_id = ? AND namespace_id = ? AND workflow_id = ?"
_TASK_COLS = "category, task_id, visibility_time, namespace_id, workflow_id, run_id, data"


async def _insert_events(tx: Tx, shard_id: int, e: ExecutionRecord, batch: HistoryBatch) -> None:
    await tx.execute(
        "INSERT INTO history_node (shard_id, namespace_id, workflow_id, run_id, first_event_id, txn_id, "
        "last_event_id, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        shard_id,
        e.namespace_id,
        e.workflow_id,
        e.run_id,
        batch.first_event_id,
        batch.txn_id,
        batch.last_event_id,
        batch.data,
    )


async def _insert_tasks(tx: Tx, shard_id: int, tasks: Sequence[HistoryTask]) -> None:
    immediate = [t for t in tasks if t.category != TaskCategory.TIMER]
    scheduled = [t for t in tasks if t.category == TaskCategory.TIMER]
    if immediate:
        await tx.executemany(
            f"INSERT INTO history_tasks (shard_id, {_TASK_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    shard_id,
                    int(t.category),
                    t.task_id,
                    to_micros(t.visibility_time),
                    t.namespace_id,
                    t.workflow_id,
                    t.run_id,
                    t.data,
                )
                for t in immediate
            ],
        )
    if scheduled:
        await tx.executemany(
            f"INSERT INTO history_scheduled_tasks (shard_id, {_TASK_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    shard_id,
                    int(t.category),
                    t.task_id,
                    to_micros(t.visibility_time),
                    t.namespace_id,
                    t.workflow_id,
                    t.run_id,
                    t.data,
                )
                for t in scheduled
            ],
        )


def _task(row: Row) -> HistoryTask:
    return HistoryTask(
        category=TaskCategory(row[0]),
        task_id=row[1],
        visibility_time=from_micros(row[2]),
        namespace_id=row[3],
        workflow_id=row[4],
        run_id=row[5],
        data=bytes(row[6]),
    )


_CURRENT_SELECT = f"SELECT run_id, create_request_id, state, status, start_time FROM current_executions WHERE {_CURRENT_WHERE}"


async def _read_current(tx: Tx, shard_id: int, namespace_id: str, workflow_id: str, lock: bool) -> Row | None:
    suffix = lock_suffix(tx, "UPDATE") if lock else ""
    return await tx.fetchone(_CURRENT_SELECT + suffix, shard_id, namespace_id, workflow_id)


def _conflict(row: Row | None, message: str) -> CurrentRunConflict:
    if row is None:
        return CurrentRunConflict(message, current_run_id="", request_id="", state=0, status=0)
    return CurrentRunConflict(message, current_run_id=row[0], request_id=row[1], state=row[2], status=row[3])


async def _create_run(tx: Tx, shard_id: int, new_run: NewRun) -> None:
    """Compare-and-swap the current-run row, then insert the run, its first events and its tasks."""
    e = new_run.execution
    start = to_micros(new_run.start_time)
    current = await _read_current(tx, shard_id, e.namespace_id, e.workflow_id, lock=True)
    if new_run.current_mode == CurrentRunMode.BRAND_NEW:
        if current is not None:
            raise _conflict(current, f"workflow {e.workflow_id!r} already has a current run {current[0]}")
        inserted = await tx.execute(
            "INSERT INTO current_executions (shard_id, namespace_id, workflow_id, run_id, create_request_id, "
            "state, status, start_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            shard_id,
            e.namespace_id,
            e.workflow_id,
            e.run_id,
            new_run.create_request_id,
            e.state,
            e.status,
            start,
        )
        if inserted == 0:  # a concurrent creator won between our read and insert (PostgreSQL only)
            current = await _read_current(tx, shard_id, e.namespace_id, e.workflow_id, lock=False)
            raise _conflict(current, f"workflow {e.workflow_id!r} already has a current run")
    else:
        if current is None or current[0] != new_run.previous_run_id:
            have = "no current run" if current is None else f"current run {current[0]}"
            raise _conflict(
                current,
                f"workflow {e.workflow_id!r}: expected current run {new_run.previous_run_id}, found {have}",
            )
        await tx.execute(
            f"UPDATE current_executions SET run_id = ?, create_request_id = ?, state = ?, status = ?, "
            f"start_time = ? WHERE {_CURRENT_WHERE}",
            e.run_id,
            new_run.create_request_id,
            e.state,
            e.status,
            start,
            shard_id,
            e.namespace_id,
            e.workflow_id,
        )
    # A duplicate run id (or task id) violates a primary key: the backend maps that to ConditionFailed.
    await tx.execute(
        "INSERT INTO executions (shard_id, namespace_id, workflow_id, run_id, next_event_id, db_record_version, "
        "state, status, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        shard_id,
        e.namespace_id,
        e.workflow_id,
        e.run_id,
        e.next_event_id,
        e.db_record_version,
        e.state,
        e.status,
        e.data,
    )
    await _insert_events(tx, shard_id, e, new_run.events)
    await _insert_tasks(tx, shard_id, new_run.tasks)


def run_changed(update: RunUpdate) -> ConditionFailed:
    e = update.execution
    return ConditionFailed(
        f"run {e.run_id} of workflow {e.workflow_id!r} changed concurrently or is gone "
        f"(expected db_record_version {update.expected_db_record_version})"
    )


async def _update_run(tx: Tx, shard_id: int, update: RunUpdate) -> None:
    e = update.execution
    changed = await tx.execute(
        f"UPDATE executions SET next_event_id = ?, db_record_version = ?, state = ?, status = ?, data = ? "
        f"WHERE {_RUN_WHERE} AND db_record_version = ?",
        e.next_event_id,
        e.db_record_version,
        e.state,
        e.status,
        e.data,
        shard_id,
        e.namespace_id,
        e.workflow_id,
        e.run_id,
        update.expected_db_record_version,
    )
    if changed == 0:
        raise run_changed(update)
    if update.events is not None:
        await _insert_events(tx, shard_id, e, update.events)
    await _insert_tasks(tx, shard_id, update.tasks)
    if update.update_current:
        await tx.execute(
            f"UPDATE current_executions SET state = ?, status = ? WHERE {_CURRENT_WHERE} AND run_id = ?",
            e.state,
            e.status,
            shard_id,
            e.namespace_id,
            e.workflow_id,
            e.run_id,
        )


class SqlExecutionStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create_workflow_execution(self, shard_id: int, range_id: int, new_run: NewRun) -> None:
        async def op(tx: Tx) -> None:
            await check_shard_range(tx, shard_id, range_id)
            await _create_run(tx, shard_id, new_run)

        await self._db.run(op)

    async def update_workflow_execution(
        self, shard_id: int, range_id: int, update: RunUpdate, new_run: NewRun | None = None
    ) -> None:
        async def op(tx: Tx) -> None:
            await check_shard_range(tx, shard_id, range_id)
            await _update_run(tx, shard_id, update)
            if new_run is not None:
                await _create_run(tx, shard_id, new_run)

        await self._db.run(op)

    async def get_workflow_execution(
        self, shard_id: int, namespace_id: str, workflow_id: str, run_id: str
    ) -> ExecutionRecord | None:
        row = await fetch_one(
            self._db,
            f"SELECT next_event_id, db_record_version, state, status, data FROM executions WHERE {_RUN_WHERE}",
            shard_id,
            namespace_id,
            workflow_id,
            run_id,
        )
        if row is None:
            return None
        return ExecutionRecord(
            namespace_id=namespace_id,
            workflow_id=workflow_id,
            run_id=run_id,
            data=bytes(row[4]),
            next_event_id=row[0],
            db_record_version=row[1],
            state=row[2],
            status=row[3],
        )

    async def get_current_execution(
        self, shard_id: int, namespace_id: str, workflow_id: str
    ) -> CurrentExecutionRecord | None:
        row = await fetch_one(self._db, _CURRENT_SELECT, shard_id, namespace_id, workflow_id)
        if row is None:
            return None
        return CurrentExecutionRecord(
            namespace_id=namespace_id,
            workflow_id=workflow_id,
            run_id=row[0],
            create_request_id=row[1],
            state=row[2],
            status=row[3],
            start_time=opt_datetime(row[4]),
        )

    async def read_history(
        self,
        shard_id: int,
        namespace_id: str,
        workflow_id: str,
        run_id: str,
        min_event_id: int,
        max_event_id: int,
    ) -> list[HistoryBatch]:
        rows = await self._db.fetch(
            f"SELECT first_event_id, last_event_id, data, txn_id FROM history_node WHERE {_RUN_WHERE} "
            "AND first_event_id < ? AND last_event_id >= ? ORDER BY first_event_id, txn_id",
            shard_id,
            namespace_id,
            workflow_id,
            run_id,
            max_event_id,
            min_event_id,
        )
        by_node: dict[int, HistoryBatch] = {}
        for r in rows:
            # Ascending txn_id: a later write of the same node replaces the earlier one.
            by_node[r[0]] = HistoryBatch(
                first_event_id=r[0], last_event_id=r[1], data=bytes(r[2]), txn_id=r[3]
            )
        return list(by_node.values())

    async def delete_workflow_execution(
        self, shard_id: int, range_id: int, namespace_id: str, workflow_id: str, run_id: str
    ) -> None:
        key = (shard_id, namespace_id, workflow_id, run_id)

        async def op(tx: Tx) -> None:
            await check_shard_range(tx, shard_id, range_id)
            await tx.execute(f"DELETE FROM executions WHERE {_RUN_WHERE}", *key)
            await tx.execute(f"DELETE FROM history_node WHERE {_RUN_WHERE}", *key)
            await tx.execute(f"DELETE FROM current_executions WHERE {_CURRENT_WHERE} AND run_id = ?", *key)

        await self._db.run(op)

    async def get_immediate_tasks(
        self, shard_id: int, category: TaskCategory, exclusive_min_task_id: int, max_task_id: int, limit: int
    ) -> list[HistoryTask]:
        rows = await self._db.fetch(
            f"SELECT {_TASK_COLS} FROM history_tasks WHERE shard_id = ? AND category = ? AND task_id > ? "
            "AND task_id <= ? ORDER BY task_id LIMIT ?",
            shard_id,
            int(category),
            exclusive_min_task_id,
            max_task_id,
            limit,
        )
        return [_task(r) for r in rows]

    async def get_scheduled_tasks(
        self, shard_id: int, exclusive_min: tuple[datetime, int], max_time: datetime, limit: int
    ) -> list[HistoryTask]:
        min_time, min_id = to_micros(exclusive_min[0]), exclusive_min[1]

        # Row-value comparison spelled out: both engines use the primary key index for it.
        rows = await self._db.fetch(
            f"SELECT {_TASK_COLS} FROM history_scheduled_tasks WHERE shard_id = ? "
            "AND (visibility_time > ? OR (visibility_time = ? AND task_id > ?)) AND visibility_time <= ? "
            "ORDER BY visibility_time, task_id LIMIT ?",
            shard_id,
            min_time,
            min_time,
            min_id,
            to_micros(max_time),
            limit,
        )
        return [_task(r) for r in rows]

    async def complete_immediate_tasks(
        self, shard_id: int, category: TaskCategory, task_ids: Sequence[int]
    ) -> None:
        if not task_ids:
            return
        if self._db.dialect == "postgresql":
            await self._db.execute_one(
                "DELETE FROM history_tasks WHERE shard_id = ? AND category = ? AND task_id = ANY(?::bigint[])",
                shard_id, int(category), list(task_ids),
            )  # fmt: skip
            return

        async def op(tx: Tx) -> None:
            await tx.executemany(
                "DELETE FROM history_tasks WHERE shard_id = ? AND category = ? AND task_id = ?",
                [(shard_id, int(category), task_id) for task_id in task_ids],
            )

        await self._db.run(op)

    async def complete_scheduled_tasks(self, shard_id: int, keys: Sequence[tuple[datetime, int]]) -> None:
        if not keys:
            return
        if self._db.dialect == "postgresql":
            await self._db.execute_one(
                "DELETE FROM history_scheduled_tasks WHERE shard_id = ? AND (visibility_time, task_id) IN "
                "(SELECT * FROM unnest(?::bigint[], ?::bigint[]))",
                shard_id, [to_micros(when) for when, _ in keys], [task_id for _, task_id in keys],
            )  # fmt: skip
            return

        async def op(tx: Tx) -> None:
            await tx.executemany(
                "DELETE FROM history_scheduled_tasks WHERE shard_id = ? AND visibility_time = ? AND task_id = ?",
                [(shard_id, to_micros(when), task_id) for when, task_id in keys],
            )

        await self._db.run(op)
