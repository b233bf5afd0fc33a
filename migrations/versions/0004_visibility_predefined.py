"""Columns for Temporal's predefined search attributes on executions_visibility (TemporalChangeVersion,
BuildIds, TemporalScheduledById, ...), so list queries can filter on them; partial indexes on the Keyword and
Datetime ones.

Revision ID: 0004_visibility_predefined
Revises: 0003_visibility_indexes
Create Date: 2026-12-04

Written out explicitly so this revision stays frozen when schema.py evolves.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_visibility_predefined"
down_revision: str | None = "0003_visibility_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS: list[tuple[str, sa.types.TypeEngine]] = [  # type: ignore[type-arg]
    ("temporal_change_version", sa.Text()),
    ("binary_checksums", sa.Text()),
    ("build_ids", sa.Text()),
    ("batcher_namespace", sa.Text()),
    ("batcher_user", sa.Text()),
    ("temporal_scheduled_start_time", sa.BigInteger()),
    ("temporal_scheduled_by_id", sa.Text()),
    ("temporal_schedule_paused", sa.Boolean()),
    ("temporal_namespace_division", sa.Text()),
    ("temporal_pause_info", sa.Text()),
    ("temporal_reported_problems", sa.Text()),
    ("temporal_worker_deployment", sa.Text()),
    ("temporal_worker_deployment_version", sa.Text()),
    ("temporal_workflow_versioning_behavior", sa.Text()),
]
_INDEXED = [
    "batcher_namespace", "batcher_user", "temporal_scheduled_start_time", "temporal_scheduled_by_id",
    "temporal_namespace_division", "temporal_worker_deployment", "temporal_worker_deployment_version",
    "temporal_workflow_versioning_behavior",
]  # fmt: skip


def upgrade() -> None:
    with op.batch_alter_table("executions_visibility") as batch:
        for name, type_ in _COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))
    for name in _INDEXED:
        where = sa.text(f"{name} IS NOT NULL")
        op.create_index(
            f"ix_visibility_{name}", "executions_visibility", ["namespace_id", name],
            sqlite_where=where, postgresql_where=where,
        )  # fmt: skip


def downgrade() -> None:
    for name in _INDEXED:
        op.drop_index(f"ix_visibility_{name}", table_name="executions_visibility")
    with op.batch_alter_table("executions_visibility") as batch:
        for name, _ in reversed(_COLUMNS):
            batch.drop_column(name)
