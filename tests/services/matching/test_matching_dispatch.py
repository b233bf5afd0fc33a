"""Sync match, persisted FIFO backlog, restarts, long-poll budgets, stale tasks, cancellation, History errors."""

from __future__ import annotations

import asyncio
import time

import pytest
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv

from server.common.clock import ManualClock
from server.common.errors import AlreadyExists, InvalidArgument, NotFound, Unavailable
from server.persistence.interface import Persistence, TaskQueueKey
from services.matching.service import MatchingService

from .conftest import ServiceFactory
from .helpers import (
    NS,
    TQ,
    FakeHistory,
    add_activity,
    add_wft,
    deadline_in,
    poll_activity,
    poll_wft,
    wait_until,
)

WF_KEY = TaskQueueKey(NS, TQ, 1)
ACT_KEY = TaskQueueKey(NS, TQ, 2)


def waiting(svc: MatchingService, key: TaskQueueKey = WF_KEY) -> int:
    mgr = svc.loaded(key)
    return 0 if mgr is None else mgr.waiting_pollers()


async def backlog_rows(persistence: Persistence, key: TaskQueueKey = WF_KEY) -> list[str]:
    from server.gen.durata.internal.matching.v1 import service_pb2 as mpb

    rows = await persistence.tasks.get_tasks(key, 0, 1 << 62, 1000)
    return [mpb.TaskInfo.FromString(r.data).workflow_id for r in rows]


