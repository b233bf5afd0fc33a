"""The narrow persistence interface: one protocol per store, two implementations (SQLite, PostgreSQL).

Blobs are serialized protobuf owned by the service that writes them; stores never parse them, except the
visibility store, whose rows are plain columns. Every method is atomic. Writes to a shard's data take the
shard's ``range_id`` and fail with ``ShardOwnershipLost`` if the stored range_id differs (fencing).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

# ---------------------------------------------------------------- namespaces


@dataclass
class NamespaceRecord:
    id: str
    name: str
    # Serialized temporal.api.workflowservice.v1.DescribeNamespaceResponse: the whole public description.
    data: bytes
    notification_version: int = 0


@dataclass(frozen=True)
class NamespaceExecution:
    """One run of a namespace, as listed for deletion."""

    shard_id: int
    workflow_id: str
    run_id: str
    state: int  # WorkflowExecutionState


class NamespaceStore(Protocol):
    async def create_namespace(self, record: NamespaceRecord) -> None:
        """Raises AlreadyExists (with NamespaceAlreadyExistsFailure) if the name or id is taken."""

    async def get_namespace_by_name(self, name: str) -> NamespaceRecord | None: ...

    async def get_namespace_by_id(self, namespace_id: str) -> NamespaceRecord | None: ...

    async def list_namespaces(
        self, page_size: int, next_page_token: bytes | None
    ) -> tuple[list[NamespaceRecord], bytes | None]:
        """Ordered by name. Returns (page, token or None at the end)."""

    async def update_namespace(self, record: NamespaceRecord, expected_notification_version: int) -> None:
        """Replaces data; sets notification_version = expected + 1. ConditionFailed on a concurrent update."""

    # -- namespace deletion (OperatorService.DeleteNamespace and the internal worker's reclaim)

    async def rename_namespace(
        self, namespace_id: str, new_name: str, data: bytes, expected_notification_version: int
    ) -> None:
        """Set name and data of the namespace ``namespace_id`` in one write (mark DELETED + rename to the
        tombstone name, which frees the old name at once); notification_version = expected + 1.
        AlreadyExists if another namespace holds ``new_name``; ConditionFailed on a concurrent update."""

    async def list_namespace_executions(
        self, namespace_id: str, page_size: int, next_page_token: bytes | None
    ) -> tuple[list[NamespaceExecution], bytes | None]:
        """The runs (mutable-state rows) of a namespace on every shard, by (shard_id, workflow_id, run_id);
        returns (page, token or None at the end). Keyset paging: rows deleted meanwhile are simply skipped."""

    async def delete_namespace(self, namespace_id: str) -> None:
        """Remove the namespace row and any visibility rows left under its id. Idempotent."""


# ---------------------------------------------------------------- cluster metadata


@dataclass
class ClusterMetadata:
    cluster_name: str
    num_history_shards: int
    data: bytes = b""


class ClusterMetadataStore(Protocol):
    async def get_cluster_metadata(self) -> ClusterMetadata | None: ...

    async def init_cluster_metadata(self, metadata: ClusterMetadata) -> ClusterMetadata:
        """Insert if absent; return what is stored (the first writer wins)."""


# ---------------------------------------------------------------- cluster membership


@dataclass
class MemberRecord:
    """One role of one process: who it is, where peers reach it, and when it last proved it is alive."""

    host_id: str  # unique per (role, advertised address): a restarted process takes over its old row
    role: str  # frontend, history, matching, internal_worker
    rpc_address: str  # host:port peers dial ("" for roles without a port)
    session_start: datetime
    last_heartbeat: datetime


class MembershipStore(Protocol):
    async def upsert_member(self, record: MemberRecord) -> None:
        """Insert or replace the row of ``record.host_id`` (registration and every heartbeat)."""

    async def list_members(self, role: str | None = None, alive_since: datetime | None = None) -> list[MemberRecord]:
        """Rows of ``role`` (all roles if None) whose last heartbeat is at or after ``alive_since``; by host_id."""

    async def remove_member(self, host_id: str) -> None:
        """Graceful leave: peers rebalance at their next refresh instead of waiting for expiry."""

    async def prune_members(self, heartbeat_before: datetime) -> int:
        """Delete rows last seen before ``heartbeat_before``; returns how many."""


# ---------------------------------------------------------------- shards


@dataclass
class ShardRecord:
    shard_id: int
    range_id: int
    # Serialized shard info owned by History (queue ack levels etc.).
    data: bytes = b""
    owner: str = ""


class ShardStore(Protocol):
    async def get_or_create_shard(self, shard_id: int) -> ShardRecord:
        """Creates the row with range_id 0 if absent."""

    async def update_shard(self, record: ShardRecord, expected_range_id: int) -> None:
        """Set range_id/data/owner iff the stored range_id == expected_range_id, else ShardOwnershipLost.

        Acquiring a shard is ``update_shard(range_id=old+1, expected_range_id=old)``.
        """


# ---------------------------------------------------------------- executions + history + history tasks


class TaskCategory(enum.IntEnum):
    TRANSFER = 1  # immediate: push to matching, close-execution work, deletes
    TIMER = 2  # scheduled by visibility_time: timeouts, user timers, retries, backoffs
    VISIBILITY = 3  # immediate: visibility row upserts/deletes


@dataclass
class HistoryTask:
    category: TaskCategory
    task_id: int
    # Fire time for TIMER tasks; for immediate categories, the creation time.
    visibility_time: datetime
    namespace_id: str
    workflow_id: str
    run_id: str
    # Serialized task payload owned by History.
    data: bytes


@dataclass
class HistoryBatch:
    """One transaction's worth of events (serialized temporal.api.history.v1.History)."""

    first_event_id: int
    last_event_id: int
    data: bytes
    # Monotonic per write (a task id works); lets readers pick the newest batch at a node if ever rewritten.
    txn_id: int = 0


