"""Fixtures for History service tests: real SQLite persistence, a ManualClock and a fake Matching."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from temporalio.api.enums.v1 import task_queue_pb2
from temporalio.api.namespace.v1 import message_pb2 as namespace_pb2
from temporalio.api.workflowservice.v1 import request_response_pb2 as ws

from server.common.clock import ManualClock
from server.common.errors import FailedPrecondition
from server.gen.durata.internal.matching.v1 import service_pb2 as mpb
from server.persistence.interface import NamespaceRecord, Persistence
from services.history.config import HistoryConfig
from services.history.service import HistoryService


@dataclass
class FakeMatching:
    """Records what History pushes; optionally refuses sticky queues or answers queries."""

    workflow_tasks: list[mpb.AddWorkflowTaskRequest] = field(default_factory=list)
    activity_tasks: list[mpb.AddActivityTaskRequest] = field(default_factory=list)
    queries: list[mpb.QueryWorkflowRequest] = field(default_factory=list)
    refuse_sticky: bool = False
    query_answer: Any = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def AddWorkflowTask(self, request: mpb.AddWorkflowTaskRequest, *, deadline: float | None = None) -> mpb.AddWorkflowTaskResponse:
        if self.refuse_sticky and request.task_queue.kind == task_queue_pb2.TASK_QUEUE_KIND_STICKY:
            raise FailedPrecondition("StickyWorkerUnavailable")
        self.workflow_tasks.append(request)
        self.changed.set()
        return mpb.AddWorkflowTaskResponse()

    async def AddActivityTask(self, request: mpb.AddActivityTaskRequest, *, deadline: float | None = None) -> mpb.AddActivityTaskResponse:
        self.activity_tasks.append(request)
        self.changed.set()
        return mpb.AddActivityTaskResponse()

    async def QueryWorkflow(self, request: mpb.QueryWorkflowRequest, *, deadline: float | None = None) -> mpb.QueryWorkflowResponse:
        self.queries.append(request)
        if self.query_answer is None:
            raise FailedPrecondition("no query answer configured")
        return self.query_answer

    async def wait_for(self, predicate: Any, seconds: float = 5.0) -> Any:
        end = time.monotonic() + seconds
        while True:
            got = predicate()
            if got:
                return got
            if time.monotonic() > end:
                raise AssertionError("condition not reached in time")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), timeout=0.05)
            except TimeoutError:
                pass


@dataclass
class Env:
    persistence: Persistence
    clock: ManualClock
    matching: FakeMatching
    service: HistoryService
    namespace_id: str

    @property
    def handler(self) -> Any:
        return self.service.handler


@pytest.fixture
async def env(persistence: Persistence) -> AsyncIterator[Env]:
    """A started HistoryService over the shared ``persistence`` fixture (SQLite and PostgreSQL)."""
    ns_id = str(uuid.uuid4())
    desc = ws.DescribeNamespaceResponse(namespace_info=namespace_pb2.NamespaceInfo(name="default", id=ns_id))
    desc.config.workflow_execution_retention_ttl.FromSeconds(86400)
    await persistence.namespaces.create_namespace(NamespaceRecord(id=ns_id, name="default", data=desc.SerializeToString()))
    clock = ManualClock()
    matching = FakeMatching()
    service = HistoryService(persistence, clock, HistoryConfig(num_history_shards=2), "test-host")
    service.matching_client = matching
    await service.start()
    try:
        yield Env(persistence, clock, matching, service, ns_id)
    finally:
        await service.stop()
