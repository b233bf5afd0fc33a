"""PostgreSQL's single-statement backlog write: the lease check and the insert in one round trip.

Same contract as the shared ``SqlTaskStore.create_tasks`` (lease read FOR SHARE, so a concurrent lease renewal
waits; nothing is written unless the caller still holds the lease), as one autocommitted statement instead of
BEGIN / SELECT / INSERT / COMMIT.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from server.persistence.interface import TaskQueueKey, TaskRecord
from server.persistence.sql.stores import SqlTaskStore, lease_lost
from server.persistence.sql.tx import opt_micros

if TYPE_CHECKING:
    from server.persistence.postgres.db import PostgresDatabase

CREATE_TASKS_SQL = """
WITH q AS (
    SELECT range_id FROM task_queues
    WHERE namespace_id = $1 AND name = $2 AND task_type = $3 AND partition = $4 FOR SHARE
),
ins AS (
    INSERT INTO tasks (namespace_id, name, task_type, partition, task_id, expiry_time, data)
    SELECT $1::text, $2::text, $3::int, $4::int, x.i, x.e, x.d
    FROM q, unnest($6::bigint[], $7::bigint[], $8::bytea[]) AS x(i, e, d)
    WHERE q.range_id = $5
)
SELECT (SELECT range_id FROM q)
"""


class PgTaskStore(SqlTaskStore):
    def __init__(self, db: PostgresDatabase) -> None:
        super().__init__(db)
        self._pg = db

    async def create_tasks(self, key: TaskQueueKey, range_id: int, tasks: Sequence[TaskRecord]) -> None:
        row = await self._pg.fetchrow_native(
            CREATE_TASKS_SQL,
            key.namespace_id, key.name, key.task_type, key.partition, range_id,
            [t.task_id for t in tasks], [opt_micros(t.expiry_time) for t in tasks], [t.data for t in tasks],
        )  # fmt: skip
        if row is None or row[0] != range_id:
            raise lease_lost(key, range_id)
