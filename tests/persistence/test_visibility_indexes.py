"""The PostgreSQL visibility indexes of migration 0003 (chosen by bench/visibility): the migrated database has
exactly schema.py's indexes (Alembic cannot compare the GIN expression indexes on SQLite), the PostgreSQL Text
and KeywordList predicates are served by them, and both backends agree on the edge cases of those predicates."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import pytest

from server.persistence.interface import Persistence, VisibilityRecord
from server.persistence.postgres.db import to_pg
from server.persistence.schema import ARRAY_INDEXED_SLOT_COLUMNS, executions_visibility
from server.persistence.visibility_query import custom_fields, parse_query

from .helpers import NS, T0

ALIASES = {"Text01": "Notes", "KeywordList01": "Tags", "KeywordList02": "Labels", "Keyword01": "CustomerId"}


@pytest.mark.postgres
async def test_migrated_indexes_match_schema_py(pg_database_url: str) -> None:
    conn = await asyncpg.connect(pg_database_url)
    try:
        rows = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'executions_visibility' "
            "AND indexname <> 'pk_executions_visibility'"
        )
        statistics = {
            r[0]
            for r in await conn.fetch(
                "SELECT stxname FROM pg_statistic_ext WHERE stxrelid = 'executions_visibility'::regclass"
            )
        }
    finally:
        await conn.close()
    found = {r[0]: r[1] for r in rows}
    assert set(found) == {ix.name for ix in executions_visibility.indexes}
    for column in ARRAY_INDEXED_SLOT_COLUMNS:
        definition = found[f"ix_visibility_{column}_items"]
        assert "USING gin (regexp_split_to_array(substr(" in definition, definition
        assert f"WHERE ({column} IS NOT NULL)" in definition, definition
    # The planner reads element frequencies from these, not from the partial GIN indexes (migration 0003).
    assert statistics == {f"st_visibility_{column}_items" for column in ARRAY_INDEXED_SLOT_COLUMNS}


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("query", "index"),
    [
        ("Notes = 'rush'", "ix_visibility_text01_items"),
        ("Notes = 'rush ORDER'", "ix_visibility_text01_items"),
        ("Tags = 'red'", "ix_visibility_keyword_list01_items"),
        ("Tags IN ('red', 'blue')", "ix_visibility_keyword_list01_items"),
        ("Labels IN ('x', 'y')", "ix_visibility_keyword_list02_items"),
    ],
)
async def test_postgres_predicates_use_the_gin_indexes(pg_database_url: str, query: str, index: str) -> None:
    """With sequential scans priced out, a plan on the GIN index exists only if the predicate's expression is
    exactly the index's (and implies its partial-index condition). No namespace condition: no other index
    could serve the query."""
    flt = parse_query(query, custom_fields(ALIASES), "postgresql")
    sql = to_pg(f"EXPLAIN SELECT COUNT(*) FROM executions_visibility WHERE {flt.where}")
    conn = await asyncpg.connect(pg_database_url)
    try:
        async with conn.transaction():
            await conn.execute("SET LOCAL enable_seqscan = off")
            plan = "\n".join(r[0] for r in await conn.fetch(sql, *flt.params))
    finally:
        await conn.close()
    assert index in plan, plan


def _record(i: int, values: dict[str, object]) -> VisibilityRecord:
    start = T0 + timedelta(minutes=i)
    return VisibilityRecord(
        namespace_id=NS, workflow_id=f"wf-{i}", run_id=f"run-{i}", workflow_type="Order", task_queue="q",
        status=1, start_time=start, execution_time=start, custom_values=dict(values),
    )  # fmt: skip


EDGE_ROWS: dict[int, dict[str, object]] = {
    1: {"keyword_list01": ["a", ""], "text01": "Hello world"},
    2: {"keyword_list01": [], "text01": "..."},  # no items; no words
    3: {"keyword_list01": ["b"], "text01": "world_peace hello-there"},
    4: {},
}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Tags = ''", [1, 2]),  # an empty item, and an empty list (stored alike): the portable meaning
        ("Tags IN ('', 'b')", [1, 2, 3]),
        ("Tags NOT IN ('a', 'b')", [2]),
        ("Tags != 'a'", [2, 3]),
        ("NOT (Tags = 'a')", [2, 3]),  # a run without the attribute matches neither form
        ("Notes = 'hello'", [1, 3]),  # "hello-there" is two words; "world_peace" is one
        ("Notes = 'world_peace'", [3]),
        ("Notes = 'peace'", []),
        ("Notes = 'there HELLO'", [3]),
        ("NOT (Notes = 'hello')", [2]),
        ("Notes != 'hello'", [2]),
        ("Notes = '...'", []),  # no words: matches nothing
    ],
)
async def test_text_and_keyword_list_edge_cases(
    persistence: Persistence, query: str, expected: list[int]
) -> None:
    for i, values in EDGE_ROWS.items():
        await persistence.visibility.upsert_execution(_record(i, values))
    page, _ = await persistence.visibility.list_executions(NS, query, 100, None, ALIASES)
    found = sorted(int(r.workflow_id.split("-")[1]) for r in page)
    assert found == expected
    assert await persistence.visibility.count_executions(NS, query, ALIASES) == len(expected)
