"""Custom search attribute slots on executions_visibility (Keyword01..10, Text/Int/Double/Bool/Datetime/
KeywordList 01..03 as lower-case columns), as Temporal's SQL visibility keeps them.

Revision ID: 0002_visibility_slots
Revises: 0001_initial
Create Date: 2026-12-04

Written out explicitly so this revision stays frozen when schema.py evolves.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_visibility_slots"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SLOTS: list[tuple[str, int, sa.types.TypeEngine]] = [  # type: ignore[type-arg]
    ("bool", 3, sa.Boolean()),
    ("datetime", 3, sa.BigInteger()),
    ("double", 3, sa.Double()),
    ("int", 3, sa.BigInteger()),
    ("keyword", 10, sa.Text()),
    ("keyword_list", 3, sa.Text()),
    ("text", 3, sa.Text()),
]


def _columns() -> list[tuple[str, sa.types.TypeEngine]]:  # type: ignore[type-arg]
    return [(f"{kind}{i:02d}", type_) for kind, count, type_ in _SLOTS for i in range(1, count + 1)]


def _indexed() -> list[str]:
    return [name for name, _ in _columns() if name[:-2] in ("keyword", "int", "double", "datetime")]


def upgrade() -> None:
    with op.batch_alter_table("executions_visibility") as batch:
        for name, type_ in _columns():
            batch.add_column(sa.Column(name, type_, nullable=True))
    for name in _indexed():
        where = sa.text(f"{name} IS NOT NULL")
        op.create_index(
            f"ix_visibility_{name}", "executions_visibility", ["namespace_id", name],
            sqlite_where=where, postgresql_where=where,
        )  # fmt: skip


def downgrade() -> None:
    for name in _indexed():
        op.drop_index(f"ix_visibility_{name}", table_name="executions_visibility")
    with op.batch_alter_table("executions_visibility") as batch:
        for name, _ in reversed(_columns()):
            batch.drop_column(name)