async def test_sync_match_hands_task_to_waiting_poller_without_db_write(
    make_service: ServiceFactory, persistence: Persistence, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes: list[int] = []
    real_create = persistence.tasks.create_tasks

    async def counting_create(key, range_id, tasks):  # noqa: ANN001, ANN202
        writes.append(len(tasks))
        return await real_create(key, range_id, tasks)

    monkeypatch.setattr(persistence.tasks, "create_tasks", counting_create)
    svc = await make_service()
    poll = asyncio.create_task(svc.handler.PollWorkflowTaskQueue(poll_wft(), deadline=deadline_in(10)))
    await wait_until(lambda: waiting(svc) == 1)

    await svc.handler.AddWorkflowTask(add_wft("wf-sync"))
    response = await poll
    assert response.workflow_execution.workflow_id == "wf-sync"
    assert response.task_token == b"wft-wf-sync"
    assert writes == []
    assert await backlog_rows(persistence) == []


async def test_backlog_is_persisted_and_served_fifo(
    make_service: ServiceFactory, persistence: Persistence, history: FakeHistory
) -> None:
    svc = await make_service()
    for wf in ("wf-1", "wf-2", "wf-3"):
        await svc.handler.AddWorkflowTask(add_wft(wf))
    assert await backlog_rows(persistence) == ["wf-1", "wf-2", "wf-3"]

    got = []
    for _ in range(3):
        response = await svc.handler.PollWorkflowTaskQueue(poll_wft(), deadline=deadline_in(10))
        got.append(response.workflow_execution.workflow_id)
    assert got == ["wf-1", "wf-2", "wf-3"]
    # Every dispatch went through History's record-started with the poll request attached.
    assert [c.workflow_execution.workflow_id for c in history.calls] == got
    assert all(c.poll_request.identity == "worker-1" and c.request_id for c in history.calls)

    # Delivered rows are deleted once the ack level is flushed.
    for _ in range(500):
        if await backlog_rows(persistence) == []:
            break
        await asyncio.sleep(0.01)
    assert await backlog_rows(persistence) == []


async def test_backlog_survives_matching_restart(
    make_service: ServiceFactory, persistence: Persistence
) -> None:
    first = await make_service()
    await first.handler.AddWorkflowTask(add_wft("wf-a"))
    await first.handler.AddWorkflowTask(add_wft("wf-b"))
    await first.handler.AddActivityTask(add_activity("wf-act"))
    await first.stop()

    second = await make_service()
    response = await second.handler.PollWorkflowTaskQueue(poll_wft(), deadline=deadline_in(10))
    assert response.workflow_execution.workflow_id == "wf-a"
    activity = await second.handler.PollActivityTaskQueue(poll_activity(), deadline=deadline_in(10))
    assert activity.task_token == b"act-wf-act"
    # A new task added after the restart queues behind the old backlog (ids only grow across leases).
    await second.handler.AddWorkflowTask(add_wft("wf-c"))
    await second.stop()  # flushes the ack level: wf-a is done

    third = await make_service()
    got = []
    for _ in range(2):
        response = await third.handler.PollWorkflowTaskQueue(poll_wft(), deadline=deadline_in(10))
        got.append(response.workflow_execution.workflow_id)
    assert got == ["wf-b", "wf-c"]


async def test_poll_returns_all_default_response_before_deadline(make_service: ServiceFactory) -> None:
    svc = await make_service(long_poll_timeout=60.0, poll_deadline_margin=0.5)
    start = time.monotonic()
    response = await svc.handler.PollWorkflowTaskQueue(poll_wft(), deadline=deadline_in(1.0))
    elapsed = time.monotonic() - start
    assert response == wsv.PollWorkflowTaskQueueResponse()
    assert 0.3 < elapsed < 1.0

    # Without a deadline the configured budget applies.
    svc2 = await make_service(long_poll_timeout=0.2)
    start = time.monotonic()
    activity = await svc2.handler.PollActivityTaskQueue(poll_activity())
    assert activity == wsv.PollActivityTaskQueueResponse()
    assert time.monotonic() - start < 1.0
    # Deadline already (almost) passed: answer at once.
    assert await svc2.handler.PollWorkflowTaskQueue(poll_wft(), deadline=deadline_in(0.1)) == (
        wsv.PollWorkflowTaskQueueResponse()
    )


async def test_stale_task_is_dropped_and_poll_keeps_waiting(
    make_service: ServiceFactory, persistence: Persistence, history: FakeHistory
) -> None:
    history.errors["wf-gone"] = [NotFound("workflow not found")]
    history.errors["wf-dup"] = [AlreadyExists("already started")]
    svc = await make_service()
    await svc.handler.AddWorkflowTask(add_wft("wf-gone"))
    await svc.handler.AddWorkflowTask(add_wft("wf-dup"))
    poll = asyncio.create_task(svc.handler.PollWorkflowTaskQueue(poll_wft(), deadline=deadline_in(10)))
    # Both stale tasks are consumed; the same poll then parks waiting for more.
    await wait_until(lambda: len(history.calls) == 2 and waiting(svc) == 1)
    assert not poll.done()
    await svc.handler.AddWorkflowTask(add_wft("wf-live"))
    response = await poll
    assert response.workflow_execution.workflow_id == "wf-live"
    for _ in range(500):
        if await backlog_rows(persistence) == []:
            break
        await asyncio.sleep(0.01)
    assert await backlog_rows(persistence) == []


async def test_cancelled_parked_poll_leaves_no_ghost_poller(make_service: ServiceFactory) -> None:
    svc = await make_service()
    poll = asyncio.create_task(svc.handler.PollWorkflowTaskQueue(poll_wft(), deadline=deadline_in(10)))
    await wait_until(lambda: waiting(svc) == 1)
    poll.cancel()
    with pytest.raises(asyncio.CancelledError):
        await poll
    assert waiting(svc) == 0
    # The task is not handed to the gone poller: it waits in the backlog for the next one.
    await svc.handler.AddWorkflowTask(add_wft("wf-1"))
    response = await svc.handler.PollWorkflowTaskQueue(poll_wft("worker-2"), deadline=deadline_in(10))
    assert response.workflow_execution.workflow_id == "wf-1"


async def test_poll_cancelled_during_record_started_does_not_lose_sync_task(
    make_service: ServiceFactory, history: FakeHistory, persistence: Persistence
) -> None:
    svc = await make_service()
    history.gate = asyncio.Event()
    poll = asyncio.create_task(svc.handler.PollWorkflowTaskQueue(poll_wft(), deadline=deadline_in(10)))
    await wait_until(lambda: waiting(svc) == 1)
    add = asyncio.create_task(svc.handler.AddWorkflowTask(add_wft("wf-1")))
    await wait_until(lambda: len(history.calls) == 1)  # matched; History call in flight
    poll.cancel()
    with pytest.raises(asyncio.CancelledError):
        await poll
    await add  # the adder learns the handoff failed and persists the task
    assert await backlog_rows(persistence) == ["wf-1"]
    history.gate.set()
    response = await svc.handler.PollWorkflowTaskQueue(poll_wft("worker-2"), deadline=deadline_in(10))
    assert response.workflow_execution.workflow_id == "wf-1"
    # Same in-memory task object was not reused: History sees a fresh dispatch of the persisted copy.
    assert len(history.calls) == 2


async def test_poll_cancelled_during_record_started_requeues_backlog_task(
    make_service: ServiceFactory, history: FakeHistory
) -> None:
    svc = await make_service()
    await svc.handler.AddWorkflowTask(add_wft("wf-1"))
    history.gate = asyncio.Event()
    poll = asyncio.create_task(svc.handler.PollWorkflowTaskQueue(poll_wft(), deadline=deadline_in(10)))
    await wait_until(lambda: len(history.calls) == 1)
    poll.cancel()
    with pytest.raises(asyncio.CancelledError):
        await poll
    history.gate.set()
    response = await svc.handler.PollWorkflowTaskQueue(poll_wft("worker-2"), deadline=deadline_in(10))
    assert response.workflow_execution.workflow_id == "wf-1"
    # A re-dispatch of the same task reuses its request id, so History can answer idempotently.
    assert history.calls[0].request_id == history.calls[1].request_id


async def test_history_unavailable_keeps_the_task(make_service: ServiceFactory, history: FakeHistory) -> None:
    history.errors["wf-1"] = [Unavailable("shard moving")]
    svc = await make_service()
    await svc.handler.AddActivityTask(add_activity("wf-1"))
    first = await svc.handler.PollActivityTaskQueue(poll_activity(), deadline=deadline_in(10))
    assert first == wsv.PollActivityTaskQueueResponse()
    second = await svc.handler.PollActivityTaskQueue(poll_activity(), deadline=deadline_in(10))
    assert second.task_token == b"act-wf-1"


async def test_sync_match_falls_back_to_backlog_when_history_unavailable(
    make_service: ServiceFactory, history: FakeHistory, persistence: Persistence
) -> None:
    history.errors["wf-1"] = [Unavailable("shard moving")]
    svc = await make_service()
    poll = asyncio.create_task(svc.handler.PollWorkflowTaskQueue(poll_wft(), deadline=deadline_in(10)))
    await wait_until(lambda: waiting(svc) == 1)
    await svc.handler.AddWorkflowTask(add_wft("wf-1"))
    assert await poll == wsv.PollWorkflowTaskQueueResponse()
    assert await backlog_rows(persistence) == ["wf-1"]
    response = await svc.handler.PollWorkflowTaskQueue(poll_wft(), deadline=deadline_in(10))
    assert response.workflow_execution.workflow_id == "wf-1"


async def test_expired_activity_task_is_dropped_without_dispatch(
    make_service: ServiceFactory, history: FakeHistory, clock: ManualClock
) -> None:
    svc = await make_service(long_poll_timeout=0.3)
    await svc.handler.AddActivityTask(add_activity("wf-old", schedule_to_start=5))
    clock.advance(6)
    assert await svc.handler.PollActivityTaskQueue(poll_activity()) == wsv.PollActivityTaskQueueResponse()
    assert history.calls == []


async def test_shutdown_ends_parked_polls_empty(make_service: ServiceFactory) -> None:
    svc = await make_service(long_poll_timeout=30.0)
    polls = [
        asyncio.create_task(svc.handler.PollWorkflowTaskQueue(poll_wft(f"w{i}"), deadline=deadline_in(60)))
        for i in range(3)
    ]
    await wait_until(lambda: waiting(svc) == 3)
    start = time.monotonic()
    await svc.stop()
    results = await asyncio.gather(*polls)
    assert all(r == wsv.PollWorkflowTaskQueueResponse() for r in results)
    assert time.monotonic() - start < 2
    # Polls arriving after stop answer empty at once.
    assert await svc.handler.PollWorkflowTaskQueue(poll_wft(), deadline=deadline_in(60)) == (
        wsv.PollWorkflowTaskQueueResponse()
    )


async def test_many_concurrent_adds_are_batched_and_all_delivered(
    make_service: ServiceFactory, persistence: Persistence
) -> None:
    svc = await make_service(
        backlog_write_batch=16, backlog_read_batch=8, backlog_buffer_max=20, backlog_low_water=5
    )
    names = [f"wf-{i:03d}" for i in range(60)]
    for chunk in range(0, 60, 20):
        await asyncio.gather(*(svc.handler.AddWorkflowTask(add_wft(n)) for n in names[chunk : chunk + 20]))
    got = []
    for _ in names:
        response = await svc.handler.PollWorkflowTaskQueue(poll_wft(), deadline=deadline_in(10))
        got.append(response.workflow_execution.workflow_id)
    assert sorted(got) == names
    # FIFO between batches (within one gather the order of adds is not defined).
    assert [int(g[3:]) // 20 for g in got] == sorted(int(g[3:]) // 20 for g in got)


async def test_invalid_requests_are_rejected(make_service: ServiceFactory) -> None:
    svc = await make_service()
    bad = add_wft("wf-1", queue="")
    with pytest.raises(InvalidArgument):
        await svc.handler.AddWorkflowTask(bad)
    with pytest.raises(InvalidArgument):
        await svc.handler.PollWorkflowTaskQueue(poll_wft(queue=""), deadline=deadline_in(5))


async def test_second_owner_fences_out_the_first(make_service: ServiceFactory) -> None:
    first = await make_service()
    await first.handler.AddWorkflowTask(add_wft("wf-1"))
    second = await make_service()
    # Loading the queue on the second host bumps range_id: the first host's next write is refused.
    assert (
        await second.handler.PollWorkflowTaskQueue(poll_wft(), deadline=deadline_in(10))
    ).workflow_execution.workflow_id == "wf-1"
    with pytest.raises(Unavailable):
        await first.handler.AddWorkflowTask(add_wft("wf-2"))
    assert first.loaded(WF_KEY) is None


async def test_janitor_unloads_idle_queues(make_service: ServiceFactory) -> None:
    svc = await make_service(idle_unload_after=0.05, janitor_interval=0.02, long_poll_timeout=0.01)
    await svc.handler.PollWorkflowTaskQueue(poll_wft(queue="sticky-q", sticky=True))
    await svc.handler.AddWorkflowTask(add_wft("wf-1"))
    key = TaskQueueKey(NS, "sticky-q", 1)
    await wait_until(lambda: svc.loaded(key) is None)
    # The normal queue holds a backlog task in memory, so it stays loaded.
    assert svc.loaded(WF_KEY) is not None


async def test_task_id_range_is_renewed_when_exhausted(
    make_service: ServiceFactory, persistence: Persistence, monkeypatch: pytest.MonkeyPatch
) -> None:
    import services.matching.backlog as backlog_mod

    # Four ids per lease instead of 2**20, so a handful of adds crosses several ranges.
    monkeypatch.setattr(backlog_mod, "task_id_range", lambda range_id: (range_id * 4, (range_id + 1) * 4))
    svc = await make_service(backlog_write_batch=2)
    names = [f"wf-{i}" for i in range(9)]
    for name in names:
        await svc.handler.AddWorkflowTask(add_wft(name))
    assert await backlog_rows(persistence) == names
    record = await persistence.tasks.lease_task_queue(WF_KEY)  # fences svc out; reveals how far it got
    assert record.range_id >= 4

    fresh = await make_service(backlog_write_batch=2)
    got = []
    for _ in names:
        response = await fresh.handler.PollWorkflowTaskQueue(poll_wft(), deadline=deadline_in(10))
        got.append(response.workflow_execution.workflow_id)
    assert got == names
