"""Helpers for the matching tests: a scripted History, request builders, polling waits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from temporalio.api.common.v1 import message_pb2 as common_pb
from temporalio.api.enums.v1 import task_queue_pb2 as tq_enums
from temporalio.api.taskqueue.v1 import message_pb2 as tq_pb
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv

from server.gen.durata.internal.common.v1 import tokens_pb2
from server.gen.durata.internal.history.v1 import service_pb2 as hpb
from server.gen.durata.internal.matching.v1 import service_pb2 as mpb
from services.matching.config import MatchingConfig

NS = "11111111-2222-3333-4444-555555555555"
TQ = "orders"


@dataclass
class FakeHistory:
    """Answers record-started like History would; ``errors[workflow_id]`` scripts failures (one per call),
    ``gate`` (if set) blocks calls until opened."""

    calls: list[Any] = field(default_factory=list)
    errors: dict[str, list[Exception]] = field(default_factory=dict)
    gate: asyncio.Event | None = None

    async def _maybe_fail(self, workflow_id: str) -> None:
        if self.gate is not None:
            await self.gate.wait()
        pending = self.errors.get(workflow_id)
        if pending:
            raise pending.pop(0)

    async def RecordWorkflowTaskStarted(
        self, request: hpb.RecordWorkflowTaskStartedRequest, *, deadline: float | None = None
    ) -> wsv.PollWorkflowTaskQueueResponse:
        self.calls.append(request)
        await self._maybe_fail(request.workflow_execution.workflow_id)
        response = wsv.PollWorkflowTaskQueueResponse(
            workflow_execution=request.workflow_execution,
            workflow_type=common_pb.WorkflowType(name="Wf"),
            attempt=request.attempt,
        )
        if request.query_id:
            response.task_token = tokens_pb2.QueryTaskToken(
                namespace_id=request.namespace_id,
                task_queue=request.poll_request.task_queue.name,
                query_id=request.query_id,
            ).SerializeToString()
            response.query.CopyFrom(request.query)
        else:
            response.task_token = f"wft-{request.workflow_execution.workflow_id}".encode()
            response.started_event_id = request.scheduled_event_id + 1
        return response

    async def RecordActivityTaskStarted(
        self, request: hpb.RecordActivityTaskStartedRequest, *, deadline: float | None = None
    ) -> wsv.PollActivityTaskQueueResponse:
        self.calls.append(request)
        await self._maybe_fail(request.workflow_execution.workflow_id)
        return wsv.PollActivityTaskQueueResponse(
            task_token=f"act-{request.workflow_execution.workflow_id}".encode(),
            workflow_execution=request.workflow_execution,
            activity_id=str(request.scheduled_event_id),
            attempt=request.attempt,
        )


def fast_config(**overrides: Any) -> MatchingConfig:
    base: dict[str, Any] = dict(
        long_poll_timeout=5.0,
        poll_deadline_margin=0.2,
        sticky_liveness=10.0,
        sync_match_wait=2.0,
        ack_flush_interval=0.02,
        dispatch_error_backoff=0.01,
        janitor_interval=3600.0,
    )
    base.update(overrides)
    return MatchingConfig(**base)


async def wait_until(cond: Callable[[], Any], within: float = 5.0) -> None:
    end = time.monotonic() + within
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


def execution(workflow_id: str) -> common_pb.WorkflowExecution:
    return common_pb.WorkflowExecution(workflow_id=workflow_id, run_id=f"run-{workflow_id}")


def add_wft(
    workflow_id: str,
    queue: str = TQ,
    sticky: bool = False,
    scheduled_event_id: int = 2,
    schedule_to_start: float = 0.0,
) -> mpb.AddWorkflowTaskRequest:
    kind = tq_enums.TASK_QUEUE_KIND_STICKY if sticky else tq_enums.TASK_QUEUE_KIND_NORMAL
    req = mpb.AddWorkflowTaskRequest(
        namespace_id=NS,
        execution=execution(workflow_id),
        task_queue=tq_pb.TaskQueue(name=queue, kind=kind, normal_name=TQ if sticky else ""),
        scheduled_event_id=scheduled_event_id,
        attempt=1,
        stamp=1,
    )
    if schedule_to_start:
        req.schedule_to_start_timeout.FromNanoseconds(int(schedule_to_start * 1e9))
    return req


def add_activity(workflow_id: str, schedule_to_start: float = 0.0) -> mpb.AddActivityTaskRequest:
    req = mpb.AddActivityTaskRequest(
        namespace_id=NS,
        execution=execution(workflow_id),
        task_queue=tq_pb.TaskQueue(name=TQ),
        scheduled_event_id=5,
        attempt=1,
        stamp=1,
    )
    if schedule_to_start:
        req.schedule_to_start_timeout.FromNanoseconds(int(schedule_to_start * 1e9))
    return req


def poll_wft(
    identity: str = "worker-1", queue: str = TQ, sticky: bool = False
) -> mpb.PollWorkflowTaskQueueRequest:
    kind = tq_enums.TASK_QUEUE_KIND_STICKY if sticky else tq_enums.TASK_QUEUE_KIND_NORMAL
    return mpb.PollWorkflowTaskQueueRequest(
        namespace_id=NS,
        poller_id=f"poll-{identity}",
        poll_request=wsv.PollWorkflowTaskQueueRequest(
            namespace="default",
            identity=identity,
            task_queue=tq_pb.TaskQueue(name=queue, kind=kind, normal_name=TQ if sticky else ""),
        ),
    )


def poll_activity(identity: str = "worker-1") -> mpb.PollActivityTaskQueueRequest:
    return mpb.PollActivityTaskQueueRequest(
        namespace_id=NS,
        poller_id=f"poll-{identity}",
        poll_request=wsv.PollActivityTaskQueueRequest(
            namespace="default",
            identity=identity,
            task_queue=tq_pb.TaskQueue(name=TQ),
        ),
    )


def deadline_in(seconds: float) -> float:
    return time.monotonic() + seconds
