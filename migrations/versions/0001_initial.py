"""Initial schema: namespaces, cluster metadata, shards, executions, history, tasks, visibility, membership.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-21

Written out explicitly (not ``metadata.create_all``) so this revision stays frozen when schema.py evolves.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_initial"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _col(name: str, type_: sa.types.TypeEngine, nullable: bool = False) -> sa.Column:
    return sa.Column(name, type_, nullable=nullable, autoincrement=False)


def upgrade() -> None:
    text, big, integer, blob = sa.Text(), sa.BigInteger(), sa.Integer(), sa.LargeBinary()
    op.create_table(
        "namespaces",
        _col("id", text),
        _col("name", text),
        _col("data", blob),
        _col("notification_version", big),
        sa.PrimaryKeyConstraint("id", name="pk_namespaces"),
        sa.UniqueConstraint("name", name="uq_namespaces_name"),
    )
    op.create_table(
        "cluster_metadata",
        _col("metadata_partition", integer),
        _col("cluster_name", text),
        _col("num_history_shards", integer),
        _col("data", blob),
        sa.PrimaryKeyConstraint("metadata_partition", name="pk_cluster_metadata"),
    )
    op.create_table(
        "shards",
        _col("shard_id", integer),
        _col("range_id", big),
        _col("owner", text),
        _col("data", blob),
        sa.PrimaryKeyConstraint("shard_id", name="pk_shards"),
    )
    op.create_table(
        "executions",
        _col("shard_id", integer),
        _col("namespace_id", text),
        _col("workflow_id", text),
        _col("run_id", text),
        _col("next_event_id", big),
        _col("db_record_version", big),
        _col("state", integer),
        _col("status", integer),
        _col("data", blob),
        sa.PrimaryKeyConstraint("shard_id", "namespace_id", "workflow_id", "run_id", name="pk_executions"),
    )
    op.create_table(
        "current_executions",
        _col("shard_id", integer),
        _col("namespace_id", text),
        _col("workflow_id", text),
        _col("run_id", text),
        _col("create_request_id", text),
        _col("state", integer),
        _col("status", integer),
        _col("start_time", big, nullable=True),
        sa.PrimaryKeyConstraint("shard_id", "namespace_id", "workflow_id", name="pk_current_executions"),
    )
    op.create_table(
        "history_node",
        _col("shard_id", integer),
        _col("namespace_id", text),
        _col("workflow_id", text),
        _col("run_id", text),
        _col("first_event_id", big),
        _col("txn_id", big),
        _col("last_event_id", big),
        _col("data", blob),
        sa.PrimaryKeyConstraint(
            "shard_id",
            "namespace_id",
            "workflow_id",
            "run_id",
            "first_event_id",
            "txn_id",
            name="pk_history_node",
        ),
    )
    op.create_table(
        "history_tasks",
        _col("shard_id", integer),
        _col("category", integer),
        _col("task_id", big),
        _col("visibility_time", big),
        _col("namespace_id", text),
        _col("workflow_id", text),
        _col("run_id", text),
        _col("data", blob),
        sa.PrimaryKeyConstraint("shard_id", "category", "task_id", name="pk_history_tasks"),
    )
    op.create_table(
        "history_scheduled_tasks",
        _col("shard_id", integer),
        _col("visibility_time", big),
        _col("task_id", big),
        _col("category", integer),
        _col("namespace_id", text),
        _col("workflow_id", text),
        _col("run_id", text),
        _col("data", blob),
        sa.PrimaryKeyConstraint("shard_id", "visibility_time", "task_id", name="pk_history_scheduled_tasks"),
    )
    op.create_table(
        "task_queues",
        _col("namespace_id", text),
        _col("name", text),
        _col("task_type", integer),
        _col("partition", integer),
        _col("range_id", big),
        _col("ack_level", big),
        _col("data", blob),
        sa.PrimaryKeyConstraint("namespace_id", "name", "task_type", "partition", name="pk_task_queues"),
    )
    op.create_table(
        "tasks",
        _col("namespace_id", text),
        _col("name", text),
        _col("task_type", integer),
        _col("partition", integer),
        _col("task_id", big),
        _col("expiry_time", big, nullable=True),
        _col("data", blob),
        sa.PrimaryKeyConstraint("namespace_id", "name", "task_type", "partition", "task_id", name="pk_tasks"),
    )
    op.create_table(
        "executions_visibility",
        _col("namespace_id", text),
        _col("run_id", text),
        _col("workflow_id", text),
        _col("workflow_type", text),
        _col("task_queue", text),
        _col("status", integer),
        _col("start_time", big),
        _col("execution_time", big),
        _col("close_time", big, nullable=True),
        _col("history_length", big),
        _col("history_size_bytes", big),
        _col("state_transition_count", big),
        _col("parent_workflow_id", text),
        _col("parent_run_id", text),
        _col("root_workflow_id", text),
        _col("root_run_id", text),
        _col("memo", blob),
        _col("search_attributes", blob),
        sa.PrimaryKeyConstraint("namespace_id", "run_id", name="pk_executions_visibility"),
    )
    op.create_index(
        "ix_visibility_start_time",
        "executions_visibility",
        ["namespace_id", sa.text("start_time DESC"), sa.text("run_id DESC")],
    )
    op.create_index("ix_visibility_close_time", "executions_visibility", ["namespace_id", "close_time"])
    op.create_index("ix_visibility_status", "executions_visibility", ["namespace_id", "status"])
    op.create_index("ix_visibility_workflow_type", "executions_visibility", ["namespace_id", "workflow_type"])
    op.create_index("ix_visibility_workflow_id", "executions_visibility", ["namespace_id", "workflow_id"])
    op.create_table(
        "cluster_membership",
        _col("host_id", text),
        _col("role", text),
        _col("rpc_address", text),
        _col("session_start", big),
        _col("last_heartbeat", big),
        sa.PrimaryKeyConstraint("host_id", name="pk_cluster_membership"),
    )
    op.create_index("ix_cluster_membership_role_heartbeat", "cluster_membership", ["role", "last_heartbeat"])


def downgrade() -> None:
    for table in (
        "cluster_membership",
        "executions_visibility",
        "tasks",
        "task_queues",
        "history_scheduled_tasks",
        "history_tasks",
        "history_node",
        "current_executions",
        "executions",
        "shards",
        "cluster_metadata",
        "namespaces",
    ):
        op.drop_table(table)
