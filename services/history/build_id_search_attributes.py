"""BuildIds and BinaryChecksums: the predefined search attributes History keeps from workflow-task completions,
so operators can find the runs a worker build touched (``BuildIds = 'unversioned:abc'``) before they reset or
retire it. Values follow Temporal's: an ``unversioned`` sentinel first for unversioned runs, then one
``unversioned:<build>`` / ``versioned:<build>`` entry per build that completed a task; BinaryChecksums lists the
checksums of the run's auto-reset points."""

from __future__ import annotations

import json
from datetime import timedelta

from temporalio.api.common.v1 import message_pb2 as common_pb2

from server.gen.durata.internal.history.v1 import state_pb2
from server.persistence.interface import TaskCategory

from .mutable_state import MutableState

T = state_pb2.HistoryTaskType
BUILD_IDS = "BuildIds"
BINARY_CHECKSUMS = "BinaryChecksums"
UNVERSIONED = "unversioned"
# Temporal's limit on one search attribute value (dynamic config SearchAttributesSizeOfValueLimit's default).
MAX_VALUE_BYTES = 2 * 1024


def stamp_entry(stamp: common_pb2.WorkerVersionStamp) -> str:
    if not stamp.build_id:
        return UNVERSIONED
    return f"{'versioned' if stamp.use_versioning else 'unversioned'}:{stamp.build_id}"


def _is_sentinel(value: str) -> bool:
    return value == UNVERSIONED or value.startswith(("assigned:", "pinned:"))


def next_build_ids(existing: list[str], stamp: common_pb2.WorkerVersionStamp | None) -> list[str]:
    """The list after a completion by ``stamp``: the sentinel, the earlier builds, then this one if new."""
    values = [] if stamp is not None and stamp.use_versioning else [UNVERSIONED]
    entry = stamp_entry(stamp) if stamp is not None else ""
    values += [v for v in existing if not _is_sentinel(v)]
    if entry and entry not in values:
        values.append(entry)
    # Too long for one value: drop the oldest builds, never the sentinel. (JSON escapes a character in at most 6
    # bytes, so short lists need no encoding to know they fit.)
    first = 1 if values and values[0] == UNVERSIONED else 0
    if sum(6 * len(v) + 3 for v in values) + 2 > MAX_VALUE_BYTES:
        while len(values) > first and len(_encode(values)) > MAX_VALUE_BYTES:
            del values[first]
    return values


def _encode(values: list[str]) -> bytes:
    return json.dumps(values, separators=(",", ":")).encode()


def _load(ms: MutableState, name: str) -> list[str]:
    payload = ms.record.search_attributes.indexed_fields.get(name)
    if payload is None:
        return []
    try:
        value = json.loads(payload.data)
    except ValueError:
        return []
    if isinstance(value, str):
        return [value]
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _store(ms: MutableState, name: str, values: list[str]) -> bool:
    """Write the KeywordList; True if it changed."""
    fields = ms.record.search_attributes.indexed_fields
    if not values:
        if name not in fields:
            return False
        del fields[name]
        return True
    data = _encode(values)
    old = fields.get(name)
    if old is not None and old.data == data and old.metadata.get("type") == b"KeywordList":
        return False
    fields[name].CopyFrom(
        common_pb2.Payload(metadata={"encoding": b"json/plain", "type": b"KeywordList"}, data=data)
    )
    return True


def record_completion(ms: MutableState, stamp: common_pb2.WorkerVersionStamp | None, delay: timedelta) -> None:
    """After a workflow task completed: refresh both attributes. If either changed and this transaction writes no
    visibility (a close does), a timer has visibility catch up after ``delay`` unless the run closed by then:
    a run's first task always changes BuildIds, and an immediate write would cost every short run one more."""
    changed = _store(ms, BUILD_IDS, next_build_ids(_load(ms, BUILD_IDS), stamp))
    checksums = [p.binary_checksum for p in ms.record.auto_reset_points.points if p.binary_checksum]
    if checksums:
        changed = _store(ms, BINARY_CHECKSUMS, list(dict.fromkeys(checksums))) or changed
    if not changed:
        return
    ms.dirty = True
    if not any(t.category == TaskCategory.VISIBILITY for t in ms.tasks):
        ms.add_timer_task(T.HISTORY_TASK_TYPE_VISIBILITY_REFRESH_TIMER, ms.now + delay)


def refresh_timer_fired(ms: MutableState) -> None:
    """The catch-up timer: a run still open gets its visibility row rewritten; a closed one already has."""
    if ms.running:
        ms.add_task(TaskCategory.VISIBILITY, T.HISTORY_TASK_TYPE_VISIBILITY_UPSERT)
        ms.dirty = True
