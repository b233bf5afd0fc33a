"""Matching served over real gRPC (the cluster layout): errors, deadlines and client cancellation round-trip."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import grpc.aio
import pytest
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv

from server.common.errors import ServiceError
from server.gen.durata.internal.matching.v1 import service_pb2 as mpb
from server.persistence.interface import TaskQueueKey
from server.rpc.adapters import GRPC_CHANNEL_OPTIONS, GRPC_SERVER_OPTIONS, GrpcClient, add_handler_to_server
from services.matching.service import MatchingService

from .conftest import ServiceFactory
from .helpers import NS, TQ, add_wft, deadline_in, poll_wft, wait_until

DESCRIPTOR = mpb.DESCRIPTOR.services_by_name["MatchingService"]
WF_KEY = TaskQueueKey(NS, TQ, 1)


@pytest.fixture
async def served(make_service: ServiceFactory) -> AsyncIterator[tuple[MatchingService, GrpcClient]]:
    svc = await make_service(long_poll_timeout=30.0, poll_deadline_margin=0.3)
    server = grpc.aio.server(options=GRPC_SERVER_OPTIONS)
    add_handler_to_server(server, DESCRIPTOR, svc.handler, {})
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=GRPC_CHANNEL_OPTIONS)
    try:
        yield svc, GrpcClient(channel, DESCRIPTOR)
    finally:
        await channel.close()
        await server.stop(grace=None)


def waiting(svc: MatchingService) -> int:
    mgr = svc.loaded(WF_KEY)
    return 0 if mgr is None else mgr.waiting_pollers()


async def test_sticky_unavailable_round_trips_as_failed_precondition(
    served: tuple[MatchingService, GrpcClient],
) -> None:
    _, client = served
    with pytest.raises(ServiceError) as info:
        await client.AddWorkflowTask(
            add_wft("wf-1", queue="gone-sticky", sticky=True), deadline=deadline_in(5)
        )
    assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert info.value.message == "StickyWorkerUnavailable"


async def test_poll_over_grpc_answers_empty_before_the_client_deadline(
    served: tuple[MatchingService, GrpcClient],
) -> None:
    _, client = served
    response = await client.PollWorkflowTaskQueue(poll_wft(), deadline=deadline_in(0.8))
    assert response == wsv.PollWorkflowTaskQueueResponse()


async def test_client_cancel_removes_the_poller_and_keeps_the_task(
    served: tuple[MatchingService, GrpcClient],
) -> None:
    svc, client = served
    poll = asyncio.create_task(client.PollWorkflowTaskQueue(poll_wft(), deadline=deadline_in(20)))
    await wait_until(lambda: waiting(svc) == 1)
    poll.cancel()
    with pytest.raises(asyncio.CancelledError):
        await poll
    await wait_until(lambda: waiting(svc) == 0)
    await client.AddWorkflowTask(add_wft("wf-1"), deadline=deadline_in(5))
    response = await client.PollWorkflowTaskQueue(poll_wft("worker-2"), deadline=deadline_in(5))
    assert response.workflow_execution.workflow_id == "wf-1"
