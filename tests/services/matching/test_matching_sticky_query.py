"""Sticky queues, legacy query tasks, worker shutdown and DescribeTaskQueue."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.api.common.v1 import message_pb2 as common_pb
from temporalio.api.enums.v1 import query_pb2 as query_enums
from temporalio.api.enums.v1 import task_queue_pb2 as tq_enums
from temporalio.api.query.v1 import message_pb2 as query_pb
from temporalio.api.taskqueue.v1 import message_pb2 as tq_pb
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv

from server.common.clock import ManualClock
from server.common.errors import DeadlineExceeded, FailedPrecondition, NotFound
from server.gen.durata.internal.common.v1 import tokens_pb2
from server.gen.durata.internal.matching.v1 import service_pb2 as mpb
from server.persistence.interface import Persistence, TaskQueueKey
from services.matching.service import MatchingService

from .conftest import ServiceFactory
from .helpers import NS, TQ, FakeHistory, add_wft, deadline_in, execution, poll_activity, poll_wft, wait_until

STICKY = "worker-1-sticky-abc"
STICKY_KEY = TaskQueueKey(NS, STICKY, 1)
WF_KEY = TaskQueueKey(NS, TQ, 1)


def waiting(svc: MatchingService, key: TaskQueueKey) -> int:
    mgr = svc.loaded(key)
    return 0 if mgr is None else mgr.waiting_pollers()


def query_request(workflow_id: str, queue: str = TQ, sticky: bool = False) -> mpb.QueryWorkflowRequest:
    kind = tq_enums.TASK_QUEUE_KIND_STICKY if sticky else tq_enums.TASK_QUEUE_KIND_NORMAL
    return mpb.QueryWorkflowRequest(
        namespace_id=NS,
        execution=execution(workflow_id),
        task_queue=tq_pb.TaskQueue(name=queue, kind=kind),
        query=query_pb.WorkflowQuery(query_type="state"),
    )


def answer(token: bytes, value: bytes) -> mpb.RespondQueryTaskCompletedRequest:
    return mpb.RespondQueryTaskCompletedRequest(
        namespace_id=NS,
        request=wsv.RespondQueryTaskCompletedRequest(
            task_token=token,
            completed_type=query_enums.QUERY_RESULT_TYPE_ANSWERED,
            query_result=common_pb.Payloads(payloads=[common_pb.Payload(data=value)]),
        ),
    )


async def test_sticky_queue_without_recent_poller_is_unavailable(
    make_service: ServiceFactory, clock: ManualClock, persistence: Persistence
) -> None:
    svc = await make_service(long_poll_timeout=0.2)
    with pytest.raises(FailedPrecondition, match="StickyWorkerUnavailable"):
        await svc.handler.AddWorkflowTask(add_wft("wf-1", queue=STICKY, sticky=True))

    # A poll (even one that ended empty) makes the sticky queue live for sticky_liveness.
    empty = await svc.handler.PollWorkflowTaskQueue(poll_wft(queue=STICKY, sticky=True))
    assert empty == wsv.PollWorkflowTaskQueueResponse()
    await svc.handler.AddWorkflowTask(add_wft("wf-1", queue=STICKY, sticky=True))
    response = await svc.handler.PollWorkflowTaskQueue(
        poll_wft(queue=STICKY, sticky=True), deadline=deadline_in(5)
    )
    assert response.workflow_execution.workflow_id == "wf-1"
    # Sticky queues are never persisted.
    assert await persistence.tasks.get_tasks(STICKY_KEY, 0, 1 << 62, 10) == []

    clock.advance(11)
    with pytest.raises(FailedPrecondition, match="StickyWorkerUnavailable"):
        await svc.handler.AddWorkflowTask(add_wft("wf-2", queue=STICKY, sticky=True))


async def test_sticky_poller_waiting_gets_sync_match(
    make_service: ServiceFactory, clock: ManualClock
) -> None:
    svc = await make_service()
    poll = asyncio.create_task(
        svc.handler.PollWorkflowTaskQueue(poll_wft(queue=STICKY, sticky=True), deadline=deadline_in(10))
    )
    await wait_until(lambda: waiting(svc, STICKY_KEY) == 1)
    clock.advance(60)  # a parked poller counts as alive however old its start is
    await svc.handler.AddWorkflowTask(add_wft("wf-1", queue=STICKY, sticky=True))
    assert (await poll).workflow_execution.workflow_id == "wf-1"


async def test_query_task_round_trip(make_service: ServiceFactory, history: FakeHistory) -> None:
    svc = await make_service()
    query = asyncio.create_task(svc.handler.QueryWorkflow(query_request("wf-q"), deadline=deadline_in(10)))
    response = await svc.handler.PollWorkflowTaskQueue(poll_wft(), deadline=deadline_in(10))
    assert response.query.query_type == "state"
    dispatched = history.calls[-1]
    assert dispatched.query_id and dispatched.query.query_type == "state"
    assert dispatched.workflow_execution.workflow_id == "wf-q"
    assert tokens_pb2.QueryTaskToken.FromString(response.task_token).query_id == dispatched.query_id

    await svc.handler.RespondQueryTaskCompleted(answer(response.task_token, b'"done"'))
    result = await query
    assert result.completed_type == query_enums.QUERY_RESULT_TYPE_ANSWERED
    assert result.query_result.payloads[0].data == b'"done"'

    # Answering again (or an unknown id) is NotFound.
    with pytest.raises(NotFound):
        await svc.handler.RespondQueryTaskCompleted(answer(response.task_token, b"again"))


async def test_query_is_served_before_backlog_and_to_parked_poller(make_service: ServiceFactory) -> None:
    svc = await make_service()
    await svc.handler.AddWorkflowTask(add_wft("wf-backlog"))
    query = asyncio.create_task(svc.handler.QueryWorkflow(query_request("wf-q"), deadline=deadline_in(10)))
    await wait_until(lambda: len(svc.queries) == 1)
    first = await svc.handler.PollWorkflowTaskQueue(poll_wft(), deadline=deadline_in(10))
    assert first.HasField("query")
    second = await svc.handler.PollWorkflowTaskQueue(poll_wft(), deadline=deadline_in(10))
    assert second.workflow_execution.workflow_id == "wf-backlog"
    await svc.handler.RespondQueryTaskCompleted(answer(first.task_token, b"1"))
    assert (await query).query_result.payloads[0].data == b"1"


async def test_query_times_out_at_caller_deadline(make_service: ServiceFactory) -> None:
    svc = await make_service()
    with pytest.raises(DeadlineExceeded):
        await svc.handler.QueryWorkflow(query_request("wf-q"), deadline=deadline_in(0.2))
    assert len(svc.queries) == 0
    # The expired query is not handed to a later poller.
    assert await svc.handler.PollWorkflowTaskQueue(poll_wft(), deadline=deadline_in(0.5)) == (
        wsv.PollWorkflowTaskQueueResponse()
    )


async def test_query_for_gone_workflow_fails_with_history_error(
    make_service: ServiceFactory, history: FakeHistory
) -> None:
    history.errors["wf-gone"] = [NotFound("workflow not found")]
    svc = await make_service()
    query = asyncio.create_task(svc.handler.QueryWorkflow(query_request("wf-gone"), deadline=deadline_in(10)))
    poll = asyncio.create_task(svc.handler.PollWorkflowTaskQueue(poll_wft(), deadline=deadline_in(10)))
    with pytest.raises(NotFound):
        await query
    assert not poll.done()  # the poller keeps waiting for real work
    await svc.handler.AddWorkflowTask(add_wft("wf-1"))
    assert (await poll).workflow_execution.workflow_id == "wf-1"


async def test_sticky_query_needs_live_sticky_worker(make_service: ServiceFactory) -> None:
    svc = await make_service()
    with pytest.raises(FailedPrecondition, match="StickyWorkerUnavailable"):
        await svc.handler.QueryWorkflow(
            query_request("wf-q", queue=STICKY, sticky=True), deadline=deadline_in(5)
        )


async def test_cancel_outstanding_polls_ends_worker_polls_and_drops_sticky_queue(
    make_service: ServiceFactory,
) -> None:
    svc = await make_service(long_poll_timeout=30.0)
    mine = [
        asyncio.create_task(svc.handler.PollWorkflowTaskQueue(poll_wft("me"), deadline=deadline_in(60))),
        asyncio.create_task(
            svc.handler.PollWorkflowTaskQueue(
                poll_wft("me", queue=STICKY, sticky=True), deadline=deadline_in(60)
            )
        ),
        asyncio.create_task(svc.handler.PollActivityTaskQueue(poll_activity("me"), deadline=deadline_in(60))),
    ]
    other = asyncio.create_task(
        svc.handler.PollWorkflowTaskQueue(poll_wft("other"), deadline=deadline_in(60))
    )
    await wait_until(lambda: waiting(svc, WF_KEY) == 2 and waiting(svc, STICKY_KEY) == 1)
    await wait_until(lambda: waiting(svc, TaskQueueKey(NS, TQ, 2)) == 1)

    await svc.handler.CancelOutstandingPolls(
        mpb.CancelOutstandingPollsRequest(namespace_id=NS, identity="me", sticky_task_queue=STICKY)
    )
    results = await asyncio.wait_for(asyncio.gather(*mine), timeout=2)
    assert all(r.task_token == b"" for r in results)
    assert not other.done()
    with pytest.raises(FailedPrecondition, match="StickyWorkerUnavailable"):
        await svc.handler.AddWorkflowTask(add_wft("wf-1", queue=STICKY, sticky=True))
    await svc.handler.AddWorkflowTask(add_wft("wf-2"))
    assert (await other).workflow_execution.workflow_id == "wf-2"


async def test_describe_task_queue_reports_recent_pollers(make_service: ServiceFactory) -> None:
    svc = await make_service(long_poll_timeout=0.05)
    await svc.handler.PollWorkflowTaskQueue(poll_wft("wf-poller@host"))
    await svc.handler.PollActivityTaskQueue(poll_activity("act-poller@host"))
    await svc.handler.AddWorkflowTask(add_wft("wf-backlog"))

    legacy = await svc.handler.DescribeTaskQueue(
        mpb.DescribeTaskQueueRequest(
            namespace_id=NS,
            request=wsv.DescribeTaskQueueRequest(
                namespace="default",
                task_queue=tq_pb.TaskQueue(name=TQ),
                task_queue_type=tq_enums.TASK_QUEUE_TYPE_WORKFLOW,
                include_task_queue_status=True,
            ),
        )
    )
    assert [p.identity for p in legacy.pollers] == ["wf-poller@host"]
    assert legacy.pollers[0].last_access_time.seconds > 0
    assert legacy.pollers[0].rate_per_second == 100000
    assert legacy.task_queue_status.backlog_count_hint == 1

    enhanced = await svc.handler.DescribeTaskQueue(
        mpb.DescribeTaskQueueRequest(
            namespace_id=NS,
            request=wsv.DescribeTaskQueueRequest(
                namespace="default",
                task_queue=tq_pb.TaskQueue(name=TQ),
                api_mode=tq_enums.DESCRIBE_TASK_QUEUE_MODE_ENHANCED,
                report_pollers=True,
                report_stats=True,
            ),
        )
    )
    types = enhanced.versions_info[""].types_info
    assert [p.identity for p in types[tq_enums.TASK_QUEUE_TYPE_WORKFLOW].pollers] == ["wf-poller@host"]
    assert [p.identity for p in types[tq_enums.TASK_QUEUE_TYPE_ACTIVITY].pollers] == ["act-poller@host"]
    assert types[tq_enums.TASK_QUEUE_TYPE_WORKFLOW].stats.approximate_backlog_count == 1
    assert types[tq_enums.TASK_QUEUE_TYPE_WORKFLOW].stats.tasks_add_rate > 0
