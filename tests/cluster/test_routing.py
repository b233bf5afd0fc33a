"""The routing clients against fake hosts: following moved shards, partition rotation, merged describes."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from temporalio.api.enums.v1 import task_queue_pb2 as tq_enums
from temporalio.api.taskqueue.v1 import message_pb2 as tq_pb
from temporalio.api.workflowservice.v1 import request_response_pb2 as ws

from server.cluster.ring import HashRing, partition_key
from server.cluster.routing import HistoryRouter, MatchingRouter, RetryPolicy, query_id_for_partition
from server.common.errors import ShardOwnershipLost, Unavailable
from server.gen.durata.internal.common.v1 import tokens_pb2
from server.gen.durata.internal.history.v1 import service_pb2 as hs
from server.gen.durata.internal.matching.v1 import service_pb2 as mpb


@dataclass
class FakeMembership:
    rings: dict[str, HashRing]
    on_refresh: Callable[[], None] | None = None
    refreshes: int = 0

    def ring(self, role: str) -> HashRing:
        return self.rings.get(role, HashRing())

    def self_member(self, role: str) -> str:
        return ""

    def subscribe(self, callback: Callable[[], None]) -> None:
        return None

    async def refresh(self) -> None:
        self.refreshes += 1
        if self.on_refresh is not None:
            self.on_refresh()

    def members(self) -> list[Any]:
        return []


@dataclass
class FakeHost:
    """Answers every method through ``behaviour(host, method, request)``; records the calls."""

    name: str
    behaviour: Callable[[str, str, Any], Any]
    calls: list[tuple[str, Any]] = field(default_factory=list)

    def __getattr__(self, method: str) -> Any:
        async def call(request: Any, *, deadline: float | None = None) -> Any:
            copy = type(request)()
            copy.CopyFrom(request)
            self.calls.append((method, copy))
            return self.behaviour(self.name, method, copy)

        return call


class FakeDialer:
    def __init__(self, hosts: dict[str, FakeHost]) -> None:
        self.hosts = hosts

    def client(self, address: str) -> FakeHost:
        return self.hosts[address]


FAST = RetryPolicy(budget_seconds=2.0, first_backoff=0.01, max_backoff=0.05)


def start(workflow_id: str) -> hs.StartWorkflowExecutionRequest:
    return hs.StartWorkflowExecutionRequest(namespace_id="ns", request=ws.StartWorkflowExecutionRequest(
        workflow_id=workflow_id))


async def test_history_router_follows_a_moved_shard() -> None:
    def behaviour(host: str, method: str, request: Any) -> Any:
        if host == "old":
            raise ShardOwnershipLost(1)
        return ws.StartWorkflowExecutionResponse(run_id="from-new")

    hosts = {"old": FakeHost("old", behaviour), "new": FakeHost("new", behaviour)}
    membership = FakeMembership({"history": HashRing.build(["old"])})
    membership.on_refresh = lambda: membership.rings.update(history=HashRing.build(["new"]))
    router = HistoryRouter(membership, 4, FakeDialer(hosts), FAST)  # type: ignore[arg-type]
    response = await router.StartWorkflowExecution(start("wf"))
    assert response.run_id == "from-new"
    assert len(hosts["old"].calls) == 1 and membership.refreshes >= 1


async def test_history_router_gives_up_with_unavailable() -> None:
    def behaviour(host: str, method: str, request: Any) -> Any:
        raise Unavailable("connection refused")

    membership = FakeMembership({"history": HashRing.build(["dead"])})
    router = HistoryRouter(membership, 4, FakeDialer({"dead": FakeHost("dead", behaviour)}), FAST)  # type: ignore[arg-type]
    began = time.monotonic()
    with pytest.raises(Unavailable):
        await router.StartWorkflowExecution(start("wf"))
    assert time.monotonic() - began < 3.0
    with pytest.raises(Unavailable, match="no live history host"):
        await HistoryRouter(FakeMembership({}), 4, FakeDialer({}), FAST).StartWorkflowExecution(start("wf"))  # type: ignore[arg-type]


def matching_router(behaviour: Callable[[str, str, Any], Any], partitions: int = 4,
                    slice_seconds: float = 0.05) -> tuple[MatchingRouter, dict[str, FakeHost]]:
    hosts = {a: FakeHost(a, behaviour) for a in ("m1", "m2")}
    membership = FakeMembership({"matching": HashRing.build(hosts)})
    router = MatchingRouter(membership, FakeDialer(hosts), partitions, slice_seconds, 0.0, FAST)  # type: ignore[arg-type]
    return router, hosts


def owner(namespace_id: str, name: str, task_type: int, partition: int) -> str | None:
    return HashRing.build(["m1", "m2"]).lookup(partition_key(namespace_id, name, task_type, partition))


async def test_poll_visits_one_partition_per_host_until_one_has_a_task() -> None:
    # A host hands a poll parked on any of its partitions the tasks of all its partitions of the queue, so a poll
    # visits one partition per owning host, not every partition.
    holder = owner("ns", "q", 2, 3)

    def behaviour(host: str, method: str, request: Any) -> Any:
        assert owner("ns", "q", 2, request.partition) == host  # every visit goes to that partition's owner
        if host == holder:
            return ws.PollActivityTaskQueueResponse(task_token=b"t")
        time.sleep(request.max_wait_seconds)  # an idle host holds the poll for its slice
        return ws.PollActivityTaskQueueResponse()

    router, hosts = matching_router(behaviour)
    request = mpb.PollActivityTaskQueueRequest(namespace_id="ns", poll_request=ws.PollActivityTaskQueueRequest(
        task_queue=tq_pb.TaskQueue(name="q")))
    response = await router.PollActivityTaskQueue(request, deadline=time.monotonic() + 30)
    assert response.task_token == b"t"
    assert len(hosts[holder].calls) == 1
    assert sum(len(h.calls) for h in hosts.values()) <= 2


async def test_poll_waits_its_whole_budget_on_a_single_matching_host() -> None:
    host = FakeHost("m1", lambda h, m, r: ws.PollActivityTaskQueueResponse())
    membership = FakeMembership({"matching": HashRing.build(["m1"])})
    router = MatchingRouter(membership, FakeDialer({"m1": host}), 4, 0.05, 0.0, FAST)  # type: ignore[arg-type]
    request = mpb.PollActivityTaskQueueRequest(namespace_id="ns", poll_request=ws.PollActivityTaskQueueRequest(
        task_queue=tq_pb.TaskQueue(name="q")))
    await router.PollActivityTaskQueue(request, deadline=time.monotonic() + 30)
    # No rotation: one call, no slice (the host serves every partition it owns to this poll).
    assert len(host.calls) == 1 and host.calls[0][1].max_wait_seconds == 0.0


async def test_adds_spread_sticky_stays_on_partition_zero_and_query_answers_find_their_partition() -> None:
    def behaviour(host: str, method: str, request: Any) -> Any:
        return mpb.AddActivityTaskResponse()

    router, hosts = matching_router(behaviour)
    for _ in range(80):
        await router.AddActivityTask(mpb.AddActivityTaskRequest(namespace_id="ns", task_queue=tq_pb.TaskQueue(name="q")))
    partitions = {c[1].partition for h in hosts.values() for c in h.calls}
    assert partitions == {0, 1, 2, 3}
    for h in hosts.values():
        h.calls.clear()
    sticky = tq_pb.TaskQueue(name="sticky-q", kind=tq_enums.TASK_QUEUE_KIND_STICKY)
    await router.AddWorkflowTask(mpb.AddWorkflowTaskRequest(namespace_id="ns", task_queue=sticky))
    [(name, call)] = [c for h in hosts.values() for c in h.calls]
    assert call.partition == 0

    token = tokens_pb2.QueryTaskToken(namespace_id="ns", task_queue="q", query_id=query_id_for_partition(2))
    await router.RespondQueryTaskCompleted(mpb.RespondQueryTaskCompletedRequest(
        namespace_id="ns", request=ws.RespondQueryTaskCompletedRequest(task_token=token.SerializeToString())))
    target = owner("ns", "q", 1, 2)
    assert hosts[str(target)].calls[-1][0] == "RespondQueryTaskCompleted"


async def test_describe_merges_every_partition_and_cancel_reaches_every_host() -> None:
    def behaviour(host: str, method: str, request: Any) -> Any:
        if method == "CancelOutstandingPolls":
            return mpb.CancelOutstandingPollsResponse()
        response = ws.DescribeTaskQueueResponse()
        poller = response.pollers.add(identity=f"worker-{request.partition % 2}")
        poller.last_access_time.FromSeconds(100 + request.partition)
        response.stats.approximate_backlog_count = 10
        return response

    router, hosts = matching_router(behaviour)
    merged = await router.DescribeTaskQueue(mpb.DescribeTaskQueueRequest(
        namespace_id="ns", request=ws.DescribeTaskQueueRequest(task_queue=tq_pb.TaskQueue(name="q"))))
    assert sorted(p.identity for p in merged.pollers) == ["worker-0", "worker-1"]
    assert {p.identity: p.last_access_time.seconds for p in merged.pollers} == {"worker-0": 102, "worker-1": 103}
    assert merged.stats.approximate_backlog_count == 40

    await router.CancelOutstandingPolls(mpb.CancelOutstandingPollsRequest(namespace_id="ns", identity="w"))
    assert all(any(c[0] == "CancelOutstandingPolls" for c in h.calls) for h in hosts.values())
