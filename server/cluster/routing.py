"""Routing clients: the History and Matching "clients" of a cluster process. Each has the handler call shape
(``await client.Method(request, deadline=...)``), finds the owner of the call's shard / task-queue partition on
the membership ring, and calls it: in-process if the owner is this process, else over gRPC.

Why retries live here: when a shard or partition moves (host died, host added) the old owner answers
UNAVAILABLE (shard ownership lost / partition moved) or cannot be reached at all. The router then re-reads
membership and tries the new owner, with backoff, for a bounded time; callers see at most a retryable
UNAVAILABLE.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc.aio
import structlog
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import DecodeError, Message
from temporalio.api.enums.v1 import task_queue_pb2 as tq_enums
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv

from server.cluster.membership import Membership
from server.cluster.ring import partition_key, partition_rpc_name, shard_key
from server.common.errors import InvalidArgument, ServiceError, Unavailable
from server.common.sharding import shard_for
from server.gen.durata.internal.common.v1 import tokens_pb2
from server.rpc.adapters import GRPC_CHANNEL_OPTIONS, GrpcClient

log = structlog.get_logger("durata.cluster.routing")

WORKFLOW = tq_enums.TASK_QUEUE_TYPE_WORKFLOW
ACTIVITY = tq_enums.TASK_QUEUE_TYPE_ACTIVITY
STICKY = tq_enums.TASK_QUEUE_KIND_STICKY


@dataclass
class RetryPolicy:
    # Total time a call keeps looking for the owner of its shard / partition (bounded by the caller's deadline).
    budget_seconds: float = 15.0
    first_backoff: float = 0.05
    max_backoff: float = 1.0


class Dialer:
    """Address -> client: the local handler for this process's own address, else a cached ``GrpcClient``."""

    def __init__(self, descriptor: ServiceDescriptor, local_address: str = "", local_handler: Any = None) -> None:
        self._descriptor = descriptor
        self.local_address = local_address
        self._local_handler = local_handler
        self._clients: dict[str, GrpcClient] = {}
        self._channels: list[grpc.aio.Channel] = []

    def client(self, address: str) -> Any:
        if self._local_handler is not None and address == self.local_address:
            return self._local_handler
        client = self._clients.get(address)
        if client is None:
            channel = grpc.aio.insecure_channel(address, options=GRPC_CHANNEL_OPTIONS)
            self._channels.append(channel)
            client = self._clients[address] = GrpcClient(channel, self._descriptor)
        return client

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close()
        self._channels.clear()
        self._clients.clear()


async def call_with_retry(
    membership: Membership,
    role: str,
    key: Callable[[], str],
    invoke: Callable[[str], Awaitable[Any]],
    policy: RetryPolicy,
    deadline: float | None,
) -> Any:
    """Call the owner of ``key()`` on ``role``'s ring; on UNAVAILABLE refresh membership and retry."""
    give_up = time.monotonic() + policy.budget_seconds
    if deadline is not None:
        give_up = min(give_up, deadline)
    backoff = policy.first_backoff
    while True:
        owner = membership.ring(role).lookup(key())
        if owner is None:
            err: ServiceError = Unavailable(f"no live {role} host in the cluster")
        else:
            try:
                return await invoke(owner)
            except Unavailable as e:
                err = e
        if time.monotonic() + backoff >= give_up:
            raise Unavailable(f"{role} unavailable: {err.message}") if not isinstance(err, Unavailable) else err
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, policy.max_backoff)
        try:
            await membership.refresh()
        except Exception as refresh_err:  # noqa: BLE001 - keep retrying on the ring we have
            log.warning("membership refresh failed", error=repr(refresh_err))


# ---------------------------------------------------------------- history


def _task_token(data: bytes) -> tokens_pb2.TaskToken:
    token = tokens_pb2.TaskToken()
    try:
        token.ParseFromString(data)
    except (DecodeError, ValueError):
        raise InvalidArgument("Error deserializing task token.") from None
    return token


