"""Namespaces, cluster metadata and shard fencing, on both backends."""

from __future__ import annotations

import pytest

from server.common.errors import AlreadyExists, ConditionFailed, ShardOwnershipLost
from server.persistence.interface import ClusterMetadata, NamespaceRecord, Persistence, ShardRecord


async def test_namespace_crud(persistence: Persistence) -> None:
    ns = NamespaceRecord(id="id-1", name="default", data=b"desc-1")
    await persistence.namespaces.create_namespace(ns)
    assert await persistence.namespaces.get_namespace_by_name("default") == ns
    assert await persistence.namespaces.get_namespace_by_id("id-1") == ns
    assert await persistence.namespaces.get_namespace_by_name("missing") is None
    assert await persistence.namespaces.get_namespace_by_id("missing") is None

    updated = NamespaceRecord(id="id-1", name="default", data=b"desc-2")
    await persistence.namespaces.update_namespace(updated, expected_notification_version=0)
    got = await persistence.namespaces.get_namespace_by_id("id-1")
    assert got is not None and got.data == b"desc-2" and got.notification_version == 1

    with pytest.raises(ConditionFailed):  # stale expected version
        await persistence.namespaces.update_namespace(NamespaceRecord("id-1", "default", b"desc-3"), 0)
    got = await persistence.namespaces.get_namespace_by_id("id-1")
    assert got is not None and got.data == b"desc-2"


async def test_namespace_duplicate_name_or_id(persistence: Persistence) -> None:
    await persistence.namespaces.create_namespace(NamespaceRecord("id-1", "a", b""))
    with pytest.raises(AlreadyExists):
        await persistence.namespaces.create_namespace(NamespaceRecord("id-2", "a", b""))
    with pytest.raises(AlreadyExists):
        await persistence.namespaces.create_namespace(NamespaceRecord("id-1", "b", b""))
    page, token = await persistence.namespaces.list_namespaces(10, None)
    assert [n.name for n in page] == ["a"] and token is None


async def test_namespace_list_pagination(persistence: Persistence) -> None:
    names = [f"ns-{i:02d}" for i in range(7)]
    for i, name in enumerate(reversed(names)):
        await persistence.namespaces.create_namespace(NamespaceRecord(f"id-{i}", name, b""))
    seen: list[str] = []
    token: bytes | None = None
    pages = 0
    while True:
        page, token = await persistence.namespaces.list_namespaces(3, token)
        pages += 1
        seen += [n.name for n in page]
        if token is None:
            break
    assert seen == names and pages == 3


async def test_cluster_metadata_first_writer_wins(persistence: Persistence) -> None:
    assert await persistence.cluster.get_cluster_metadata() is None
    first = await persistence.cluster.init_cluster_metadata(ClusterMetadata("active", 4, b"x"))
    second = await persistence.cluster.init_cluster_metadata(ClusterMetadata("other", 16, b"y"))
    assert first == second == ClusterMetadata("active", 4, b"x")
    assert await persistence.cluster.get_cluster_metadata() == ClusterMetadata("active", 4, b"x")


async def test_shard_acquire_and_fencing(persistence: Persistence) -> None:
    shard = await persistence.shards.get_or_create_shard(3)
    assert (shard.shard_id, shard.range_id, shard.data) == (3, 0, b"")
    assert (await persistence.shards.get_or_create_shard(3)).range_id == 0  # idempotent

    await persistence.shards.update_shard(ShardRecord(3, 1, b"acks-a", "host-a"), expected_range_id=0)
    # host-b steals the shard.
    await persistence.shards.update_shard(ShardRecord(3, 2, b"acks-b", "host-b"), expected_range_id=1)
    # host-a, still believing it owns range 1, can no longer write shard data.
    with pytest.raises(ShardOwnershipLost) as err:
        await persistence.shards.update_shard(ShardRecord(3, 1, b"stale", "host-a"), expected_range_id=1)
    assert err.value.shard_id == 3
    stored = await persistence.shards.get_or_create_shard(3)
    assert (stored.range_id, stored.data, stored.owner) == (2, b"acks-b", "host-b")
    # Other shards are independent.
    assert (await persistence.shards.get_or_create_shard(4)).range_id == 0


async def test_nul_in_text_is_refused_or_stored_never_internal(persistence: Persistence) -> None:
    from server.common.errors import InvalidArgument

    record = NamespaceRecord(id="id-nul", name="bad\x00name", data=b"")
    try:
        await persistence.namespaces.create_namespace(record)
    except InvalidArgument as err:  # PostgreSQL: text cannot contain NUL
        assert "NUL" in err.message
        assert await persistence.namespaces.get_namespace_by_id("id-nul") is None
    else:  # SQLite stores it faithfully
        assert await persistence.namespaces.get_namespace_by_name("bad\x00name") == record
