"""Count indexes scoped to the rows queries see: every list/count that does not name TemporalNamespaceDivision
carries ``temporal_namespace_division IS NULL`` (system workflows are left out, as in Temporal; see
``VisibilityFilter.scoped_where``). An index without that column cannot answer such a count by itself, so at
1M runs a plain Count read the whole table (480 ms). Made partial on that condition, the status/type index and
the slot indexes serve those counts as index-only scans again; queries naming the division use its own index.

Revision ID: 0005_visibility_scoped_indexes
Revises: 0004_visibility_predefined
Create Date: 2026-12-04

Written out explicitly so this revision stays frozen when schema.py evolves.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_visibility_scoped_indexes"
down_revision: str | None = "0004_visibility_predefined"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SCOPE = "temporal_namespace_division IS NULL"
_SLOTS = [f"{kind}{i:02d}" for kind, count in (("datetime", 3), ("double", 3), ("int", 3), ("keyword", 10))
          for i in range(1, count + 1)]  # fmt: skip


def _slot_index(name: str, where: str) -> None:
    clause = sa.text(where)
    op.create_index(
        f"ix_visibility_{name}", "executions_visibility", ["namespace_id", name],
        sqlite_where=clause, postgresql_where=clause,
    )  # fmt: skip


def _status_type(where: str | None) -> None:
    clause = None if where is None else sa.text(where)
    op.create_index(
        "ix_visibility_status_type", "executions_visibility", ["namespace_id", "status", "workflow_type"],
        sqlite_where=clause, postgresql_where=clause,
    )  # fmt: skip


def upgrade() -> None:
    op.drop_index("ix_visibility_status_type", table_name="executions_visibility")
    _status_type(_SCOPE)
    for name in _SLOTS:
        op.drop_index(f"ix_visibility_{name}", table_name="executions_visibility")
        _slot_index(name, f"{name} IS NOT NULL AND {_SCOPE}")


def downgrade() -> None:
    for name in _SLOTS:
        op.drop_index(f"ix_visibility_{name}", table_name="executions_visibility")
        _slot_index(name, f"{name} IS NOT NULL")
    op.drop_index("ix_visibility_status_type", table_name="executions_visibility")
    _status_type(None)
