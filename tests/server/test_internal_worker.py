"""The retention job against a fake WorkflowService: what it lists, what it deletes, how it survives errors."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from temporalio.api.common.v1 import message_pb2 as common
from temporalio.api.enums.v1 import namespace_pb2 as ns_enums
from temporalio.api.namespace.v1 import message_pb2 as ns_pb
from temporalio.api.workflow.v1 import message_pb2 as wf_pb
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv

from server import metrics
from server.common.clock import ManualClock
from server.common.errors import NotFound, Unavailable
from services.internal_worker.config import InternalWorkerConfig
from services.internal_worker.retention import RetentionJob, retention_query
from services.internal_worker.service import InternalWorkerService

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@dataclass
class _Run:
    namespace: str
    workflow_id: str
    run_id: str
    closed: datetime | None


@dataclass
class FakeFrontend:
    namespaces: dict[str, float]  # name -> retention seconds
    runs: list[_Run] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    fail_list_namespaces: int = 0
    fail_delete: set[str] = field(default_factory=set)
    vanish: set[str] = field(default_factory=set)
    deleted_ns: set[str] = field(default_factory=set)

    async def ListNamespaces(self, request, *, deadline=None):  # noqa: ANN001, ANN201, N802
        assert deadline is not None
        if self.fail_list_namespaces:
            self.fail_list_namespaces -= 1
            raise Unavailable("frontend not ready")
        names = sorted(self.namespaces)
        start = int(request.next_page_token or b"0")
        page = names[start:start + 1]  # one per page: exercises pagination
        out = []
        for name in page:
            state = ns_enums.NAMESPACE_STATE_DELETED if name in self.deleted_ns else ns_enums.NAMESPACE_STATE_REGISTERED
            out.append(wsv.DescribeNamespaceResponse(
                namespace_info=ns_pb.NamespaceInfo(name=name, state=state),
                config=ns_pb.NamespaceConfig(
                    workflow_execution_retention_ttl=Duration(seconds=int(self.namespaces[name]))),
            ))
        token = str(start + 1).encode() if start + 1 < len(names) else b""
        return wsv.ListNamespacesResponse(namespaces=out, next_page_token=token)

    async def ListWorkflowExecutions(self, request, *, deadline=None):  # noqa: ANN001, ANN201, N802
        self.queries.append(request.query)
        cutoff = datetime.strptime(re.search(r"CloseTime < '([^']+)'", request.query).group(1),
                                   "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        matching = [r for r in self.runs if r.namespace == request.namespace and r.closed and r.closed < cutoff]
        start = int(request.next_page_token or b"0")
        page = matching[start:start + request.page_size]
        infos = []
        for r in page:
            ts = Timestamp()
            ts.FromDatetime(r.closed)
            infos.append(wf_pb.WorkflowExecutionInfo(
                execution=common.WorkflowExecution(workflow_id=r.workflow_id, run_id=r.run_id), close_time=ts))
        token = str(start + len(page)).encode() if start + len(page) < len(matching) else b""
        return wsv.ListWorkflowExecutionsResponse(executions=infos, next_page_token=token)

    async def DeleteWorkflowExecution(self, request, *, deadline=None):  # noqa: ANN001, ANN201, N802
        run_id = request.workflow_execution.run_id
        if run_id in self.fail_delete:
            raise Unavailable("shard moving")
        if run_id in self.vanish:
            raise NotFound("gone")
        self.deleted.append(run_id)
        return wsv.DeleteWorkflowExecutionResponse()


def _runs() -> list[_Run]:
    return [
        _Run("short", "a", "old-1", NOW - timedelta(hours=2)),
        _Run("short", "b", "old-2", NOW - timedelta(hours=3)),
        _Run("short", "c", "fresh", NOW - timedelta(minutes=10)),
        _Run("short", "d", "running", None),
        _Run("short", "e", "vanished", NOW - timedelta(hours=5)),
        _Run("short", "f", "flaky", NOW - timedelta(hours=5)),
        _Run("long", "g", "long-kept", NOW - timedelta(hours=5)),
        _Run("keepall", "h", "no-ttl", NOW - timedelta(days=500)),
        _Run("gone", "i", "deleted-ns", NOW - timedelta(days=5)),
    ]


async def test_sweep_deletes_only_expired_closed_runs() -> None:
    fe = FakeFrontend({"short": 3600, "long": 86400, "keepall": 0, "gone": 60},
                      runs=_runs(), vanish={"vanished"}, fail_delete={"flaky"}, deleted_ns={"gone"})
    job = RetentionJob(InternalWorkerConfig(retention_page_size=1), fe, ManualClock(NOW))
    before = metrics.REGISTRY.get_sample_value("durata_retention_deleted_executions_total", {"namespace": "short"})
    result = await job.sweep()
    assert sorted(fe.deleted) == ["old-1", "old-2"]
    assert result.deleted == {"short": 2}
    assert result.errors == 1  # the flaky delete: logged, retried next sweep
    assert fe.queries and all(q.startswith("ExecutionStatus != 'Running' AND CloseTime < '") for q in fe.queries)
    after = metrics.REGISTRY.get_sample_value("durata_retention_deleted_executions_total", {"namespace": "short"})
    assert (after or 0) - (before or 0) == 2


def test_retention_query_format() -> None:
    q = retention_query(datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=UTC))
    assert q == (
        "ExecutionStatus != 'Running' AND CloseTime < '2026-01-02T03:04:05.600000Z' AND "
        "(TemporalNamespaceDivision IS NULL OR TemporalNamespaceDivision IS NOT NULL)"
    )


async def test_service_survives_errors_and_stops() -> None:
    fe = FakeFrontend({"short": 3600}, runs=_runs(), fail_list_namespaces=2)
    svc = InternalWorkerService(InternalWorkerConfig(retention_interval_seconds=0.01), fe, ManualClock(NOW))
    await svc.start()
    try:
        for _ in range(500):  # up to ~5 s
            if sorted(fe.deleted) == ["flaky", "old-1", "old-2", "vanished"]:
                break
            await asyncio.sleep(0.01)
    finally:
        await svc.stop()
    assert sorted(fe.deleted) == ["flaky", "old-1", "old-2", "vanished"]
    assert fe.fail_list_namespaces == 0  # the first two sweeps failed; the loop kept going


async def test_disabled_retention_does_nothing() -> None:
    fe = FakeFrontend({"short": 3600}, runs=_runs())
    svc = InternalWorkerService(InternalWorkerConfig(retention_enabled=False), fe, ManualClock(NOW))
    await svc.start()
    await asyncio.sleep(0)
    await svc.stop()
    assert fe.deleted == [] and fe.queries == []


async def test_zero_retention_keeps_everything() -> None:
    fe = FakeFrontend({"short": 0}, runs=_runs())
    await RetentionJob(InternalWorkerConfig(), fe, ManualClock(NOW)).sweep()
    assert fe.deleted == []
