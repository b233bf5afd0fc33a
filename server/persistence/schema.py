"""The database schema, defined once as SQLAlchemy Core metadata.

Both backends use it: Alembic migrations are checked against it (tests/persistence/test_schema.py), and the
stores issue hand-written SQL against these table and column names. Conventions that keep SQLite and
PostgreSQL behaving identically:

- every timestamp is a BIGINT of microseconds since the Unix epoch (UTC); no timezone or precision surprises;
- blobs are ``LargeBinary`` (BYTEA / BLOB) holding serialized protobuf;
- ids (namespace, workflow, run) are TEXT.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Double,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    func,
    literal_column,
    text,
)

# Unnamed primary keys get a stable name, matching the migrations.
metadata = MetaData(naming_convention={"pk": "pk_%(table_name)s"})

namespaces = Table(
    "namespaces",
    metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("notification_version", BigInteger, nullable=False),
    UniqueConstraint("name", name="uq_namespaces_name"),
)

cluster_metadata = Table(
    "cluster_metadata",
    metadata,
    # Always 1: a single row, so "first writer wins" is an insert-if-absent on the primary key.
    Column("metadata_partition", Integer, primary_key=True, autoincrement=False),
    Column("cluster_name", Text, nullable=False),
    Column("num_history_shards", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
)

shards = Table(
    "shards",
    metadata,
    Column("shard_id", Integer, primary_key=True, autoincrement=False),
    Column("range_id", BigInteger, nullable=False),
    Column("owner", Text, nullable=False),
    Column("data", LargeBinary, nullable=False),
)

executions = Table(
    "executions",
    metadata,
    Column("shard_id", Integer, nullable=False),
    Column("namespace_id", Text, nullable=False),
    Column("workflow_id", Text, nullable=False),
    Column("run_id", Text, nullable=False),
    Column("next_event_id", BigInteger, nullable=False),
    Column("db_record_version", BigInteger, nullable=False),
    Column("state", Integer, nullable=False),
    Column("status", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
    PrimaryKeyConstraint("shard_id", "namespace_id", "workflow_id", "run_id", name="pk_executions"),
)

current_executions = Table(
    "current_executions",
    metadata,
    Column("shard_id", Integer, nullable=False),
    Column("namespace_id", Text, nullable=False),
    Column("workflow_id", Text, nullable=False),
    Column("run_id", Text, nullable=False),
    Column("create_request_id", Text, nullable=False),
    Column("state", Integer, nullable=False),
    Column("status", Integer, nullable=False),
    Column("start_time", BigInteger, nullable=True),
    PrimaryKeyConstraint("shard_id", "namespace_id", "workflow_id", name="pk_current_executions"),
)

history_node = Table(
    "history_node",
    metadata,
    Column("shard_id", Integer, nullable=False),
    Column("namespace_id", Text, nullable=False),
    Column("workflow_id", Text, nullable=False),
    Column("run_id", Text, nullable=False),
    Column("first_event_id", BigInteger, nullable=False),
    Column("txn_id", BigInteger, nullable=False),
    Column("last_event_id", BigInteger, nullable=False),
    Column("data", LargeBinary, nullable=False),
    PrimaryKeyConstraint(
        "shard_id",
        "namespace_id",
        "workflow_id",
        "run_id",
        "first_event_id",
        "txn_id",
        name="pk_history_node",
    ),
)

history_tasks = Table(
    "history_tasks",
    metadata,
    Column("shard_id", Integer, nullable=False),
    Column("category", Integer, nullable=False),
    Column("task_id", BigInteger, nullable=False),
    Column("visibility_time", BigInteger, nullable=False),
    Column("namespace_id", Text, nullable=False),
    Column("workflow_id", Text, nullable=False),
    Column("run_id", Text, nullable=False),
    Column("data", LargeBinary, nullable=False),
    PrimaryKeyConstraint("shard_id", "category", "task_id", name="pk_history_tasks"),
)

history_scheduled_tasks = Table(
    "history_scheduled_tasks",
    metadata,
    Column("shard_id", Integer, nullable=False),
    Column("visibility_time", BigInteger, nullable=False),
    Column("task_id", BigInteger, nullable=False),
    Column("category", Integer, nullable=False),
    Column("namespace_id", Text, nullable=False),
    Column("workflow_id", Text, nullable=False),
    Column("run_id", Text, nullable=False),
    Column("data", LargeBinary, nullable=False),
    PrimaryKeyConstraint("shard_id", "visibility_time", "task_id", name="pk_history_scheduled_tasks"),
)

task_queues = Table(
    "task_queues",
    metadata,
    Column("namespace_id", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("task_type", Integer, nullable=False),
    Column("partition", Integer, nullable=False),
    Column("range_id", BigInteger, nullable=False),
    Column("ack_level", BigInteger, nullable=False),
    Column("data", LargeBinary, nullable=False),
    PrimaryKeyConstraint("namespace_id", "name", "task_type", "partition", name="pk_task_queues"),
)

tasks = Table(
    "tasks",
    metadata,
    Column("namespace_id", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("task_type", Integer, nullable=False),
    Column("partition", Integer, nullable=False),
    Column("task_id", BigInteger, nullable=False),
    Column("expiry_time", BigInteger, nullable=True),
    Column("data", LargeBinary, nullable=False),
    PrimaryKeyConstraint("namespace_id", "name", "task_type", "partition", "task_id", name="pk_tasks"),
)

# Custom search attribute slots of executions_visibility, as in Temporal's SQL visibility: a namespace's
# attribute ``CustomerId`` is aliased to a typed slot (``Keyword01``) whose column is ``keyword01``. Datetimes are
# microseconds; Text holds the lower-cased words framed by spaces (" a b "); KeywordList its items framed by
# \x1f (see server/persistence/visibility_query.py for the matching predicates).
CUSTOM_SLOT_TYPES = {
    "bool": Boolean, "datetime": BigInteger, "double": Double, "int": BigInteger, "keyword": Text,
    "keyword_list": Text, "text": Text,
}  # fmt: skip
CUSTOM_SLOT_COUNTS = {"bool": 3, "datetime": 3, "double": 3, "int": 3, "keyword": 10, "keyword_list": 3, "text": 3}
CUSTOM_SLOT_COLUMNS = [
    f"{kind}{i:02d}" for kind, count in CUSTOM_SLOT_COUNTS.items() for i in range(1, count + 1)
]


# Temporal's predefined search attributes that the server (or SDK) sets, queryable like custom ones: name ->
# (column, slot kind), stored in the slot forms above.
PREDEFINED_COLUMNS: dict[str, tuple[str, str]] = {
    "TemporalChangeVersion": ("temporal_change_version", "keyword_list"),
    "BinaryChecksums": ("binary_checksums", "keyword_list"),
    "BuildIds": ("build_ids", "keyword_list"),
    "BatcherNamespace": ("batcher_namespace", "keyword"),
    "BatcherUser": ("batcher_user", "keyword"),
    "TemporalScheduledStartTime": ("temporal_scheduled_start_time", "datetime"),
    "TemporalScheduledById": ("temporal_scheduled_by_id", "keyword"),
    "TemporalSchedulePaused": ("temporal_schedule_paused", "bool"),
    "TemporalNamespaceDivision": ("temporal_namespace_division", "keyword"),
    "TemporalPauseInfo": ("temporal_pause_info", "keyword_list"),
    "TemporalReportedProblems": ("temporal_reported_problems", "keyword_list"),
    "TemporalWorkerDeployment": ("temporal_worker_deployment", "keyword"),
    "TemporalWorkerDeploymentVersion": ("temporal_worker_deployment_version", "keyword"),
    "TemporalWorkflowVersioningBehavior": ("temporal_workflow_versioning_behavior", "keyword"),
}
# Every typed attribute column of executions_visibility -> its slot kind (how values are stored and matched).
ATTRIBUTE_COLUMN_KINDS: dict[str, str] = {
    **{c: c[:-2] for c in CUSTOM_SLOT_COLUMNS},
    **dict(PREDEFINED_COLUMNS.values()),
}


def _custom_slot_columns() -> list[Column]:  # type: ignore[type-arg]
    return [Column(c, CUSTOM_SLOT_TYPES[k], nullable=True) for c, k in ATTRIBUTE_COLUMN_KINDS.items()]


executions_visibility = Table(
    "executions_visibility",
    metadata,
    Column("namespace_id", Text, nullable=False),
    Column("run_id", Text, nullable=False),
    Column("workflow_id", Text, nullable=False),
    Column("workflow_type", Text, nullable=False),
    Column("task_queue", Text, nullable=False),
    Column("status", Integer, nullable=False),
    Column("start_time", BigInteger, nullable=False),
    Column("execution_time", BigInteger, nullable=False),
    Column("close_time", BigInteger, nullable=True),
    Column("history_length", BigInteger, nullable=False),
    Column("history_size_bytes", BigInteger, nullable=False),
    Column("state_transition_count", BigInteger, nullable=False),
    Column("parent_workflow_id", Text, nullable=False),
    Column("parent_run_id", Text, nullable=False),
    Column("root_workflow_id", Text, nullable=False),
    Column("root_run_id", Text, nullable=False),
    Column("memo", LargeBinary, nullable=False),
    Column("search_attributes", LargeBinary, nullable=False),
    *_custom_slot_columns(),
    PrimaryKeyConstraint("namespace_id", "run_id", name="pk_executions_visibility"),
)
Index(
    "ix_visibility_start_time",
    executions_visibility.c.namespace_id,
    executions_visibility.c.start_time.desc(),
    executions_visibility.c.run_id.desc(),
)
Index("ix_visibility_close_time", executions_visibility.c.namespace_id, executions_visibility.c.close_time)
# Counts by status (and type), GROUP BY ExecutionStatus: index-only scans of an index deduplication keeps tiny.
# Partial on the scope every query without TemporalNamespaceDivision carries (migration 0005), so those counts
# need no heap visit; the slot indexes below likewise.
VISIBILITY_SCOPE = "temporal_namespace_division IS NULL"
Index(
    "ix_visibility_status_type",
    executions_visibility.c.namespace_id,
    executions_visibility.c.status,
    executions_visibility.c.workflow_type,
    sqlite_where=text(VISIBILITY_SCOPE),
    postgresql_where=text(VISIBILITY_SCOPE),
)
# "This type, this status, newest first" (the UI's default list) reads one page off this index; its prefix
# serves WorkflowType alone (migration 0003; chosen by bench/visibility).
Index(
    "ix_visibility_type_status_start",
    executions_visibility.c.namespace_id,
    executions_visibility.c.workflow_type,
    executions_visibility.c.status,
    executions_visibility.c.start_time.desc(),
    executions_visibility.c.run_id.desc(),
)
Index("ix_visibility_workflow_id", executions_visibility.c.namespace_id, executions_visibility.c.workflow_id)
# Partial indexes on the slots that take equality and range predicates: runs without a value cost nothing to
# write, and a predicate on the slot (strict comparison) implies the index's IS NOT NULL.
INDEXED_SLOT_COLUMNS = [c for c in CUSTOM_SLOT_COLUMNS if c[:-2] in ("keyword", "int", "double", "datetime")]
# The predefined Keyword and Datetime columns the same way (most runs have none of them).
INDEXED_PREDEFINED_COLUMNS = [c for c, k in PREDEFINED_COLUMNS.values() if k in ("keyword", "datetime")]


def _partial_index(column: str, where: str) -> None:
    clause = text(where)
    Index(
        f"ix_visibility_{column}",
        executions_visibility.c.namespace_id,
        executions_visibility.c[column],
        sqlite_where=clause,
        postgresql_where=clause,
    )


for _slot in INDEXED_SLOT_COLUMNS:
    _partial_index(_slot, f"{_slot} IS NOT NULL AND {VISIBILITY_SCOPE}")
for _column in INDEXED_PREDEFINED_COLUMNS:
    _partial_index(_column, f"{_column} IS NOT NULL")
# PostgreSQL only (migration 0003): GIN indexes on the Text and KeywordList slots as arrays of their words/items,
# the expression the PostgreSQL predicates use (``pg_array_expression`` in visibility_query.py). Alembic cannot
# compare expression indexes on SQLite, where they do not exist; tests/persistence/test_visibility_indexes.py
# checks them on PostgreSQL. Migration 0003 also creates statistics ``st_visibility_<slot>_items`` on each
# expression (the planner ignores a partial index's statistics).
ARRAY_INDEXED_SLOT_COLUMNS = [c for c in CUSTOM_SLOT_COLUMNS if c[:-2] in ("text", "keyword_list")]
_ARRAY_SEPARATORS = {"text": "' '", "keyword_list": "E'\\x1f'"}
for _slot in ARRAY_INDEXED_SLOT_COLUMNS:
    _col = executions_visibility.c[_slot]
    Index(
        f"ix_visibility_{_slot}_items",
        func.regexp_split_to_array(
            func.substr(_col, 2, func.length(_col) - 2), literal_column(_ARRAY_SEPARATORS[_slot[:-2]])
        ),
        postgresql_using="gin",
        postgresql_where=text(f"{_slot} IS NOT NULL"),
        _table=executions_visibility,
    ).ddl_if(dialect="postgresql")

cluster_membership = Table(
    "cluster_membership",
    metadata,
    Column("host_id", Text, primary_key=True),
    Column("role", Text, nullable=False),
    Column("rpc_address", Text, nullable=False),
    Column("session_start", BigInteger, nullable=False),
    Column("last_heartbeat", BigInteger, nullable=False),
)
Index("ix_cluster_membership_role_heartbeat", cluster_membership.c.role, cluster_membership.c.last_heartbeat)

# Truncated between tests; everything except Alembic's own version table.
ALL_TABLES: tuple[str, ...] = tuple(t.name for t in metadata.sorted_tables)