def history_routing_key(request: Message) -> tuple[str, str]:
    """(namespace_id, workflow_id) of any HistoryService request: its execution, its public request's
    execution or workflow id, or the workflow named in its task token."""
    ns_id: str = getattr(request, "namespace_id", "")
    fields = request.DESCRIPTOR.fields_by_name
    for field in ("workflow_execution", "parent_execution"):
        if field in fields and request.HasField(field):
            return ns_id, getattr(request, field).workflow_id
    if "by_id_request" in fields and request.HasField("by_id_request"):
        by_id = request.by_id_request  # type: ignore[attr-defined]
        return ns_id, by_id.workflow_id
    inner = request.request if "request" in fields else None  # type: ignore[attr-defined]
    if inner is not None:
        inner_fields = inner.DESCRIPTOR.fields_by_name
        for field in ("workflow_execution", "execution"):
            if field in inner_fields and inner.HasField(field):
                return ns_id, getattr(inner, field).workflow_id
        if "update_ref" in inner_fields and inner.HasField("update_ref"):
            return ns_id, inner.update_ref.workflow_execution.workflow_id
        if "workflow_id" in inner_fields and inner.workflow_id:
            return ns_id, inner.workflow_id
        if "task_token" in inner_fields and inner.task_token:
            token = _task_token(inner.task_token)
            return token.namespace_id or ns_id, token.workflow_id
    raise InvalidArgument(f"cannot route {request.DESCRIPTOR.name}: no workflow id")


class HistoryRouter:
    """HistoryService client of a cluster process: the shard's owner by the history ring."""

    def __init__(self, membership: Membership, num_shards: int, dialer: Dialer, policy: RetryPolicy | None = None) -> None:
        self._membership = membership
        self._num_shards = num_shards
        self._dialer = dialer
        self._policy = policy or RetryPolicy()

    def shard_of(self, request: Message) -> int:
        ns_id, wf_id = history_routing_key(request)
        return shard_for(ns_id, wf_id, self._num_shards)

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        if name.startswith("_"):
            raise AttributeError(name)

        async def invoke(request: Any, *, deadline: float | None = None) -> Any:
            key = shard_key(self.shard_of(request))

            async def call(owner: str) -> Any:
                return await getattr(self._dialer.client(owner), name)(request, deadline=deadline)

            return await call_with_retry(self._membership, "history", lambda: key, call, self._policy, deadline)

        return invoke


# ---------------------------------------------------------------- matching


def query_id_for_partition(partition: int) -> str:
    """Query ids carry the partition that holds the waiting query, so the answer can be routed back to it."""
    import uuid

    return f"{uuid.uuid4()}.{partition}"


def partition_of_query_id(query_id: str) -> int:
    tail = query_id.rsplit(".", 1)[-1]
    return int(tail) if "." in query_id and tail.isdigit() else 0


