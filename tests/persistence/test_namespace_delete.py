"""Namespace deletion on both backends: rename to the tombstone name, list a namespace's runs, delete the row."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from server.common.errors import AlreadyExists, ConditionFailed, InvalidArgument
from server.persistence.interface import NamespaceExecution, NamespaceRecord, Persistence, VisibilityRecord

from .helpers import NS, acquire_shard, new_run


async def test_rename_frees_the_name_at_once(persistence: Persistence) -> None:
    store = persistence.namespaces
    await store.create_namespace(NamespaceRecord("id-1", "orders", b"v0"))
    await store.rename_namespace("id-1", "orders-deleted-id-1", b"v1", expected_notification_version=0)

    assert await store.get_namespace_by_name("orders") is None
    got = await store.get_namespace_by_id("id-1")
    assert got == NamespaceRecord("id-1", "orders-deleted-id-1", b"v1", notification_version=1)
    assert await store.get_namespace_by_name("orders-deleted-id-1") == got
    # The old name is immediately free for a new namespace.
    await store.create_namespace(NamespaceRecord("id-2", "orders", b"new"))
    again = await store.get_namespace_by_name("orders")
    assert again is not None and again.id == "id-2"


async def test_rename_conflicts(persistence: Persistence) -> None:
    store = persistence.namespaces
    await store.create_namespace(NamespaceRecord("id-1", "a", b""))
    await store.create_namespace(NamespaceRecord("id-2", "b", b""))
    with pytest.raises(AlreadyExists):
        await store.rename_namespace("id-1", "b", b"x", expected_notification_version=0)
    with pytest.raises(ConditionFailed):  # stale expected version
        await store.rename_namespace("id-1", "a-deleted", b"x", expected_notification_version=7)
    with pytest.raises(ConditionFailed):  # no such namespace
        await store.rename_namespace("missing", "zzz", b"x", expected_notification_version=0)
    # Renaming to its own name is a plain update.
    await store.rename_namespace("id-1", "a", b"same", expected_notification_version=0)
    got = await store.get_namespace_by_id("id-1")
    assert got is not None and (got.name, got.data, got.notification_version) == ("a", b"same", 1)


async def test_list_namespace_executions_pages_over_shards(persistence: Persistence) -> None:
    created: list[tuple[int, str, str]] = []
    for shard_id in (2, 1, 3):
        range_id = await acquire_shard(persistence, shard_id)
        for i in range(3):
            wf, run = f"wf-{i}", f"run-{shard_id}-{i}"
            await persistence.executions.create_workflow_execution(shard_id, range_id, new_run(wf, run))
            created.append((shard_id, wf, run))
    # Another namespace's run is never listed.
    other = new_run("wf-x", "run-x")
    other.execution.namespace_id = "ns-other"
    await persistence.executions.create_workflow_execution(1, await acquire_shard(persistence, 1), other)

    seen: list[NamespaceExecution] = []
    token: bytes | None = None
    pages = 0
    while True:
        page, token = await persistence.namespaces.list_namespace_executions(NS, 4, token)
        pages += 1
        seen += page
        if token is None:
            break
    assert [(e.shard_id, e.workflow_id, e.run_id) for e in seen] == sorted(created)
    assert pages == 3 and all(e.state == 1 for e in seen)

    # Deleting rows between pages does not disturb the keyset paging.
    first, token = await persistence.namespaces.list_namespace_executions(NS, 2, None)
    range_1 = await acquire_shard(persistence, 1)
    for e in first:
        await persistence.executions.delete_workflow_execution(e.shard_id, range_1, NS, e.workflow_id, e.run_id)
    rest, _ = await persistence.namespaces.list_namespace_executions(NS, 100, token)
    assert [(e.shard_id, e.workflow_id, e.run_id) for e in rest] == sorted(created)[2:]

    page, token = await persistence.namespaces.list_namespace_executions("ns-empty", 10, None)
    assert page == [] and token is None
    with pytest.raises(InvalidArgument):
        await persistence.namespaces.list_namespace_executions(NS, 10, b"not-a-token")


async def test_delete_namespace_removes_row_and_visibility(persistence: Persistence) -> None:
    store = persistence.namespaces
    await store.create_namespace(NamespaceRecord(NS, "gone", b""))
    await store.create_namespace(NamespaceRecord("id-keep", "keep", b""))
    t = datetime(2026, 1, 1, tzinfo=UTC)
    for ns_id in (NS, "id-keep"):
        await persistence.visibility.upsert_execution(VisibilityRecord(ns_id, "wf", "run", "T", "q", 2, t, t, t))

    await store.delete_namespace(NS)
    await store.delete_namespace(NS)  # idempotent
    assert await store.get_namespace_by_id(NS) is None
    assert await store.get_namespace_by_name("gone") is None
    assert (await persistence.visibility.list_executions(NS, "", 10, None))[0] == []
    kept, _ = await persistence.visibility.list_executions("id-keep", "", 10, None)
    assert [r.run_id for r in kept] == ["run"]
    assert await store.get_namespace_by_id("id-keep") is not None
