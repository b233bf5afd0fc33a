"""An update rejected by its validator leaves the workflow's history exactly as it was (Temporal's speculative
workflow task), with the Durata SDK against both the real Temporal dev server and Durata."""

from __future__ import annotations

import uuid

import pytest
from durata.client import WorkflowUpdateFailedError
from durata.worker import Worker
from temporalio.api.enums.v1.event_type_pb2 import EventType

from .conftest import wait_for
from .workflows import ALL_ACTIVITIES, ALL_WORKFLOWS, SignalQueryUpdateWorkflow


async def _types(handle) -> list[int]:  # type: ignore[no-untyped-def]
    return [e.event_type for e in (await handle.fetch_history()).events]


async def _idle(handle) -> bool:  # type: ignore[no-untyped-def]
    return (await _types(handle))[-1] == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED


async def test_rejected_update_leaves_history_unchanged(client, task_queue):  # type: ignore[no-untyped-def]
    async with Worker(client, task_queue=task_queue, workflows=ALL_WORKFLOWS, activities=ALL_ACTIVITIES):
        handle = await client.start_workflow(
            SignalQueryUpdateWorkflow.run, id=f"rej-{uuid.uuid4().hex[:8]}", task_queue=task_queue
        )
        await handle.signal(SignalQueryUpdateWorkflow.add, "a")
        await wait_for(lambda: _idle(handle))
        before = await _types(handle)
        assert EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED in before
        for _ in range(2):
            with pytest.raises(WorkflowUpdateFailedError) as info:
                await handle.execute_update(SignalQueryUpdateWorkflow.add_and_count, "")
            assert "empty item rejected" in str(info.value.__cause__)
            assert await _types(handle) == before
        # An accepted update after the rejections: its events follow the history as it was.
        assert await handle.execute_update(SignalQueryUpdateWorkflow.add_and_count, "b") == 2
        after = await _types(handle)
        assert after[: len(before)] == before
        assert after[len(before):len(before) + 4] == [
            EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
            EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
            EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
        ]
        await handle.signal("finish")
        assert await handle.result() == ["a", "b"]
