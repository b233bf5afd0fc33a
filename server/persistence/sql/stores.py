"""Namespaces, cluster metadata, shards and matching task queues on the shared SQL layer."""

from __future__ import annotations

import json
from collections.abc import Sequence

from temporalio.api.errordetails.v1 import message_pb2 as errordetails

from server.common.errors import AlreadyExists, ConditionFailed, InvalidArgument, ShardOwnershipLost
from server.persistence.interface import (
    ClusterMetadata,
    NamespaceExecution,
    NamespaceRecord,
    ShardRecord,
    TaskQueueKey,
    TaskQueueRecord,
    TaskRecord,
)
from server.persistence.sql.tx import Database, Row, Tx, fetch_one, from_micros, lock_suffix, opt_micros

_NS_COLS = "id, name, data, notification_version"


def _namespace(row: Row) -> NamespaceRecord:
    return NamespaceRecord(id=row[0], name=row[1], data=bytes(row[2]), notification_version=row[3])


class SqlNamespaceStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create_namespace(self, record: NamespaceRecord) -> None:
        async def op(tx: Tx) -> int:
            return await tx.execute(
                f"INSERT INTO namespaces ({_NS_COLS}) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                record.id,
                record.name,
                record.data,
                record.notification_version,
            )

        if await self._db.run(op) == 0:
            raise AlreadyExists(
                f"Namespace already exists: {record.name}", errordetails.NamespaceAlreadyExistsFailure()
            )

    async def get_namespace_by_name(self, name: str) -> NamespaceRecord | None:
        row = await fetch_one(self._db, f"SELECT {_NS_COLS} FROM namespaces WHERE name = ?", name)
        return None if row is None else _namespace(row)

    async def get_namespace_by_id(self, namespace_id: str) -> NamespaceRecord | None:
        row = await fetch_one(self._db, f"SELECT {_NS_COLS} FROM namespaces WHERE id = ?", namespace_id)
        return None if row is None else _namespace(row)

    async def list_namespaces(
        self, page_size: int, next_page_token: bytes | None
    ) -> tuple[list[NamespaceRecord], bytes | None]:
        # The token is the last name returned: keyset pagination stays correct while namespaces are added.
        after = next_page_token.decode() if next_page_token else None
        size = max(page_size, 1)

        if after is None:
            rows = await self._db.fetch(f"SELECT {_NS_COLS} FROM namespaces ORDER BY name LIMIT ?", size + 1)
        else:
            rows = await self._db.fetch(
                f"SELECT {_NS_COLS} FROM namespaces WHERE name > ? ORDER BY name LIMIT ?", after, size + 1
            )
        page = [_namespace(r) for r in rows[:size]]
        token = page[-1].name.encode() if len(rows) > size else None
        return page, token

    async def update_namespace(self, record: NamespaceRecord, expected_notification_version: int) -> None:
        async def op(tx: Tx) -> int:
            return await tx.execute(
                "UPDATE namespaces SET name = ?, data = ?, notification_version = ? "
                "WHERE id = ? AND notification_version = ?",
                record.name,
                record.data,
                expected_notification_version + 1,
                record.id,
                expected_notification_version,
            )

        if await self._db.run(op) == 0:
            raise ConditionFailed(
                f"namespace {record.name} was updated concurrently "
                f"(expected notification version {expected_notification_version})"
            )
        record.notification_version = expected_notification_version + 1

    async def rename_namespace(
        self, namespace_id: str, new_name: str, data: bytes, expected_notification_version: int
    ) -> None:
        async def op(tx: Tx) -> int:
            # Checked in the transaction so a taken name is AlreadyExists, not a unique-constraint error.
            taken = await tx.fetchone("SELECT id FROM namespaces WHERE name = ? AND id <> ?", new_name, namespace_id)
            if taken is not None:
                raise AlreadyExists(
                    f"Namespace already exists: {new_name}", errordetails.NamespaceAlreadyExistsFailure()
                )
            return await tx.execute(
                "UPDATE namespaces SET name = ?, data = ?, notification_version = ? "
                "WHERE id = ? AND notification_version = ?",
                new_name,
                data,
                expected_notification_version + 1,
                namespace_id,
                expected_notification_version,
            )

        if await self._db.run(op) == 0:
            raise ConditionFailed(
                f"namespace {namespace_id} was updated concurrently "
                f"(expected notification version {expected_notification_version})"
            )

    async def list_namespace_executions(
        self, namespace_id: str, page_size: int, next_page_token: bytes | None
    ) -> tuple[list[NamespaceExecution], bytes | None]:
        size = max(page_size, 1)
        cols = "shard_id, workflow_id, run_id, state"
        if next_page_token:
            try:
                shard, wf, run = json.loads(next_page_token)
                after = (int(shard), str(wf), str(run))
            except (ValueError, TypeError):
                raise InvalidArgument("Invalid NextPageToken.") from None
            rows = await self._db.fetch(
                f"SELECT {cols} FROM executions WHERE namespace_id = ? AND (shard_id > ? OR (shard_id = ? AND "
                "(workflow_id > ? OR (workflow_id = ? AND run_id > ?)))) "
                "ORDER BY shard_id, workflow_id, run_id LIMIT ?",
                namespace_id, after[0], after[0], after[1], after[1], after[2], size + 1,
            )
        else:
            rows = await self._db.fetch(
                f"SELECT {cols} FROM executions WHERE namespace_id = ? ORDER BY shard_id, workflow_id, run_id LIMIT ?",
                namespace_id, size + 1,
            )
        page = [NamespaceExecution(int(r[0]), r[1], r[2], int(r[3])) for r in rows[:size]]
        token = None
        if len(rows) > size:
            last = page[-1]
            token = json.dumps([last.shard_id, last.workflow_id, last.run_id]).encode()
        return page, token

    async def delete_namespace(self, namespace_id: str) -> None:
        async def op(tx: Tx) -> None:
            await tx.execute("DELETE FROM executions_visibility WHERE namespace_id = ?", namespace_id)
            await tx.execute("DELETE FROM namespaces WHERE id = ?", namespace_id)

        await self._db.run(op)


class SqlClusterMetadataStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get_cluster_metadata(self) -> ClusterMetadata | None:
        row = await fetch_one(
            self._db,
            "SELECT cluster_name, num_history_shards, data FROM cluster_metadata WHERE metadata_partition = 1",
        )
        return None if row is None else ClusterMetadata(row[0], row[1], bytes(row[2]))

    async def init_cluster_metadata(self, metadata: ClusterMetadata) -> ClusterMetadata:
        async def op(tx: Tx) -> Row | None:
            await tx.execute(
                "INSERT INTO cluster_metadata (metadata_partition, cluster_name, num_history_shards, data) "
                "VALUES (1, ?, ?, ?) ON CONFLICT DO NOTHING",
                metadata.cluster_name,
                metadata.num_history_shards,
                metadata.data,
            )
            return await tx.fetchone(
                "SELECT cluster_name, num_history_shards, data FROM cluster_metadata WHERE metadata_partition = 1"
            )

        row = await self._db.run(op)
        assert row is not None
        return ClusterMetadata(row[0], row[1], bytes(row[2]))


def shard_lost(shard_id: int, range_id: int, stored: int | None) -> ShardOwnershipLost:
    return ShardOwnershipLost(shard_id, f"Shard {shard_id} ownership lost: range_id {range_id} != {stored}")


def lease_lost(key: TaskQueueKey, range_id: int) -> ConditionFailed:
    return ConditionFailed(f"{_queue_desc(key)} lease lost: range_id is no longer {range_id}")


async def check_shard_range(tx: Tx, shard_id: int, range_id: int) -> None:
    """Fencing: the caller's range_id must still be the stored one. On PostgreSQL the FOR SHARE lock makes a
    concurrent acquisition (an UPDATE of this row) wait until this transaction has committed."""
    row = await tx.fetchone(f"SELECT range_id FROM shards WHERE shard_id = ?{lock_suffix(tx)}", shard_id)
    if row is None or row[0] != range_id:
        raise shard_lost(shard_id, range_id, None if row is None else row[0])


class SqlShardStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get_or_create_shard(self, shard_id: int) -> ShardRecord:
        async def op(tx: Tx) -> Row | None:
            await tx.execute(
                "INSERT INTO shards (shard_id, range_id, owner, data) VALUES (?, 0, '', ?) ON CONFLICT DO NOTHING",
                shard_id,
                b"",
            )
            return await tx.fetchone("SELECT range_id, data, owner FROM shards WHERE shard_id = ?", shard_id)

        row = await self._db.run(op)
        assert row is not None
        return ShardRecord(shard_id=shard_id, range_id=row[0], data=bytes(row[1]), owner=row[2])

    async def update_shard(self, record: ShardRecord, expected_range_id: int) -> None:
        async def op(tx: Tx) -> int:
            return await tx.execute(
                "UPDATE shards SET range_id = ?, data = ?, owner = ? WHERE shard_id = ? AND range_id = ?",
                record.range_id,
                record.data,
                record.owner,
                record.shard_id,
                expected_range_id,
            )

        if await self._db.run(op) == 0:
            raise ShardOwnershipLost(
                record.shard_id,
                f"Shard {record.shard_id} ownership lost: range_id is no longer {expected_range_id}",
            )