@dataclass
class ExecutionRecord:
    namespace_id: str
    workflow_id: str
    run_id: str
    # Serialized mutable state (owned by History).
    data: bytes
    next_event_id: int
    db_record_version: int
    # WorkflowExecutionState / WorkflowExecutionStatus numbers (mirrored from the blob for queries).
    state: int
    status: int


@dataclass
class CurrentExecutionRecord:
    namespace_id: str
    workflow_id: str
    run_id: str
    create_request_id: str
    state: int
    status: int
    start_time: datetime | None = None


class CurrentRunMode(enum.IntEnum):
    BRAND_NEW = 1  # no current row may exist for (namespace_id, workflow_id)
    SWAP = 2  # the current row must point at ``previous_run_id``; repoint it at the new run


@dataclass
class NewRun:
    """A run being created (start, signal-with-start, continue-as-new, retry, cron, terminate-and-start)."""

    execution: ExecutionRecord  # db_record_version is the version to store (normally 1)
    events: HistoryBatch
    current_mode: CurrentRunMode
    create_request_id: str
    start_time: datetime
    previous_run_id: str = ""  # for SWAP
    tasks: list[HistoryTask] = field(default_factory=list)


@dataclass
class RunUpdate:
    """A mutation of an existing run: new mutable state, appended events, new tasks."""

    execution: ExecutionRecord  # new state; db_record_version = expected + 1
    expected_db_record_version: int
    events: HistoryBatch | None
    tasks: list[HistoryTask] = field(default_factory=list)
    # If the run is the current run, mirror state/status into the current-run row.
    update_current: bool = True


class ExecutionStore(Protocol):
    async def create_workflow_execution(self, shard_id: int, range_id: int, new_run: NewRun) -> None:
        """Insert run + first events + tasks + current-run row, atomically.

        Raises CurrentRunConflict (with the current row's run id, request id, state, status) if the current
        row does not match ``current_mode``; ShardOwnershipLost if the range moved.
        """

    async def update_workflow_execution(
        self, shard_id: int, range_id: int, update: RunUpdate, new_run: NewRun | None = None
    ) -> None:
        """Atomically apply ``update`` and, if given, create ``new_run`` (continue-as-new/retry/cron, or
        terminate-existing-then-start). ConditionFailed on a db_record_version mismatch."""

    async def get_workflow_execution(
        self, shard_id: int, namespace_id: str, workflow_id: str, run_id: str
    ) -> ExecutionRecord | None: ...

    async def get_current_execution(
        self, shard_id: int, namespace_id: str, workflow_id: str
    ) -> CurrentExecutionRecord | None: ...

    async def read_history(
        self,
        shard_id: int,
        namespace_id: str,
        workflow_id: str,
        run_id: str,
        min_event_id: int,
        max_event_id: int,
    ) -> list[HistoryBatch]:
        """Batches overlapping [min_event_id, max_event_id), ordered by first_event_id."""

    async def delete_workflow_execution(
        self, shard_id: int, range_id: int, namespace_id: str, workflow_id: str, run_id: str
    ) -> None:
        """Delete the run's mutable state, history and (if it points at this run) the current-run row.
        Pending history tasks of the run are left to the queues (they re-validate and find nothing)."""

    # -- history tasks (written only inside create/update above)

    async def get_immediate_tasks(
        self, shard_id: int, category: TaskCategory, exclusive_min_task_id: int, max_task_id: int, limit: int
    ) -> list[HistoryTask]:
        """Tasks with exclusive_min < task_id <= max, ascending by task_id."""

    async def get_scheduled_tasks(
        self, shard_id: int, exclusive_min: tuple[datetime, int], max_time: datetime, limit: int
    ) -> list[HistoryTask]:
        """TIMER tasks with (visibility_time, task_id) > exclusive_min and visibility_time <= max_time, ascending."""

    async def complete_immediate_tasks(self, shard_id: int, category: TaskCategory, task_ids: Sequence[int]) -> None: ...

    async def complete_scheduled_tasks(self, shard_id: int, keys: Sequence[tuple[datetime, int]]) -> None: ...


