"""Visibility indexes chosen by bench/visibility (see bench/README.md, "Visibility at a million runs").

- ``ix_visibility_type_status_start`` (namespace_id, workflow_type, status, start_time DESC, run_id DESC):
  the UI's default list "this type, this status, newest first" reads one page straight off the index; its
  prefix also serves WorkflowType alone, so the narrower ``ix_visibility_workflow_type`` is dropped.
- ``ix_visibility_status_type`` (namespace_id, status, workflow_type) replaces ``ix_visibility_status``: counts
  by status, by status and type and GROUP BY ExecutionStatus are index-only scans of an index that B-tree
  deduplication keeps tiny (a few distinct keys), instead of reading the wide list index.
- PostgreSQL only: GIN indexes on the Text and KeywordList slots as arrays of their words/items (the
  expression is ``pg_array_expression`` in server/persistence/visibility_query.py, which the PostgreSQL
  predicates use verbatim), partial so runs without a value cost nothing to write. SQLite keeps its portable
  substring predicates and gets none of them. With each, extended statistics on the same expression
  (``st_visibility_<slot>_items``): the planner does not use a partial index's statistics, and without element
  frequencies it guesses 0.5% for every word and prefers walking the start_time index (100+ ms at 1M runs).

Revision ID: 0003_visibility_indexes
Revises: 0002_visibility_slots
Create Date: 2026-12-04

Written out explicitly so this revision stays frozen when schema.py evolves.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_visibility_indexes"
down_revision: str | None = "0002_visibility_slots"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ARRAY_SLOTS = [("text01", "' '"), ("text02", "' '"), ("text03", "' '"),
                ("keyword_list01", "E'\\x1f'"), ("keyword_list02", "E'\\x1f'"), ("keyword_list03", "E'\\x1f'")]  # fmt: skip


def upgrade() -> None:
    op.create_index(
        "ix_visibility_type_status_start", "executions_visibility",
        ["namespace_id", "workflow_type", "status", sa.text("start_time DESC"), sa.text("run_id DESC")],
    )  # fmt: skip
    op.drop_index("ix_visibility_workflow_type", table_name="executions_visibility")
    op.create_index(
        "ix_visibility_status_type", "executions_visibility", ["namespace_id", "status", "workflow_type"]
    )
    op.drop_index("ix_visibility_status", table_name="executions_visibility")
    if op.get_context().dialect.name == "postgresql":
        for column, sep in _ARRAY_SLOTS:
            expression = f"regexp_split_to_array(substr({column}, 2, length({column}) - 2), {sep})"
            op.execute(
                f"CREATE INDEX ix_visibility_{column}_items ON executions_visibility USING gin "
                f"(({expression})) WHERE {column} IS NOT NULL"
            )
            op.execute(
                f"CREATE STATISTICS st_visibility_{column}_items ON ({expression}) FROM executions_visibility"
            )


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        for column, _ in _ARRAY_SLOTS:
            op.execute(f"DROP STATISTICS st_visibility_{column}_items")
            op.drop_index(f"ix_visibility_{column}_items", table_name="executions_visibility")
    op.create_index("ix_visibility_status", "executions_visibility", ["namespace_id", "status"])
    op.drop_index("ix_visibility_status_type", table_name="executions_visibility")
    op.create_index("ix_visibility_workflow_type", "executions_visibility", ["namespace_id", "workflow_type"])
    op.drop_index("ix_visibility_type_status_start", table_name="executions_visibility")