_TQ_WHERE = "namespace_id = ? AND name = ? AND task_type = ? AND partition = ?"


def _key_args(key: TaskQueueKey) -> tuple[str, str, int, int]:
    return (key.namespace_id, key.name, key.task_type, key.partition)


def _queue_desc(key: TaskQueueKey) -> str:
    return f"task queue {key.name!r} (type {key.task_type}, partition {key.partition})"


class SqlTaskStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def lease_task_queue(self, key: TaskQueueKey) -> TaskQueueRecord:
        async def op(tx: Tx) -> Row | None:
            await tx.execute(
                "INSERT INTO task_queues (namespace_id, name, task_type, partition, range_id, ack_level, data) "
                "VALUES (?, ?, ?, ?, 0, 0, ?) ON CONFLICT DO NOTHING",
                *_key_args(key),
                b"",
            )
            return await tx.fetchone(
                f"UPDATE task_queues SET range_id = range_id + 1 WHERE {_TQ_WHERE} RETURNING range_id, ack_level, data",
                *_key_args(key),
            )

        row = await self._db.run(op)
        assert row is not None
        return TaskQueueRecord(key=key, range_id=row[0], ack_level=row[1], data=bytes(row[2]))

    async def update_task_queue(self, record: TaskQueueRecord) -> None:
        async def op(tx: Tx) -> int:
            return await tx.execute(
                f"UPDATE task_queues SET ack_level = ?, data = ? WHERE {_TQ_WHERE} AND range_id = ?",
                record.ack_level,
                record.data,
                *_key_args(record.key),
                record.range_id,
            )

        if await self._db.run(op) == 0:
            raise lease_lost(record.key, record.range_id)

    async def create_tasks(self, key: TaskQueueKey, range_id: int, tasks: Sequence[TaskRecord]) -> None:
        async def op(tx: Tx) -> None:
            row = await tx.fetchone(
                f"SELECT range_id FROM task_queues WHERE {_TQ_WHERE}{lock_suffix(tx)}", *_key_args(key)
            )
            if row is None or row[0] != range_id:
                raise lease_lost(key, range_id)
            if tasks:
                await tx.executemany(
                    "INSERT INTO tasks (namespace_id, name, task_type, partition, task_id, expiry_time, data) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(*_key_args(key), t.task_id, opt_micros(t.expiry_time), t.data) for t in tasks],
                )

        await self._db.run(op)

    async def get_tasks(
        self, key: TaskQueueKey, exclusive_min_task_id: int, max_task_id: int, limit: int
    ) -> list[TaskRecord]:
        rows = await self._db.fetch(
            f"SELECT task_id, data, expiry_time FROM tasks WHERE {_TQ_WHERE} AND task_id > ? AND task_id <= ? "
            "ORDER BY task_id LIMIT ?",
            *_key_args(key),
            exclusive_min_task_id,
            max_task_id,
            limit,
        )
        return [
            TaskRecord(
                task_id=r[0], data=bytes(r[1]), expiry_time=None if r[2] is None else from_micros(r[2])
            )
            for r in rows
        ]

    async def complete_tasks_less_than(self, key: TaskQueueKey, exclusive_max_task_id: int) -> int:
        async def op(tx: Tx) -> int:
            return await tx.execute(
                f"DELETE FROM tasks WHERE {_TQ_WHERE} AND task_id < ?", *_key_args(key), exclusive_max_task_id
            )

        return await self._db.run(op)

    async def list_task_queues(self, limit: int) -> list[TaskQueueRecord]:
        rows = await self._db.fetch(
            "SELECT namespace_id, name, task_type, partition, range_id, ack_level FROM task_queues "
            "ORDER BY namespace_id, name, task_type, partition LIMIT ?",
            max(limit, 1),
        )
        return [
            TaskQueueRecord(key=TaskQueueKey(r[0], r[1], r[2], r[3]), range_id=r[4], ack_level=r[5]) for r in rows
        ]