# ---------------------------------------------------------------- matching task queues


@dataclass(frozen=True)
class TaskQueueKey:
    namespace_id: str
    name: str
    task_type: int  # temporal.api.enums.v1.TaskQueueType
    partition: int = 0


@dataclass
class TaskQueueRecord:
    key: TaskQueueKey
    range_id: int
    ack_level: int  # all task ids <= ack_level are done
    data: bytes = b""


@dataclass
class TaskRecord:
    task_id: int
    data: bytes  # serialized durata.internal.matching.v1.TaskInfo
    expiry_time: datetime | None = None


class TaskStore(Protocol):
    async def lease_task_queue(self, key: TaskQueueKey) -> TaskQueueRecord:
        """Create the queue row if absent, then bump range_id by one (fencing out the previous owner)."""

    async def update_task_queue(self, record: TaskQueueRecord) -> None:
        """Persist ack_level/data iff range_id still matches, else ShardOwnershipLost-like ConditionFailed."""

    async def create_tasks(self, key: TaskQueueKey, range_id: int, tasks: Sequence[TaskRecord]) -> None:
        """Insert backlog tasks iff the queue's range_id matches (ConditionFailed otherwise)."""

    async def get_tasks(
        self, key: TaskQueueKey, exclusive_min_task_id: int, max_task_id: int, limit: int
    ) -> list[TaskRecord]: ...

    async def complete_tasks_less_than(self, key: TaskQueueKey, exclusive_max_task_id: int) -> int:
        """Delete tasks with task_id < exclusive_max; returns how many."""

    async def list_task_queues(self, limit: int) -> list[TaskQueueRecord]:
        """Every task queue partition row (for the admin view), ordered by key; at most ``limit``."""


# ---------------------------------------------------------------- visibility


@dataclass
class VisibilityRecord:
    namespace_id: str
    workflow_id: str
    run_id: str
    workflow_type: str
    task_queue: str
    status: int  # WorkflowExecutionStatus
    start_time: datetime
    execution_time: datetime
    close_time: datetime | None = None
    history_length: int = 0
    history_size_bytes: int = 0
    state_transition_count: int = 0
    parent_workflow_id: str = ""
    parent_run_id: str = ""
    root_workflow_id: str = ""
    root_run_id: str = ""
    # Serialized temporal.api.common.v1.Memo and SearchAttributes.
    memo: bytes = b""
    search_attributes: bytes = b""
    # Custom search attribute values by slot column (``keyword01``, ``int02``...), decoded: str, int, float, bool,
    # datetime, list[str] (KeywordList). Columns not named here are NULL.
    custom_values: dict[str, object] = field(default_factory=dict)


class VisibilityStore(Protocol):
    async def upsert_execution(self, record: VisibilityRecord) -> None: ...

    async def delete_execution(self, namespace_id: str, run_id: str) -> None: ...

    async def list_executions(
        self,
        namespace_id: str,
        query: str,
        page_size: int,
        next_page_token: bytes | None,
        search_attributes: dict[str, str] | None = None,
    ) -> tuple[list[VisibilityRecord], bytes | None]:
        """``query`` is Temporal's list filter (see server.persistence.visibility_query). InvalidArgument if bad.
        Newest start time first. ``search_attributes``: the namespace's custom aliases (slot -> alias)."""

    async def count_executions(
        self, namespace_id: str, query: str, search_attributes: dict[str, str] | None = None
    ) -> int: ...

    async def count_executions_by_status(
        self, namespace_id: str, query: str, search_attributes: dict[str, str] | None = None
    ) -> dict[int, int]:
        """For ``GROUP BY ExecutionStatus``: status -> count."""

    async def count_executions_grouped(
        self, namespace_id: str, query: str, search_attributes: dict[str, str] | None = None
    ) -> list[tuple[str | None, int]]:
        """For ``GROUP BY <Keyword attribute>``: (value, count) pairs, None for runs without a value."""


# ---------------------------------------------------------------- the bundle


class Persistence(Protocol):
    namespaces: NamespaceStore
    cluster: ClusterMetadataStore
    membership: MembershipStore
    shards: ShardStore
    executions: ExecutionStore
    tasks: TaskStore
    visibility: VisibilityStore

    async def close(self) -> None: ...
