"""Waiting pollers (FIFO) and the recent-poller record DescribeTaskQueue reports."""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from google.protobuf import timestamp_pb2
from temporalio.api.common.v1 import message_pb2 as common_pb
from temporalio.api.taskqueue.v1 import message_pb2 as tq_pb

from services.matching.tasks import MatchTask


@dataclass(eq=False)
class Poller:
    """One parked poll. Its future resolves to a task, or to None when the poll must end empty."""

    identity: str
    poller_id: str
    worker_instance_key: str = ""
    future: asyncio.Future[MatchTask | None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    @property
    def waiting(self) -> bool:
        return not self.future.done()


class PollerQueue:
    """FIFO of parked pollers; entries whose future is already done are skipped lazily."""

    def __init__(self) -> None:
        self._q: deque[Poller] = deque()

    def append(self, poller: Poller) -> None:
        self._q.append(poller)

    def pop_waiting(self) -> Poller | None:
        while self._q:
            p = self._q.popleft()
            if p.waiting:
                return p
        return None

    def remove(self, poller: Poller) -> None:
        try:
            self._q.remove(poller)
        except ValueError:
            pass

    def has_waiting(self) -> bool:
        return any(p.waiting for p in self._q)

    def count_waiting(self) -> int:
        return sum(1 for p in self._q if p.waiting)

    def __iter__(self) -> Iterator[Poller]:
        return iter(list(self._q))

    def end(self, identity: str | None = None, worker_instance_key: str = "") -> int:
        """Answer parked polls (all, or one identity's) with "no task"; returns how many. With
        ``worker_instance_key``: that worker instance's polls, plus ``identity``'s polls that carried no key."""
        ended = 0
        for p in list(self._q):
            if worker_instance_key:
                mine = p.worker_instance_key == worker_instance_key or (
                    not p.worker_instance_key and identity is not None and p.identity == identity
                )
            else:
                mine = identity is None or p.identity == identity
            if p.waiting and mine:
                p.future.set_result(None)
                ended += 1
        self._q = deque(p for p in self._q if p.waiting)
        return ended


@dataclass
class _Seen:
    last_access: datetime
    rate_per_second: float
    capabilities: common_pb.WorkerVersionCapabilities | None


class PollerHistory:
    """identity -> last poll time, kept for ``ttl``; what the CLI shows under "Pollers"."""

    def __init__(self, ttl: float) -> None:
        self._ttl = timedelta(seconds=ttl)
        self._seen: OrderedDict[str, _Seen] = OrderedDict()

    def record(
        self,
        identity: str,
        now: datetime,
        rate_per_second: float,
        capabilities: common_pb.WorkerVersionCapabilities | None = None,
    ) -> None:
        self._seen.pop(identity, None)
        self._seen[identity] = _Seen(now, rate_per_second, capabilities)
        self._prune(now)

    def _prune(self, now: datetime) -> None:
        while self._seen:
            identity, seen = next(iter(self._seen.items()))
            if now - seen.last_access <= self._ttl:
                break
            del self._seen[identity]

    def infos(self, now: datetime) -> list[tq_pb.PollerInfo]:
        self._prune(now)
        out = []
        for identity, seen in reversed(self._seen.items()):
            ts = timestamp_pb2.Timestamp()
            ts.FromDatetime(seen.last_access)
            info = tq_pb.PollerInfo(
                last_access_time=ts, identity=identity, rate_per_second=seen.rate_per_second
            )
            if seen.capabilities is not None:
                info.worker_version_capabilities.CopyFrom(seen.capabilities)
            out.append(info)
        return out
