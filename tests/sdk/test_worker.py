"""Worker mechanics: sticky queue use, cache eviction, heartbeat throttling."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from durata import activity, workflow
from durata.worker import Worker
from temporalio.api.enums.v1.task_queue_pb2 import TASK_QUEUE_KIND_STICKY

from .workflows import ALL_ACTIVITIES, ALL_WORKFLOWS, SignalQueryUpdateWorkflow, TimerWorkflow


async def test_sticky_queue_is_used(client, task_queue):
    async with Worker(client, task_queue=task_queue, workflows=ALL_WORKFLOWS, activities=ALL_ACTIVITIES):
        h = await client.start_workflow(TimerWorkflow.run, id=f"sticky-{uuid.uuid4()}", task_queue=task_queue)
        await h.result()
    hist = await h.fetch_history()
    kinds = [e.workflow_task_scheduled_event_attributes.task_queue.kind for e in hist.events
             if e.HasField("workflow_task_scheduled_event_attributes")]
    assert len(kinds) >= 3 and all(k == TASK_QUEUE_KIND_STICKY for k in kinds[1:])


async def test_cache_eviction_keeps_workflows_correct(client, task_queue):
    """With room for one cached run, interleaved workflows are evicted and rebuilt from history."""
    async with Worker(client, task_queue=task_queue, workflows=ALL_WORKFLOWS, activities=ALL_ACTIVITIES,
                      max_cached_workflows=1) as worker:
        handles = [await client.start_workflow(SignalQueryUpdateWorkflow.run, id=f"evict-{i}-{uuid.uuid4()}",
                                               task_queue=task_queue) for i in range(3)]
        for round_ in range(3):
            for h in handles:
                await h.signal(SignalQueryUpdateWorkflow.add, f"{round_}")
        for h in handles:
            await h.signal(SignalQueryUpdateWorkflow.finish)
        results = await asyncio.gather(*(h.result() for h in handles))
        assert len(worker._wf.cache) <= 1  # type: ignore[union-attr]
    assert results == [["0", "1", "2"]] * 3


@activity.defn
async def chatty() -> int:
    for i in range(200):
        activity.heartbeat(i)
        await asyncio.sleep(0.005)
    return 200


@workflow.defn
class ChattyWorkflow:
    @workflow.run
    async def run(self) -> int:
        return await workflow.execute_activity(chatty, start_to_close_timeout=timedelta(seconds=30),
                                               heartbeat_timeout=timedelta(seconds=1))


async def test_heartbeats_are_throttled(client, task_queue):
    sent = 0
    original = client.service.call

    async def counting(method, req, **kw):  # type: ignore[no-untyped-def]
        nonlocal sent
        if method == "RecordActivityTaskHeartbeat":
            sent += 1
        return await original(method, req, **kw)

    client.service.call = counting  # type: ignore[method-assign]
    async with Worker(client, task_queue=task_queue, workflows=[ChattyWorkflow], activities=[chatty]):
        assert await client.execute_workflow(ChattyWorkflow.run, id=f"chatty-{uuid.uuid4()}",
                                             task_queue=task_queue) == 200
    # ~1 s of heartbeating with a 0.8 s throttle: a handful of RPCs, not 200.
    assert 1 <= sent <= 5