class MatchingRouter:
    """MatchingService client of a cluster process: task-queue partitions by the matching ring.

    Normal queues have ``partitions`` partitions. An add or a query goes to a random one. A poll parks on one
    partition per matching host that owns partitions of the queue (that host hands it the tasks of all its
    partitions); with several such hosts it visits them in turn, waiting up to ``poll_slice`` seconds on each,
    with one it simply waits the whole poll there (see services/matching/README.md).
    """

    def __init__(
        self,
        membership: Membership,
        dialer: Dialer,
        partitions: int = 4,
        poll_slice: float = 2.0,
        poll_margin: float = 1.0,
        policy: RetryPolicy | None = None,
    ) -> None:
        self._membership = membership
        self._dialer = dialer
        self.partitions = max(1, partitions)
        self._poll_slice = poll_slice
        self._poll_margin = poll_margin
        self._policy = policy or RetryPolicy()

    def _partition_count(self, task_queue: Any) -> int:
        return 1 if task_queue.kind == STICKY else self.partitions

    async def _call(self, name: str, request: Any, key: str, deadline: float | None) -> Any:
        async def call(owner: str) -> Any:
            return await getattr(self._dialer.client(owner), name)(request, deadline=deadline)

        return await call_with_retry(self._membership, "matching", lambda: key, call, self._policy, deadline)

    async def _add(self, name: str, request: Any, task_type: int, deadline: float | None) -> Any:
        request.partition = random.randrange(self._partition_count(request.task_queue))
        key = partition_key(request.namespace_id, request.task_queue.name, task_type, request.partition)
        return await self._call(name, request, key, deadline)

    async def AddWorkflowTask(self, request: Any, *, deadline: float | None = None) -> Any:
        return await self._add("AddWorkflowTask", request, WORKFLOW, deadline)

    async def AddActivityTask(self, request: Any, *, deadline: float | None = None) -> Any:
        return await self._add("AddActivityTask", request, ACTIVITY, deadline)

    async def QueryWorkflow(self, request: Any, *, deadline: float | None = None) -> Any:
        return await self._add("QueryWorkflow", request, WORKFLOW, deadline)

    def _poll_stops(self, namespace_id: str, name: str, task_type: int, count: int) -> list[int]:
        """One partition per matching host owning partitions of the queue (a random one of that host's): a poll
        parked on it is offered every task of that host's partitions, so visiting one per host suffices."""
        if count == 1:
            return [0]
        ring = self._membership.ring("matching")
        by_owner: dict[str | None, list[int]] = {}
        for p in range(count):
            by_owner.setdefault(ring.lookup(partition_key(namespace_id, name, task_type, p)), []).append(p)
        return [random.choice(parts) for parts in by_owner.values()]

    async def _poll(self, name: str, request: Any, task_type: int, deadline: float | None) -> Any:
        tq = request.poll_request.task_queue
        count = self._partition_count(tq)
        stops = self._poll_stops(request.namespace_id, tq.name, task_type, count)
        start = random.randrange(len(stops))
        i = 0
        while True:
            if i and i % len(stops) == 0:  # a new round: re-read ownership (hosts may have joined or left)
                stops = self._poll_stops(request.namespace_id, tq.name, task_type, count)
            request.partition = stops[(start + i) % len(stops)]
            i += 1
            remaining = None if deadline is None else deadline - time.monotonic()
            last = len(stops) == 1 or remaining is None or remaining <= self._poll_slice + self._poll_margin + 0.5
            request.max_wait_seconds = 0.0 if last else self._poll_slice
            key = partition_key(request.namespace_id, tq.name, task_type, request.partition)
            started = time.monotonic()
            try:
                response = await self._call(name, request, key, deadline)
            except Unavailable:
                if last:
                    raise
                continue
            # An empty answer well before the slice ended means the host is not holding polls (stopping, queue
            # unloading, History unavailable): hand the empty answer to the worker, which simply polls again.
            if response.task_token or last or time.monotonic() - started < self._poll_slice / 2:
                return response

    async def PollWorkflowTaskQueue(self, request: Any, *, deadline: float | None = None) -> Any:
        return await self._poll("PollWorkflowTaskQueue", request, WORKFLOW, deadline)

    async def PollActivityTaskQueue(self, request: Any, *, deadline: float | None = None) -> Any:
        return await self._poll("PollActivityTaskQueue", request, ACTIVITY, deadline)

    async def RespondQueryTaskCompleted(self, request: Any, *, deadline: float | None = None) -> Any:
        token = tokens_pb2.QueryTaskToken()
        try:
            token.ParseFromString(request.request.task_token)
        except (DecodeError, ValueError):
            raise InvalidArgument("invalid query task token") from None
        partition = partition_of_query_id(token.query_id)
        key = partition_key(request.namespace_id, token.task_queue, WORKFLOW, partition)
        return await self._call("RespondQueryTaskCompleted", request, key, deadline)

    async def DescribeTaskQueue(self, request: Any, *, deadline: float | None = None) -> Any:
        """Every partition's answer merged: pollers by identity (latest seen), backlog and rates summed, so the
        CLI sees one queue. Partition 0 (the root) supplies the rest."""
        public = request.request
        task_type = public.task_queue_type or WORKFLOW
        count = self._partition_count(public.task_queue)

        async def one(partition: int) -> Any:
            part = type(request)()
            part.CopyFrom(request)
            part.partition = partition
            key = partition_key(request.namespace_id, public.task_queue.name, task_type, partition)
            return await self._call("DescribeTaskQueue", part, key, deadline)

        answers = await asyncio.gather(*(one(p) for p in range(count)))
        merged = answers[0]
        for other in answers[1:]:
            _merge_pollers(merged.pollers, other.pollers)
            if other.HasField("stats"):
                _merge_stats(merged.stats, other.stats)
            if other.HasField("task_queue_status"):
                merged.task_queue_status.backlog_count_hint += other.task_queue_status.backlog_count_hint
            for version, info in other.versions_info.items():
                target = merged.versions_info[version]
                for t, type_info in info.types_info.items():
                    _merge_pollers(target.types_info[t].pollers, type_info.pollers)
                    _merge_stats(target.types_info[t].stats, type_info.stats)
        return merged

    async def ListTaskQueuePartitions(self, request: Any, *, deadline: float | None = None) -> Any:
        """Answered from the ring, as Temporal's matching answers from its own: each partition's current owner."""
        ring = self._membership.ring("matching")
        name = request.task_queue.name
        answer = wsv.ListTaskQueuePartitionsResponse()
        for task_type, into in (
            (ACTIVITY, answer.activity_task_queue_partitions), (WORKFLOW, answer.workflow_task_queue_partitions)
        ):
            for p in range(self.partitions):
                owner = ring.lookup(partition_key(request.namespace_id, name, task_type, p))
                if owner is None:
                    raise Unavailable("no matching host is up")
                into.add(key=partition_rpc_name(name, p), owner_host_name=owner)
        return answer

    # The worker registry of a namespace lives on one matching host: the owner of this key (Temporal routes it
    # the same way, as partition 0 of a queue named "not-applicable").
    async def _registry(self, name: str, request: Any, deadline: float | None) -> Any:
        key = partition_key(request.namespace_id, "not-applicable", 0, 0)
        return await self._call(name, request, key, deadline)

    async def RecordWorkerHeartbeat(self, request: Any, *, deadline: float | None = None) -> Any:
        return await self._registry("RecordWorkerHeartbeat", request, deadline)

    async def ListWorkers(self, request: Any, *, deadline: float | None = None) -> Any:
        return await self._registry("ListWorkers", request, deadline)

    async def CountWorkers(self, request: Any, *, deadline: float | None = None) -> Any:
        return await self._registry("CountWorkers", request, deadline)

    async def DescribeWorker(self, request: Any, *, deadline: float | None = None) -> Any:
        return await self._registry("DescribeWorker", request, deadline)

    async def CancelOutstandingPolls(self, request: Any, *, deadline: float | None = None) -> Any:
        """A worker's polls may be parked on any partition: tell every live matching host."""
        owners = list(self._membership.ring("matching").members)
        results = await asyncio.gather(
            *(self._dialer.client(o).CancelOutstandingPolls(request, deadline=deadline) for o in owners),
            return_exceptions=True,
        )
        for r in results:
            if isinstance(r, BaseException) and not isinstance(r, Unavailable):
                raise r
        for r in results:
            if not isinstance(r, BaseException):
                return r
        raise Unavailable("no matching host answered CancelOutstandingPolls")


def _merge_pollers(into: Any, more: Any) -> None:
    """Union of PollerInfo lists by identity, keeping the most recent access."""
    seen = {p.identity: p for p in into}
    for p in more:
        mine = seen.get(p.identity)
        if mine is None:
            seen[p.identity] = into.add()
            seen[p.identity].CopyFrom(p)
        elif p.last_access_time.ToNanoseconds() > mine.last_access_time.ToNanoseconds():
            mine.CopyFrom(p)


def _merge_stats(into: Any, more: Any) -> None:
    into.approximate_backlog_count += more.approximate_backlog_count
    if more.approximate_backlog_age.ToNanoseconds() > into.approximate_backlog_age.ToNanoseconds():
        into.approximate_backlog_age.CopyFrom(more.approximate_backlog_age)
    into.tasks_add_rate += more.tasks_add_rate
    into.tasks_dispatch_rate += more.tasks_dispatch_rate
