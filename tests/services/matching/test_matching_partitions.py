"""Partitions of one queue on one host behave like one queue: no task waits on a partition while a poller of the
same queue is parked on another one (no rotation needed to find it)."""

from __future__ import annotations

import asyncio
import time

from temporalio.api.enums.v1 import task_queue_pb2 as tq_enums

from server.common.clock import ManualClock
from server.persistence.interface import TaskQueueKey
from services.matching.service import MatchingService
from services.matching.task_queue import new_task_info

from .conftest import ServiceFactory
from .helpers import NS, TQ, add_activity, deadline_in, poll_activity, wait_until

PARTITIONS = 4
ACTIVITY = tq_enums.TASK_QUEUE_TYPE_ACTIVITY


def key(partition: int) -> TaskQueueKey:
    return TaskQueueKey(NS, TQ, ACTIVITY, partition)


def waiting(svc: MatchingService, partition: int) -> int:
    mgr = svc.loaded(key(partition))
    return 0 if mgr is None else mgr.waiting_pollers()


async def partitioned(make_service: ServiceFactory) -> MatchingService:
    svc = await make_service()
    svc.partitions = PARTITIONS
    return svc


async def test_task_added_to_a_child_partition_reaches_a_poller_parked_on_the_root_at_once(
    make_service: ServiceFactory,
) -> None:
    svc = await partitioned(make_service)
    # The child partition is loaded and has no poller; the only poller waits on the root.
    await svc.get_manager(key(3), sticky=False)
    poll = poll_activity()
    poll.partition = 0
    polling = asyncio.create_task(svc.handler.PollActivityTaskQueue(poll, deadline=deadline_in(30)))
    await wait_until(lambda: waiting(svc, 0) == 1)

    add = add_activity("wf-child")
    add.partition = 3
    started = time.monotonic()
    await svc.handler.AddActivityTask(add)
    response = await asyncio.wait_for(polling, timeout=1.0)
    assert response.task_token == b"act-wf-child"
    assert time.monotonic() - started < 0.5  # well under a poll slice (2 s)


async def test_child_backlog_without_local_pollers_drains_to_pollers_on_the_root(
    make_service: ServiceFactory,
) -> None:
    first = await partitioned(make_service)
    for wf in ("wf-1", "wf-2", "wf-3"):
        add = add_activity(wf)
        add.partition = 2
        await first.handler.AddActivityTask(add)  # nobody polls: persisted in partition 2's backlog
    await first.stop()

    # A new owner: pollers park on the root only; partition 2 is loaded because of them and its backlog
    # (read back from the database) goes to the root's parked pollers.
    second = await partitioned(make_service)
    polls = []
    for i in range(3):
        poll = poll_activity(identity=f"worker-{i}")
        poll.partition = 0
        polls.append(asyncio.create_task(second.handler.PollActivityTaskQueue(poll, deadline=deadline_in(30))))
    started = time.monotonic()
    responses = await asyncio.wait_for(asyncio.gather(*polls), timeout=2.0)
    assert sorted(r.task_token for r in responses) == [b"act-wf-1", b"act-wf-2", b"act-wf-3"]
    assert time.monotonic() - started < 1.0
    # The tasks are acknowledged on the partition that holds them.
    child = second.loaded(key(2))
    assert child is not None
    await wait_until(lambda: child.backlog_count() == 0)
    assert waiting(second, 2) == 0


async def test_backlog_read_later_goes_to_a_sibling_poller(make_service: ServiceFactory) -> None:
    svc = await partitioned(make_service)
    poll = poll_activity()
    poll.partition = 1
    polling = asyncio.create_task(svc.handler.PollActivityTaskQueue(poll, deadline=deadline_in(30)))
    await wait_until(lambda: waiting(svc, 1) == 1)
    # A task lands in partition 2's ready queue from its backlog (not by sync match): the poller on 1 gets it.
    child = await svc.get_manager(key(2), sticky=False)
    await child._add_to_backlog(new_task_info(NS, "wf-late", "run-wf-late", 5, 1, 1, svc.clock.now(), 0))
    response = await asyncio.wait_for(polling, timeout=1.0)
    assert response.task_token == b"act-wf-late"
    await wait_until(lambda: child.backlog_count() == 0)



async def test_a_poller_serving_several_partitions_takes_the_oldest_task_first(
    make_service: ServiceFactory, clock: ManualClock
) -> None:
    # No partition's backlog may wait behind newer tasks of the others (this caused the p95/p99 tail).
    svc = await partitioned(make_service)
    for wf, partition in (("wf-old", 3), ("wf-mid", 0), ("wf-new", 3)):
        add = add_activity(wf)
        add.partition = partition
        await svc.handler.AddActivityTask(add)
        clock.advance(1.0)
    await wait_until(lambda: all(svc.loaded(key(p)) is not None for p in (0, 3)))
    await wait_until(lambda: sum(m.backlog_count() for m in svc.managers()) == 3)
    got = []
    for _ in range(3):
        poll = poll_activity()
        poll.partition = 0
        response = await svc.handler.PollActivityTaskQueue(poll, deadline=deadline_in(10))
        got.append(response.task_token)
    assert got == [b"act-wf-old", b"act-wf-mid", b"act-wf-new"]
