"""The internal worker's namespace-deletion job against fakes of the frontend's WorkflowService/OperatorService."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from temporalio.api.enums.v1 import namespace_pb2 as ns_enums
from temporalio.api.namespace.v1 import message_pb2 as ns_pb
from temporalio.api.operatorservice.v1 import request_response_pb2 as opv1
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv

from server.common.errors import NamespaceNotFound, Unavailable
from services.internal_worker.config import InternalWorkerConfig
from services.internal_worker.delete_namespace import DeleteNamespaceJob
from services.internal_worker.service import InternalWorkerService


@dataclass
class FakeFrontend:
    """Namespaces by name -> state; a DELETED one has ``steps[name]`` reclaim steps left before its row goes."""

    states: dict[str, int]
    steps: dict[str, int] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    include_deleted_seen: list[bool] = field(default_factory=list)
    fail: set[str] = field(default_factory=set)

    async def ListNamespaces(self, request: Any, *, deadline: float | None = None) -> Any:  # noqa: N802
        assert deadline is not None
        self.include_deleted_seen.append(request.namespace_filter.include_deleted)
        names = sorted(self.states)
        start = int(request.next_page_token or b"0")
        page = names[start:start + 1]  # one per page: exercises pagination
        out = [
            wsv.DescribeNamespaceResponse(
                namespace_info=ns_pb.NamespaceInfo(name=n, id=f"id-{n}", state=self.states[n])
            )
            for n in page
        ]
        token = str(start + 1).encode() if start + 1 < len(names) else b""
        return wsv.ListNamespacesResponse(namespaces=out, next_page_token=token)

    async def DeleteNamespace(self, request: Any, *, deadline: float | None = None) -> Any:  # noqa: N802
        assert deadline is not None
        name = request.namespace
        self.calls.append(name)
        if name in self.fail:
            raise Unavailable("frontend busy")
        if name not in self.states:
            raise NamespaceNotFound(name)
        if self.steps.get(name, 0) > 0:
            self.steps[name] -= 1
        else:
            del self.states[name]  # nothing left: the row goes
        return opv1.DeleteNamespaceResponse(deleted_namespace=name)


DELETED = ns_enums.NAMESPACE_STATE_DELETED
REGISTERED = ns_enums.NAMESPACE_STATE_REGISTERED


def _config(**kw: Any) -> InternalWorkerConfig:
    return InternalWorkerConfig(**{"delete_namespace_grace_seconds": 0.0, **kw})


async def test_reclaims_only_deleted_namespaces_until_gone() -> None:
    fe = FakeFrontend({"a": REGISTERED, "b-deleted-12345": DELETED, "c-deleted-abcde": DELETED},
                      steps={"b-deleted-12345": 3})
    job = DeleteNamespaceJob(_config(), fe, fe)
    assert await job.sweep() == ["b-deleted-12345", "c-deleted-abcde"]
    assert all(fe.include_deleted_seen)
    assert "a" not in fe.calls and fe.states == {"a": REGISTERED}
    # b: 3 steps with runs, 1 that removes the row, 1 that answers NamespaceNotFound; c: 1 + 1.
    assert fe.calls.count("b-deleted-12345") == 5 and fe.calls.count("c-deleted-abcde") == 2


async def test_waits_for_the_grace_period() -> None:
    fe = FakeFrontend({"x-deleted-00000": DELETED})
    job = DeleteNamespaceJob(_config(delete_namespace_grace_seconds=3600), fe, fe)
    assert await job.sweep() == []
    assert fe.calls == [] and "x-deleted-00000" in fe.states
    job.config.delete_namespace_grace_seconds = 0.0  # the grace has "passed" since it was first seen
    assert await job.sweep() == ["x-deleted-00000"]


async def test_step_budget_and_errors() -> None:
    fe = FakeFrontend({"big-deleted-11111": DELETED, "bad-deleted-22222": DELETED},
                      steps={"big-deleted-11111": 10}, fail={"bad-deleted-22222"})
    job = DeleteNamespaceJob(_config(delete_namespace_max_steps_per_sweep=4), fe, fe)
    assert await job.sweep() == []  # the failure of "bad" does not stop "big"
    assert fe.calls.count("big-deleted-11111") == 4 and fe.steps["big-deleted-11111"] == 6
    fe.fail.clear()
    for _ in range(3):
        await job.sweep()
    assert fe.states == {}


async def test_service_runs_the_job_only_with_an_operator_client() -> None:
    fe = FakeFrontend({"z-deleted-33333": DELETED})
    without = InternalWorkerService(_config(retention_enabled=False), fe)
    assert without.delete_namespace is None
    service = InternalWorkerService(
        _config(retention_enabled=False, delete_namespace_interval_seconds=0.01), fe, operator_client=fe
    )
    await service.start()
    try:
        for _ in range(200):
            if not fe.states:
                break
            await asyncio.sleep(0.01)
    finally:
        await service.stop()
    assert fe.states == {}
