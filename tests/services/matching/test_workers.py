"""The worker registry (services/matching/workers.py), its list filter (worker_query.py) and the matching RPCs that
serve them, including ShutdownWorker's poll cancellation by worker instance key."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.api.deployment.v1 import message_pb2 as deployment_pb
from temporalio.api.enums.v1 import common_pb2 as common_enums
from temporalio.api.worker.v1 import message_pb2 as worker_pb
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv

from server.cluster.ring import HashRing, partition_key
from server.cluster.routing import MatchingRouter, RetryPolicy
from server.common.clock import ManualClock
from server.common.errors import InvalidArgument, NotFound, Unavailable
from server.gen.durata.internal.matching.v1 import service_pb2 as mpb
from server.persistence.interface import TaskQueueKey
from services.matching.worker_query import WorkerQuery
from services.matching.workers import REGISTRY_QUEUE_NAME, ShutdownKeys, WorkerRegistry, WorkerRegistryConfig

from .conftest import ServiceFactory
from .helpers import NS, TQ, deadline_in, poll_wft, wait_until

RUNNING = common_enums.WORKER_STATUS_RUNNING
SHUTTING_DOWN = common_enums.WORKER_STATUS_SHUTTING_DOWN
SHUTDOWN = common_enums.WORKER_STATUS_SHUTDOWN
T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def hb(
    key: str,
    *,
    task_queue: str = "orders",
    identity: str = "",
    host: str = "host-a",
    status: int = RUNNING,
    started: datetime | None = T0,
    beat: datetime | None = None,
    sdk: str = "temporal-python",
    version: str = "1.20.0",
    deployment: tuple[str, str] | None = None,
) -> worker_pb.WorkerHeartbeat:
    out = worker_pb.WorkerHeartbeat(
        worker_instance_key=key,
        worker_identity=identity or f"{key}@{host}",
        task_queue=task_queue,
        sdk_name=sdk,
        sdk_version=version,
        status=status,  # type: ignore[arg-type]
        host_info=worker_pb.WorkerHostInfo(host_name=host, process_id="42"),
    )
    if started is not None:
        out.start_time.FromDatetime(started)
    if beat is not None:
        out.heartbeat_time.FromDatetime(beat)
    if deployment is not None:
        out.deployment_version.CopyFrom(
            deployment_pb.WorkerDeploymentVersion(deployment_name=deployment[0], build_id=deployment[1])
        )
    return out


def keys(workers: list[worker_pb.WorkerHeartbeat]) -> list[str]:
    return sorted(w.worker_instance_key for w in workers)


# ---------------------------------------------------------------- registry


def test_record_list_describe_and_replace() -> None:
    reg = WorkerRegistry()
    reg.record("ns1", [hb("a"), hb("b")], now=0)
    reg.record("ns2", [hb("c")], now=0)
    assert keys(reg.list("ns1", now=1).workers) == ["a", "b"]
    assert keys(reg.list("ns2", now=1).workers) == ["c"]
    assert reg.count("ns1", now=1) == 2
    reg.record("ns1", [hb("a", status=SHUTTING_DOWN)], now=2)
    assert reg.describe("ns1", "a", now=2).status == SHUTTING_DOWN
    assert len(reg) == 3


def test_describe_unknown_worker_is_not_found() -> None:
    reg = WorkerRegistry()
    with pytest.raises(NotFound, match="^Worker nope not found$"):
        reg.describe("ns1", "nope", now=0)
    reg.record("ns1", [hb("a")], now=0)
    with pytest.raises(NotFound, match="^Worker a not found$"):
        reg.describe("ns2", "a", now=0)


def test_shutdown_status_removes_the_worker() -> None:
    reg = WorkerRegistry()
    reg.record("ns1", [hb("a"), hb("b")], now=0)
    reg.record("ns1", [hb("a", status=SHUTDOWN)], now=1)
    assert keys(reg.list("ns1", now=1).workers) == ["b"]
    with pytest.raises(NotFound):
        reg.describe("ns1", "a", now=1)
    reg.record("ns1", [hb("zzz", status=SHUTDOWN)], now=1)  # unknown: nothing to remove
    assert len(reg) == 1


def test_entries_expire_after_ttl_since_last_heartbeat() -> None:
    reg = WorkerRegistry(WorkerRegistryConfig(ttl=300))
    reg.record("ns1", [hb("a"), hb("b")], now=0)
    reg.record("ns1", [hb("b")], now=200)  # b refreshed
    assert keys(reg.list("ns1", now=299).workers) == ["a", "b"]
    assert keys(reg.list("ns1", now=301).workers) == ["b"]
    assert reg.evict(now=501) == 1
    assert len(reg) == 0


def test_capacity_evicts_oldest_entries_past_min_age_only() -> None:
    reg = WorkerRegistry(WorkerRegistryConfig(ttl=1000, min_evict_age=60, max_entries=2))
    reg.record("ns1", [hb("a")], now=0)
    reg.record("ns1", [hb("b")], now=10)
    reg.record("ns1", [hb("c")], now=100)  # over capacity by one: the oldest (a) goes
    assert keys(reg.list("ns1", now=100).workers) == ["b", "c"]
    reg.record("ns1", [hb("d")], now=101)
    assert keys(reg.list("ns1", now=101).workers) == ["c", "d"]
    reg.record("ns1", [hb("e")], now=102)  # c is only 2 s old: kept although over capacity
    assert keys(reg.list("ns1", now=102).workers) == ["c", "d", "e"]


def test_system_workers_listed_only_on_request() -> None:
    reg = WorkerRegistry()
    reg.record("ns1", [hb("a"), hb("sys", task_queue="temporal-sys-per-ns-tq")], now=0)
    assert keys(reg.list("ns1", now=0).workers) == ["a"]
    assert keys(reg.list("ns1", now=0, include_system=True).workers) == ["a", "sys"]
    assert reg.count("ns1", now=0, include_system=True) == 2


def test_pages_in_instance_key_order() -> None:
    reg = WorkerRegistry()
    reg.record("ns1", [hb(k) for k in ["d", "b", "a", "e", "c"]], now=0)
    first = reg.list("ns1", now=0, page_size=2)
    assert [w.worker_instance_key for w in first.workers] == ["a", "b"]
    assert json.loads(first.next_page_token) == {"l": "b"}
    second = reg.list("ns1", now=0, page_size=2, next_page_token=first.next_page_token)
    assert [w.worker_instance_key for w in second.workers] == ["c", "d"]
    third = reg.list("ns1", now=0, page_size=2, next_page_token=second.next_page_token)
    assert [w.worker_instance_key for w in third.workers] == ["e"]
    assert third.next_page_token == b""
    # A cursor past the end (the worker it named went away): an empty last page.
    past = reg.list("ns1", now=0, page_size=2, next_page_token=b'{"l":"zzz"}')
    assert past.workers == [] and past.next_page_token == b""
    with pytest.raises(InvalidArgument, match="^invalid next_page_token$"):
        reg.list("ns1", now=0, page_size=2, next_page_token=b"garbage")


def test_malformed_filter_is_refused_even_without_workers() -> None:
    reg = WorkerRegistry()
    with pytest.raises(InvalidArgument, match="malformed query"):
        reg.list("ns1", now=0, query="TaskQueue = ")
    with pytest.raises(InvalidArgument, match="malformed query"):
        reg.count("ns1", now=0, query="TaskQueue = 'a' AND")


def test_shutdown_keys_expire() -> None:
    keys_ = ShutdownKeys(ttl=30)
    keys_.add("k1", now=0)
    keys_.add("", now=0)
    assert keys_.contains("k1", now=29)
    assert not keys_.contains("", now=29)
    assert not keys_.contains("k1", now=31)


# ---------------------------------------------------------------- filter


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["a", "b", "c"]),
        ("TaskQueue = 'orders'", ["a", "b"]),
        ('TaskQueue = "orders"', ["a", "b"]),
        ("TaskQueue != 'orders'", ["c"]),
        ("WorkerInstanceKey = 'b'", ["b"]),
        ("WorkerIdentity = 'a@host-a'", ["a"]),
        ("HostName = 'host-b'", ["c"]),
        ("HostName STARTS_WITH 'host-'", ["a", "b", "c"]),
        ("HostName NOT STARTS_WITH 'host-a'", ["c"]),
        ("SdkName = 'temporal-go' OR SdkVersion = '2.0.0'", ["b", "c"]),
        ("(TaskQueue = 'orders' OR TaskQueue = 'billing') AND SdkName = 'temporal-go'", ["c"]),
        ("DeploymentName = 'shop' AND BuildId = 'v2'", ["b"]),
        ("DeploymentName IS NULL", ["a", "c"]),
        ("BuildId IS NOT NULL", ["b"]),
        ("Status = 'WORKER_STATUS_SHUTTING_DOWN'", ["c"]),
        ("status = 'WORKER_STATUS_RUNNING'", ["a", "b"]),
        ("WorkerStatus != 'WORKER_STATUS_RUNNING'", ["c"]),
        ("StartTime > '2026-01-02T03:04:05Z'", ["b"]),
        ("StartTime >= '2026-01-02T03:04:05Z'", ["a", "b"]),
        ("StartTime = '2026-01-02T04:04:05+01:00'", ["a"]),
        ("StartTime BETWEEN '2026-01-01T00:00:00Z' AND '2026-01-02T03:04:05Z'", ["a"]),
        ("StartTime NOT BETWEEN '2026-01-01T00:00:00Z' AND '2026-01-02T03:04:05Z'", ["b"]),
        ("StartTime IS NULL", ["c"]),
        # An unset time compares as the epoch (Temporal reads the missing timestamp as time zero).
        ("HeartbeatTime < '2026-01-02T03:05:00Z'", ["a", "c"]),
        ("HeartbeatTime > '2026-01-02T03:05:00Z'", ["b"]),
        ("HeartbeatTime IS NOT NULL", ["a", "b"]),
        # Parses but cannot be evaluated: matches nothing (as in Temporal).
        ("UnknownField = 'x'", []),
        ("taskqueue = 'orders'", []),
        ("TaskQueue = ''", []),
        ("TaskQueue > 'a'", []),
        ("NOT TaskQueue = 'orders'", []),
        ("TaskQueue IN ('orders')", []),
        ("TaskQueue LIKE 'ord%'", []),
        ("StartTime > 'yesterday'", []),
        ("TaskQueue", []),
        # Evaluation stops at the first unevaluable predicate it reaches (left to right, short-circuit).
        ("UnknownField = 'x' OR TaskQueue = 'billing'", []),
        ("TaskQueue = 'billing' OR UnknownField = 'x'", ["c"]),
        ("TaskQueue = 'orders' AND UnknownField = 'x'", []),
    ],
)
def test_filter(query: str, expected: list[str]) -> None:
    workers = [
        hb("a", beat=T0 + timedelta(seconds=30)),
        hb("b", started=T0 + timedelta(hours=1), beat=T0 + timedelta(hours=1), version="2.0.0",
           deployment=("shop", "v2")),
        hb("c", task_queue="billing", host="host-b", sdk="temporal-go", status=SHUTTING_DOWN, started=None),
    ]
    matcher = WorkerQuery(query)
    assert [w.worker_instance_key for w in workers if matcher.matches(w)] == expected


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("TaskQueue = ", "malformed query"),
        ("TaskQueue = 'a' AND", "malformed query"),
        ("(TaskQueue = 'a'", "malformed query"),
        ("TaskQueue = 'a')", "malformed query"),
        ("TaskQueue == 'a'", "malformed query"),
        ("TaskQueue = 'a' # x", "malformed query"),
        ("where TaskQueue = 'a'", "invalid filter"),
        ("select * from x", "invalid filter"),
    ],
)
def test_malformed_filters(query: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        WorkerQuery(query)


# ---------------------------------------------------------------- matching RPCs


def heartbeat_request(*beats: worker_pb.WorkerHeartbeat) -> mpb.RecordWorkerHeartbeatRequest:
    return mpb.RecordWorkerHeartbeatRequest(
        namespace_id=NS, request=wsv.RecordWorkerHeartbeatRequest(namespace="default", worker_heartbeat=beats)
    )


async def test_matching_serves_the_registry(make_service: ServiceFactory, clock: ManualClock) -> None:
    svc = await make_service()
    await svc.handler.RecordWorkerHeartbeat(heartbeat_request(hb("a"), hb("b", task_queue="billing")))
    listed = await svc.handler.ListWorkers(
        mpb.ListWorkersRequest(namespace_id=NS, request=wsv.ListWorkersRequest(query="TaskQueue = 'billing'"))
    )
    assert [w.worker_heartbeat.worker_instance_key for w in listed.workers_info] == ["b"]
    assert [(w.worker_instance_key, w.host_name, w.process_id) for w in listed.workers] == [("b", "host-a", "42")]
    counted = await svc.handler.CountWorkers(mpb.CountWorkersRequest(namespace_id=NS, request=wsv.CountWorkersRequest()))
    assert counted.count == 2
    described = await svc.handler.DescribeWorker(
        mpb.DescribeWorkerRequest(namespace_id=NS, request=wsv.DescribeWorkerRequest(worker_instance_key="a"))
    )
    assert described.worker_info.worker_heartbeat.task_queue == "orders"
    clock.advance(301)
    with pytest.raises(NotFound, match="Worker a not found"):
        await svc.handler.DescribeWorker(
            mpb.DescribeWorkerRequest(namespace_id=NS, request=wsv.DescribeWorkerRequest(worker_instance_key="a"))
        )


def keyed_poll(identity: str, key: str) -> mpb.PollWorkflowTaskQueueRequest:
    req = poll_wft(identity)
    req.poller_id = f"poll-{identity}-{key}"
    req.poll_request.worker_instance_key = key
    return req


async def test_shutdown_by_instance_key_ends_only_that_workers_polls(make_service: ServiceFactory) -> None:
    svc = await make_service(long_poll_timeout=30.0)
    wf_key = TaskQueueKey(NS, TQ, 1)
    # Two workers of one process share an identity; only the one shutting down loses its polls.
    mine = asyncio.create_task(svc.handler.PollWorkflowTaskQueue(keyed_poll("pid@host", "k1"), deadline=deadline_in(60)))
    sibling = asyncio.create_task(
        svc.handler.PollWorkflowTaskQueue(keyed_poll("pid@host", "k2"), deadline=deadline_in(60))
    )

    def parked() -> int:
        mgr = svc.loaded(wf_key)
        return 0 if mgr is None else mgr.waiting_pollers()

    await wait_until(lambda: parked() == 2)
    await svc.handler.CancelOutstandingPolls(
        mpb.CancelOutstandingPollsRequest(namespace_id=NS, identity="pid@host", worker_instance_key="k1")
    )
    assert (await asyncio.wait_for(mine, timeout=2)).task_token == b""
    assert not sibling.done()
    # A poll of the shut-down worker arriving later answers empty at once.
    late = await asyncio.wait_for(
        svc.handler.PollWorkflowTaskQueue(keyed_poll("pid@host", "k1"), deadline=deadline_in(60)), timeout=2
    )
    assert late.task_token == b""
    sibling.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sibling


# ---------------------------------------------------------------- several matching hosts


class _Ring:
    def __init__(self, ring: HashRing) -> None:
        self._ring = ring

    def ring(self, role: str) -> HashRing:
        return self._ring

    async def refresh(self) -> None:
        return None


class _Dialer:
    def __init__(self, handlers: dict[str, Any]) -> None:
        self._handlers = handlers

    def client(self, address: str) -> Any:
        return self._handlers[address]


async def test_heartbeats_and_lists_meet_on_the_namespace_owner(make_service: ServiceFactory) -> None:
    ring = HashRing.build(["m1", "m2"])
    services = {name: await make_service() for name in ("m1", "m2")}
    for name, svc in services.items():
        svc.owns = lambda key, me=name: ring.lookup(  # type: ignore[misc]
            partition_key(key.namespace_id, key.name, key.task_type, key.partition)
        ) == me
    router = MatchingRouter(
        _Ring(ring),  # type: ignore[arg-type]
        _Dialer({n: s.handler for n, s in services.items()}),  # type: ignore[arg-type]
        policy=RetryPolicy(budget_seconds=1.0, first_backoff=0.01, max_backoff=0.05),
    )
    for ns in (f"ns-{i}" for i in range(6)):  # some namespaces land on each host
        request = heartbeat_request(hb(f"{ns}-w"))
        request.namespace_id = ns
        await router.RecordWorkerHeartbeat(request)
        listed = await router.ListWorkers(mpb.ListWorkersRequest(namespace_id=ns, request=wsv.ListWorkersRequest()))
        assert [w.worker_instance_key for w in listed.workers] == [f"{ns}-w"]
        owner = ring.lookup(partition_key(ns, REGISTRY_QUEUE_NAME, 0, 0))
        other = next(n for n in services if n != owner)
        assert services[owner].workers.count(ns, now=services[owner].clock.now().timestamp()) == 1
        with pytest.raises(Unavailable):
            await services[other].handler.CountWorkers(
                mpb.CountWorkersRequest(namespace_id=ns, request=wsv.CountWorkersRequest())
            )
