"""PostgreSQL's fast path for the hottest write: a run update as ONE statement.

The shared store (sql/executions.py) runs a run update as BEGIN, the fencing read, the CAS update, the event
insert, the task inserts and COMMIT: six round trips, each paid in asyncpg protocol work on the event loop and
in backend CPU on the same machine. Data-modifying CTEs do the same in one autocommitted statement: every
write is conditioned on the CAS update having matched (which is itself conditioned on the shard's range_id,
read FOR SHARE so a concurrent acquisition waits), so either all of it commits or none. The statement returns
the stored range_id and whether the run row matched, so the caller raises exactly what the shared path does.
Updates that also create a run (continue-as-new, retries, cron) keep the shared multi-statement path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from server.persistence.interface import HistoryTask, NewRun, RunUpdate, TaskCategory
from server.persistence.sql.executions import SqlExecutionStore, run_changed
from server.persistence.sql.stores import shard_lost
from server.persistence.sql.tx import to_micros

if TYPE_CHECKING:
    from server.persistence.postgres.db import PostgresDatabase

_TASKS = (
    "SELECT $1::int, x.c, x.i, x.v, x.ns, x.wf, x.run, x.d FROM u, "
    "unnest({c}::int[], {i}::bigint[], {v}::bigint[], {ns}::text[], {wf}::text[], {run}::text[], {d}::bytea[]) "
    "AS x(c, i, v, ns, wf, run, d)"
)

UPDATE_RUN_SQL = f"""
WITH s AS (SELECT range_id FROM shards WHERE shard_id = $1 FOR SHARE),
u AS (
    UPDATE executions SET next_event_id = $6, db_record_version = $7, state = $8, status = $9, data = $10
    WHERE shard_id = $1 AND namespace_id = $2 AND workflow_id = $3 AND run_id = $4 AND db_record_version = $11
      AND (SELECT range_id FROM s) = $5
    RETURNING 1
),
h AS (
    INSERT INTO history_node (shard_id, namespace_id, workflow_id, run_id, first_event_id, txn_id, last_event_id, data)
    SELECT $1::int, $2::text, $3::text, $4::text, $12::bigint, $13::bigint, $14::bigint, $15::bytea FROM u
    WHERE $16::boolean
),
t AS (
    INSERT INTO history_tasks (shard_id, category, task_id, visibility_time, namespace_id, workflow_id, run_id, data)
    {_TASKS.format(c="$17", i="$18", v="$19", ns="$20", wf="$21", run="$22", d="$23")}
),
st AS (
    INSERT INTO history_scheduled_tasks
        (shard_id, category, task_id, visibility_time, namespace_id, workflow_id, run_id, data)
    {_TASKS.format(c="$24", i="$25", v="$26", ns="$27", wf="$28", run="$29", d="$30")}
),
c AS (
    UPDATE current_executions SET state = $8, status = $9
    WHERE shard_id = $1 AND namespace_id = $2 AND workflow_id = $3 AND run_id = $4 AND $31::boolean
      AND EXISTS (SELECT 1 FROM u)
)
SELECT (SELECT range_id FROM s), EXISTS (SELECT 1 FROM u)
"""


def _columns(tasks: list[HistoryTask]) -> list[list[Any]]:
    return [
        [int(t.category) for t in tasks],
        [t.task_id for t in tasks],
        [to_micros(t.visibility_time) for t in tasks],
        [t.namespace_id for t in tasks],
        [t.workflow_id for t in tasks],
        [t.run_id for t in tasks],
        [t.data for t in tasks],
    ]


class PgExecutionStore(SqlExecutionStore):
    def __init__(self, db: PostgresDatabase) -> None:
        super().__init__(db)
        self._pg = db

    async def update_workflow_execution(
        self, shard_id: int, range_id: int, update: RunUpdate, new_run: NewRun | None = None
    ) -> None:
        if new_run is not None:
            await super().update_workflow_execution(shard_id, range_id, update, new_run)
            return
        e, b = update.execution, update.events
        immediate = [t for t in update.tasks if t.category != TaskCategory.TIMER]
        scheduled = [t for t in update.tasks if t.category == TaskCategory.TIMER]
        row = await self._pg.fetchrow_native(
            UPDATE_RUN_SQL,
            shard_id, e.namespace_id, e.workflow_id, e.run_id, range_id,
            e.next_event_id, e.db_record_version, e.state, e.status, e.data, update.expected_db_record_version,
            b.first_event_id if b else 0, b.txn_id if b else 0, b.last_event_id if b else 0, b.data if b else b"",
            b is not None,
            *_columns(immediate), *_columns(scheduled),
            update.update_current,
        )
        stored_range, matched = (row[0], row[1]) if row is not None else (None, False)
        if stored_range != range_id:
            raise shard_lost(shard_id, range_id, stored_range)
        if not matched:
            raise run_changed(update)
