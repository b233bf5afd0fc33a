"""Visibility rows (plain columns plus typed custom search attribute slots) with list/count through the
parsed list-filter language."""

from __future__ import annotations

import json

from server.common.errors import InvalidArgument
from server.persistence.interface import VisibilityRecord
from server.persistence.schema import CUSTOM_SLOT_COLUMNS
from server.persistence.sql.tx import (
    Database,
    Row,
    fetch_one,
    from_micros,
    opt_datetime,
    opt_micros,
    to_micros,
)
from server.persistence.visibility_query import VisibilityFilter, custom_fields, parse_query, slot_value

_COLS = (
    "namespace_id, run_id, workflow_id, workflow_type, task_queue, status, start_time, execution_time, close_time, "
    "history_length, history_size_bytes, state_transition_count, parent_workflow_id, parent_run_id, "
    "root_workflow_id, root_run_id, memo, search_attributes"
)
_COL_NAMES = [c.strip() for c in _COLS.split(",")]
_WRITE_COLS = [*_COL_NAMES, *CUSTOM_SLOT_COLUMNS]
_UPSERT = (
    f"INSERT INTO executions_visibility ({', '.join(_WRITE_COLS)}) VALUES ({', '.join('?' * len(_WRITE_COLS))}) "
    "ON CONFLICT (namespace_id, run_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _WRITE_COLS[2:])
)


def _slot_args(values: dict[str, object]) -> list[object]:
    out: list[object] = []
    for column in CUSTOM_SLOT_COLUMNS:
        v = values.get(column)
        out.append(None if v is None else slot_value(column[:-2], v))
    return out


def _parse(query: str, search_attributes: dict[str, str] | None) -> VisibilityFilter:
    return parse_query(query, custom_fields(search_attributes))


def _record(row: Row) -> VisibilityRecord:
    return VisibilityRecord(
        namespace_id=row[0],
        run_id=row[1],
        workflow_id=row[2],
        workflow_type=row[3],
        task_queue=row[4],
        status=row[5],
        start_time=from_micros(row[6]),
        execution_time=from_micros(row[7]),
        close_time=opt_datetime(row[8]),
        history_length=row[9],
        history_size_bytes=row[10],
        state_transition_count=row[11],
        parent_workflow_id=row[12],
        parent_run_id=row[13],
        root_workflow_id=row[14],
        root_run_id=row[15],
        memo=bytes(row[16]),
        search_attributes=bytes(row[17]),
    )


def _decode_token(token: bytes) -> tuple[int, str]:
    try:
        data = json.loads(token)
        return int(data["start_time"]), str(data["run_id"])
    except (ValueError, KeyError, TypeError):
        raise InvalidArgument("invalid next_page_token") from None


class SqlVisibilityStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def upsert_execution(self, record: VisibilityRecord) -> None:
        r = record
        args = (
            r.namespace_id, r.run_id, r.workflow_id, r.workflow_type, r.task_queue, r.status,
            to_micros(r.start_time), to_micros(r.execution_time), opt_micros(r.close_time), r.history_length,
            r.history_size_bytes, r.state_transition_count, r.parent_workflow_id, r.parent_run_id,
            r.root_workflow_id, r.root_run_id, r.memo, r.search_attributes, *_slot_args(r.custom_values),
        )  # fmt: skip
        await self._db.execute_one(_UPSERT, *args)

    async def delete_execution(self, namespace_id: str, run_id: str) -> None:
        await self._db.execute_one(
            "DELETE FROM executions_visibility WHERE namespace_id = ? AND run_id = ?", namespace_id, run_id
        )

    async def list_executions(
        self,
        namespace_id: str,
        query: str,
        page_size: int,
        next_page_token: bytes | None,
        search_attributes: dict[str, str] | None = None,
    ) -> tuple[list[VisibilityRecord], bytes | None]:
        flt = _parse(query, search_attributes)
        if flt.group_by_status or flt.group_by:
            raise InvalidArgument("invalid query: GROUP BY is only supported by CountWorkflowExecutions")
        size = max(page_size, 1)
        sql = f"SELECT {_COLS} FROM executions_visibility WHERE namespace_id = ? AND ({flt.where})"
        args: list[object] = [namespace_id, *flt.params]
        if next_page_token:
            # Keyset pagination on (start_time, run_id) descending: stable while rows are being added.
            start, run_id = _decode_token(next_page_token)
            sql += " AND (start_time < ? OR (start_time = ? AND run_id < ?))"
            args += [start, start, run_id]
        sql += " ORDER BY start_time DESC, run_id DESC LIMIT ?"
        args.append(size + 1)

        rows = await self._db.fetch(sql, *args)
        page = [_record(r) for r in rows[:size]]
        token = None
        if len(rows) > size:
            last = rows[size - 1]
            token = json.dumps({"start_time": last[6], "run_id": last[1]}).encode()
        return page, token

    async def count_executions(
        self, namespace_id: str, query: str, search_attributes: dict[str, str] | None = None
    ) -> int:
        flt = _parse(query, search_attributes)

        row = await fetch_one(
            self._db,
            f"SELECT COUNT(*) FROM executions_visibility WHERE namespace_id = ? AND ({flt.where})",
            namespace_id,
            *flt.params,
        )
        return int(row[0]) if row else 0

    async def count_executions_by_status(
        self, namespace_id: str, query: str, search_attributes: dict[str, str] | None = None
    ) -> dict[int, int]:
        flt = _parse(query, search_attributes)

        rows = await self._db.fetch(
            f"SELECT status, COUNT(*) FROM executions_visibility WHERE namespace_id = ? AND ({flt.where}) "
            "GROUP BY status ORDER BY status",
            namespace_id,
            *flt.params,
        )
        return {int(r[0]): int(r[1]) for r in rows}

    async def count_executions_grouped(
        self, namespace_id: str, query: str, search_attributes: dict[str, str] | None = None
    ) -> list[tuple[str | None, int]]:
        flt = _parse(query, search_attributes)
        column = flt.group_by or "status"
        rows = await self._db.fetch(
            f"SELECT {column}, COUNT(*) FROM executions_visibility WHERE namespace_id = ? AND ({flt.where}) "
            f"GROUP BY {column} ORDER BY COUNT(*) DESC, {column}",
            namespace_id,
            *flt.params,
        )
        return [(None if r[0] is None else str(r[0]), int(r[1])) for r in rows]
