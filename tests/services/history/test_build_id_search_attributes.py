"""BuildIds as Temporal keeps them: the unversioned sentinel first, one entry per build, oldest dropped first
when the list outgrows one search attribute value."""

from __future__ import annotations

import json

from temporalio.api.common.v1 import message_pb2 as common_pb2

from services.history.build_id_search_attributes import MAX_VALUE_BYTES, next_build_ids


def stamp(build_id: str, versioned: bool = False) -> common_pb2.WorkerVersionStamp:
    return common_pb2.WorkerVersionStamp(build_id=build_id, use_versioning=versioned)


def test_entries_accumulate_once_each_after_the_sentinel() -> None:
    values = next_build_ids([], stamp("a"))
    assert values == ["unversioned", "unversioned:a"]
    values = next_build_ids(values, stamp("b"))
    assert next_build_ids(values, stamp("a")) == ["unversioned", "unversioned:a", "unversioned:b"]
    assert next_build_ids([], None) == ["unversioned"]
    assert next_build_ids(["unversioned", "unversioned:a"], stamp("v1", versioned=True)) == [
        "unversioned:a", "versioned:v1",
    ]  # fmt: skip


def test_an_overlong_list_drops_the_oldest_builds_but_keeps_the_sentinel() -> None:
    values: list[str] = []
    for i in range(100):
        values = next_build_ids(values, stamp(f"build-{i:03d}-" + "x" * 30))
        assert len(json.dumps(values, separators=(",", ":")).encode()) <= MAX_VALUE_BYTES
    assert values[0] == "unversioned" and values[-1].startswith("unversioned:build-099-")
    assert "unversioned:build-000-" + "x" * 30 not in values
    # Characters JSON escapes count in full.
    wide = next_build_ids([], stamp("\u2603" * 400))
    assert len(json.dumps(wide, separators=(",", ":")).encode()) <= MAX_VALUE_BYTES and wide == ["unversioned"]
