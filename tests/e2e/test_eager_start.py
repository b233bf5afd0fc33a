"""Eager workflow start with the official SDK: the first workflow task comes back in the start response."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.worker import Worker

from e2e.helpers import assert_dense, wid
from e2e.uws_workflows import UwsCounter

pytestmark = pytest.mark.asyncio


async def test_eager_start_runs_first_task_in_response(client: Client, task_queue: str) -> None:
    async with Worker(client, task_queue=task_queue, workflows=[UwsCounter]):
        handle = await client.start_workflow(
            UwsCounter.run, 0, id=wid("eager"), task_queue=task_queue, request_eager_start=True
        )
        assert getattr(handle, "__temporal_eagerly_started") is True
        assert await handle.execute_update(UwsCounter.add, 4) == 4
        await handle.signal(UwsCounter.finish)
        assert await handle.result() == 4
        history = await handle.fetch_history()
        types = assert_dense(history)
        assert types[:3] == [
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
            EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
            EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
        ]
        assert history.events[2].workflow_task_started_event_attributes.identity == client.identity


async def test_no_eager_task_when_no_run_is_created(client: Client, task_queue: str) -> None:
    async with Worker(client, task_queue=task_queue, workflows=[UwsCounter]):
        w = wid("eager-existing")
        first = await client.start_workflow(UwsCounter.run, 0, id=w, task_queue=task_queue)
        again = await client.start_workflow(
            UwsCounter.run, 0, id=w, task_queue=task_queue, request_eager_start=True,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        assert getattr(again, "__temporal_eagerly_started") is False
        assert again.result_run_id == first.result_run_id
        delayed = await client.start_workflow(
            UwsCounter.run, 0, id=wid("eager-delay"), task_queue=task_queue, request_eager_start=True,
            start_delay=timedelta(milliseconds=100),
        )
        assert getattr(delayed, "__temporal_eagerly_started") is False
        for h in (first, delayed):
            await h.signal(UwsCounter.finish)
            assert await h.result() == 0


async def test_capabilities_say_what_is_served(client: Client) -> None:
    from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, GetSystemInfoRequest

    info = await client.workflow_service.get_system_info(GetSystemInfoRequest())
    assert info.capabilities.eager_workflow_start
    ns = await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace="default"))
    caps = ns.namespace_info.capabilities
    assert caps.sync_update and caps.async_update and caps.eager_workflow_start
    # Flags core changes behaviour on: on once Durata serves them (the worker registry, ShutdownWorker ending polls).
    assert caps.worker_heartbeats and not caps.worker_poll_complete_on_shutdown  # Temporal's default, see config
    assert not caps.poller_autoscaling
