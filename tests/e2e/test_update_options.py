"""UpdateActivityOptions / UpdateWorkflowExecutionOptions through the official SDK and the ``temporal`` CLI:
a slowly retrying activity gets a short retry policy (by id or by type) and completes; a running attempt gets
a short start-to-close timeout and times out by it; restore_original puts the Scheduled event's options back;
a workflow's priority changes with one WorkflowExecutionOptionsUpdated event and shows in Describe."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from typing import Any

import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.field_mask_pb2 import FieldMask
from temporalio import activity
from temporalio.api.activity.v1 import ActivityOptions
from temporalio.api.common.v1 import Priority, RetryPolicy, WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflow.v1 import WorkflowExecutionOptions
from temporalio.api.workflowservice.v1 import (
    UpdateActivityOptionsRequest,
    UpdateWorkflowExecutionOptionsRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from e2e.deployments import Deployment
from e2e.helpers import wait_until, wid
from e2e.test_temporal_cli import parse_json, temporal
from e2e.update_options_workflows import LongSleep, SlowRetry

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]
TQ = "update-options-tq"
ATTEMPTS: dict[str, list[int]] = defaultdict(list)


@activity.defn(name="flaky")
async def flaky(key: str) -> str:
    attempt = activity.info().attempt
    ATTEMPTS[key].append(attempt)
    if attempt == 1:
        raise RuntimeError("first attempt fails")
    return f"done on attempt {attempt}"


@activity.defn(name="sleeper")
async def sleeper(key: str) -> str:
    ATTEMPTS[key].append(activity.info().attempt)
    await asyncio.sleep(3600)
    return "woke"


def _worker(client: Client, tq: str = TQ) -> Worker:
    return Worker(client, task_queue=tq, workflows=[SlowRetry, LongSleep], activities=[flaky, sleeper])


async def _in_backoff(client: Client, key: str) -> bool:
    desc = await client.get_workflow_handle(key).describe()
    pending = desc.raw_description.pending_activities
    return bool(pending) and pending[0].attempt == 2


async def test_shorter_retry_policy_by_id_then_by_type(deployment: Deployment, client: Client) -> None:
    async with _worker(client):
        for target in ("id", "type"):
            key = wid(f"retry-{target}")
            h = await client.start_workflow(SlowRetry.run, key, id=key, task_queue=TQ)
            await wait_until(lambda k=key: _in_backoff(client, k), 30, "attempt 1 failed, attempt 2 waits an hour")  # type: ignore[misc]
            req = UpdateActivityOptionsRequest(
                namespace="default", execution=WorkflowExecution(workflow_id=key), identity="op",
                activity_options=ActivityOptions(retry_policy=RetryPolicy(initial_interval=Duration(seconds=1))),
                update_mask=FieldMask(paths=["retry_policy.initial_interval"]),
            )
            if target == "id":
                req.id = "flaky"
            else:
                req.type = "flaky"
            resp = await client.workflow_service.update_activity_options(req)
            assert resp.activity_options.retry_policy.initial_interval.seconds == 1
            assert resp.activity_options.start_to_close_timeout.seconds == 60
            assert resp.activity_options.task_queue.name == TQ
            assert await asyncio.wait_for(h.result(), 30) == "done on attempt 2"
            events = [e.event_type async for e in h.fetch_history_events()]
            assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED in events  # no event for the update itself
            assert all("OPTIONS" not in EventType.Name(t) for t in events)


async def test_shorter_start_to_close_and_restore_original(deployment: Deployment, client: Client) -> None:
    async with _worker(client):
        key = wid("stc")
        h = await client.start_workflow(LongSleep.run, key, id=key, task_queue=TQ)
        await wait_until(lambda: asyncio.sleep(0, result=bool(ATTEMPTS[key])), 30, "sleeper started")
        ex = WorkflowExecution(workflow_id=key)
        opts = ActivityOptions(start_to_close_timeout=Duration(seconds=30), heartbeat_timeout=Duration(seconds=5))
        resp = await client.workflow_service.update_activity_options(UpdateActivityOptionsRequest(
            namespace="default", execution=ex, id="sleeper", activity_options=opts,
            update_mask=FieldMask(paths=["start_to_close_timeout"]),  # heartbeat_timeout is not in the mask
        ))
        assert resp.activity_options.start_to_close_timeout.seconds == 30
        assert resp.activity_options.heartbeat_timeout.seconds == 0
        shown = (await h.describe()).raw_description.pending_activities[0].activity_options
        assert shown.start_to_close_timeout.seconds == 30 and shown.task_queue.name == TQ
        resp = await client.workflow_service.update_activity_options(UpdateActivityOptionsRequest(
            namespace="default", execution=ex, match_all=True, restore_original=True,
        ))
        assert resp.activity_options.start_to_close_timeout.seconds == 60
        with pytest.raises(RPCError) as err:
            await client.workflow_service.update_activity_options(UpdateActivityOptionsRequest(
                namespace="default", execution=ex, id="sleeper", restore_original=True,
                update_mask=FieldMask(paths=["start_to_close_timeout"]),
            ))
        assert err.value.status == RPCStatusCode.INVALID_ARGUMENT
        assert err.value.message == "Both UpdateMask and RestoreOriginal are provided"
        began = time.monotonic()
        await client.workflow_service.update_activity_options(UpdateActivityOptionsRequest(
            namespace="default", execution=ex, id="sleeper",
            activity_options=ActivityOptions(start_to_close_timeout=Duration(seconds=2)),
            update_mask=FieldMask(paths=["start_to_close_timeout"]),
        ))
        result = await asyncio.wait_for(h.result(), 30)
        assert "StartToClose" in result or "timeout" in result.lower(), result
        assert time.monotonic() - began < 25


async def test_bad_activity_requests(deployment: Deployment, client: Client) -> None:
    async with Worker(client, task_queue=TQ + "-wf", workflows=[SlowRetry]):  # no activity poller
        key = wid("bad")
        await client.start_workflow(SlowRetry.run, key, id=key, task_queue=TQ + "-wf")
        ex = WorkflowExecution(workflow_id=key)

        async def refused(req: UpdateActivityOptionsRequest) -> tuple[RPCStatusCode, str]:
            with pytest.raises(RPCError) as err:
                await client.workflow_service.update_activity_options(req)
            return err.value.status, err.value.message

        async def has_pending() -> bool:
            return bool((await client.get_workflow_handle(key).describe()).raw_description.pending_activities)

        await wait_until(has_pending, 30, "activity scheduled")
        invalid = RPCStatusCode.INVALID_ARGUMENT

        def by_id(opts: ActivityOptions | None = None, paths: list[str] | None = None) -> UpdateActivityOptionsRequest:
            return UpdateActivityOptionsRequest(
                namespace="default", execution=ex, id="flaky", activity_options=opts,
                update_mask=FieldMask(paths=paths) if paths is not None else None,
            )

        assert await refused(by_id()) == (invalid, "ActivityOptions are not provided")
        assert await refused(by_id(ActivityOptions())) == (
            invalid, "UpdateMask is not provided")
        for path, what in (("task_queue.name", "TaskQueue"), ("retry_policy.maximum_attempts", "RetryPolicy"),
                           ("priority.priority_key", "Priority")):
            assert await refused(by_id(ActivityOptions(), [path])) == (invalid, f"{what} is not provided")
        status, _ = await refused(UpdateActivityOptionsRequest(
            namespace="default", execution=ex, type="nope", activity_options=ActivityOptions(), update_mask=FieldMask()))
        assert status == RPCStatusCode.NOT_FOUND
        # unknown paths are ignored
        resp = await client.workflow_service.update_activity_options(by_id(ActivityOptions(), ["no_such_field"]))
        assert resp.activity_options.start_to_close_timeout.seconds == 60
        await client.get_workflow_handle(key).terminate("done")


async def test_workflow_priority(deployment: Deployment, client: Client) -> None:
    async with _worker(client, TQ + "-prio"):
        key = wid("prio")
        h = await client.start_workflow(LongSleep.run, key, id=key, task_queue=TQ + "-prio")
        req = UpdateWorkflowExecutionOptionsRequest(
            namespace="default", workflow_execution=WorkflowExecution(workflow_id=key), identity="op",
            workflow_execution_options=WorkflowExecutionOptions(priority=Priority(priority_key=3, fairness_key="k")),
            update_mask=FieldMask(paths=["priority.priority_key"]),
        )
        resp = await client.workflow_service.update_workflow_execution_options(req)
        assert resp.workflow_execution_options.priority.priority_key == 3
        assert resp.workflow_execution_options.priority.fairness_key == ""
        await client.workflow_service.update_workflow_execution_options(req)  # nothing changes: no event
        desc = await h.describe()
        assert desc.raw_description.workflow_execution_info.priority.priority_key == 3
        async def options_events() -> list[Any]:
            # Buffered behind the first workflow task when that is in flight, so it may show a moment later.
            return [e async for e in h.fetch_history_events()
                    if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_OPTIONS_UPDATED]

        updated = await wait_until(options_events, 30, "the options event in history")
        assert len(updated) == 1
        attrs = updated[0].workflow_execution_options_updated_event_attributes
        assert attrs.priority.priority_key == 3 and attrs.identity == "op" and attrs.unset_versioning_override
        with pytest.raises(RPCError) as err:
            await client.workflow_service.update_workflow_execution_options(UpdateWorkflowExecutionOptionsRequest(
                namespace="default", workflow_execution=WorkflowExecution(workflow_id=key),
                workflow_execution_options=WorkflowExecutionOptions(), update_mask=FieldMask(paths=["bogus"]),
            ))
        assert err.value.status == RPCStatusCode.INVALID_ARGUMENT
        assert err.value.message.startswith("error parsing UpdateMask")
        await h.terminate("done")


async def test_cli_update_options(dev_deployment: Deployment) -> None:
    """``temporal activity update-options`` sends UpdateActivityExecutionOptions with the workflow id."""
    dep = dev_deployment
    client = await Client.connect(dep.address, namespace="default")
    async with _worker(client, TQ + "-cli"):
        key = wid("cli-retry")
        h = await client.start_workflow(SlowRetry.run, key, id=key, task_queue=TQ + "-cli")
        await wait_until(lambda: _in_backoff(client, key), 30, "attempt 2 waits an hour")
        out = await temporal(dep, "activity", "update-options", "--workflow-id", key, "--activity-id", "flaky",
                             "--retry-initial-interval", "1s", "-o", "json")
        shown = parse_json(out)
        assert shown["InitialInterval"] == 1_000_000_000 and shown["StartToCloseTimeout"] == 60_000_000_000, shown
        assert await asyncio.wait_for(h.result(), 30) == "done on attempt 2"
        key2 = wid("cli-wf")
        h2 = await client.start_workflow(LongSleep.run, key2, id=key2, task_queue=TQ + "-cli")
        await wait_until(lambda: asyncio.sleep(0, result=bool(ATTEMPTS[key2])), 30, "sleeper started")
        shown = parse_json(await temporal(dep, "activity", "update-options", "--workflow-id", key2, "--activity-id", "sleeper",
                                          "--start-to-close-timeout", "45s", "-o", "json"))
        assert shown["StartToCloseTimeout"] == 45_000_000_000, shown
        shown = parse_json(await temporal(dep, "activity", "update-options", "--workflow-id", key2, "--activity-id", "sleeper",
                                          "--restore-original-options", "-o", "json"))
        assert shown["StartToCloseTimeout"] == 60_000_000_000, shown
        await temporal(dep, "workflow", "update-options", "--workflow-id", key2, "--versioning-override-behavior", "auto_upgrade")
        desc = await h2.describe()
        assert desc.raw_description.workflow_execution_info.versioning_info.versioning_override.auto_upgrade
        events = [e.event_type async for e in h2.fetch_history_events()]
        assert EventType.EVENT_TYPE_WORKFLOW_EXECUTION_OPTIONS_UPDATED in events
        await h2.terminate("done")
