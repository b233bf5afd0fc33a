"""Visibility rows (plain columns plus typed custom search attribute slots) with list/count through the
parsed list-filter language."""

from __future__ import annotations

import json

from server.common.errors import InvalidArgument
from server.persistence.interface import VisibilityRecord
from server.persistence.schema import ATTRIBUTE_COLUMN_KINDS
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
_WRITE_COLS = [*_COL_NAMES, *ATTRIBUTE_COLUMN_KINDS]
_UPSERT = (
    f"INSERT INTO executions_visibility ({', '.join(_WRITE_COLS)}) VALUES ({', '.join('?' * len(_WRITE_COLS))}) "
    "ON CONFLICT (namespace_id, run_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _WRITE_COLS[2:])
)


def _slot_args(values: dict[str, object]) -> list[object]:
    out: list[object] = []
    for column, kind in ATTRIBUTE_COLUMN_KINDS.items():
        v = values.get(column)
        out.append(None if v is None else slot_value(kind, v))
    return out


def _parse(query: str, search_attributes: dict[str, str] | None, dialect: str) -> VisibilityFilter:
    return parse_query(query, custom_fields(search_attributes), dialect)


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


def _decode_token(token: bytes, keys: int) -> tuple[list[object], str]:
    """(sort values, run id) of the last row of the previous page; a token of another query's order is refused."""
    try:
        data = json.loads(token)
        if keys:
            values = list(data["order"])
            if len(values) != keys:
                raise ValueError
        else:
            values = [int(data["start_time"])]
        return values, str(data["run_id"])
    except (ValueError, KeyError, TypeError):
        raise InvalidArgument("invalid next_page_token") from None


def _encode_token(values: list[object], run_id: str, keys: int) -> bytes:
    if keys:
        return json.dumps({"order": values, "run_id": run_id}).encode()
    return json.dumps({"start_time": values[0], "run_id": run_id}).encode()


def _after(order: list[tuple[str, bool]], values: list[object], run_id: str) -> tuple[str, list[object]]:
    """Keyset condition "sorts after (values, run_id)" for ``ORDER BY k1 [DESC] NULLS LAST, ..., run_id DESC``:
    OR over each key of (earlier keys equal AND this key after), NULL counting as the largest value."""
    alternatives: list[str] = []
    args: list[object] = []
    equal: list[str] = []
    equal_args: list[object] = []
    for (expr, desc), value in zip(order, values, strict=True):
        if value is not None:
            alternatives.append(
                "(" + " AND ".join([*equal, f"({expr} {'<' if desc else '>'} ? OR {expr} IS NULL)"]) + ")"
            )
            args += [*equal_args, value]
            equal.append(f"{expr} = ?")
            equal_args.append(value)
        else:
            equal.append(f"{expr} IS NULL")
    alternatives.append("(" + " AND ".join([*equal, "run_id < ?"]) + ")")
    args += [*equal_args, run_id]
    return "(" + " OR ".join(alternatives) + ")", args


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
        flt = _parse(query, search_attributes, self._db.dialect)
        if flt.group_by_status or flt.group_by:
            raise InvalidArgument("invalid query: GROUP BY is only supported by CountWorkflowExecutions")
        size = max(page_size, 1)
        # Keyset pagination: stable while rows are added (the default order puts new runs before the cursor).
        order = flt.order_by
        keys = [expr for expr, _ in order] or ["start_time"]
        sort_cols = "".join(f", {expr} AS sort{i}" for i, expr in enumerate(keys))
        sql = f"SELECT {_COLS}{sort_cols} FROM executions_visibility WHERE namespace_id = ? AND {flt.scoped_where()}"
        args: list[object] = [namespace_id, *flt.params]
        if next_page_token:
            values, run_id = _decode_token(next_page_token, len(order))
            if order:
                cond, cond_args = _after(order, values, run_id)
                sql += f" AND {cond}"
                args += cond_args
            else:
                sql += " AND (start_time < ? OR (start_time = ? AND run_id < ?))"
                args += [values[0], values[0], run_id]
        if order:
            sql += " ORDER BY " + ", ".join(f"{e} {'DESC' if d else 'ASC'} NULLS LAST" for e, d in order)
            sql += ", run_id DESC LIMIT ?"
        else:
            sql += " ORDER BY start_time DESC, run_id DESC LIMIT ?"
        args.append(size + 1)

        rows = await self._db.fetch(sql, *args)
        page = [_record(r) for r in rows[:size]]
        token = None
        if len(rows) > size:
            last = rows[size - 1]
            token = _encode_token(list(last[len(_COL_NAMES) :]), last[1], len(order))
        return page, token

    async def count_executions(
        self, namespace_id: str, query: str, search_attributes: dict[str, str] | None = None
    ) -> int:
        flt = _parse(query, search_attributes, self._db.dialect)

        row = await fetch_one(
            self._db,
            f"SELECT COUNT(*) FROM executions_visibility WHERE namespace_id = ? AND {flt.scoped_where()}",
            namespace_id,
            *flt.params,
        )
        return int(row[0]) if row else 0

    async def count_executions_by_status(
        self, namespace_id: str, query: str, search_attributes: dict[str, str] | None = None
    ) -> dict[int, int]:
        flt = _parse(query, search_attributes, self._db.dialect)

        rows = await self._db.fetch(
            f"SELECT status, COUNT(*) FROM executions_visibility WHERE namespace_id = ? AND {flt.scoped_where()} "
            "GROUP BY status ORDER BY status",
            namespace_id,
            *flt.params,
        )
        return {int(r[0]): int(r[1]) for r in rows}

    async def count_executions_grouped(
        self, namespace_id: str, query: str, search_attributes: dict[str, str] | None = None
    ) -> list[tuple[str | None, int]]:
        flt = _parse(query, search_attributes, self._db.dialect)
        column = flt.group_by or "status"
        where = f"namespace_id = ? AND {flt.scoped_where()}"
        # The values from the slot's partial index (index-only), the runs without one as total minus those: no
        # index holds the NULLs, and grouping them directly reads the whole table (bench/visibility).
        rows = await self._db.fetch(
            f"SELECT {column}, COUNT(*) FROM executions_visibility WHERE {where} AND {column} IS NOT NULL "
            f"GROUP BY {column}",
            namespace_id,
            *flt.params,
        )
        total = await fetch_one(
            self._db, f"SELECT COUNT(*) FROM executions_visibility WHERE {where}", namespace_id, *flt.params
        )
        groups: list[tuple[str | None, int]] = [(str(r[0]), int(r[1])) for r in rows]
        missing = (int(total[0]) if total else 0) - sum(n for _, n in groups)
        if missing > 0:  # (a concurrent write between the two reads can only make this off by a few)
            groups.append((None, missing))
        return sorted(groups, key=lambda g: (-g[1], g[0] is None, g[0] or ""))
