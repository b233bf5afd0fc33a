"""PauseActivity / UnpauseActivity / ResetActivity through the official SDK: the running attempt learns of a
pause or reset through its heartbeat (the SDK cancels it with cancellation_details().paused / .reset), a
paused activity gets no new attempt until unpaused, Describe shows the pause, bad requests get Temporal's
errors."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest
from temporalio import activity
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.api.workflowservice.v1 import (
    PauseActivityRequest,
    ResetActivityRequest,
    UnpauseActivityRequest,
)
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from e2e.activity_command_workflows import RunBeater
from e2e.deployments import Deployment
from e2e.helpers import wait_until, wid

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]
TQ = "activity-commands-tq"

# key -> what each attempt saw: (attempt, "started" | "paused" | "reset" | "cancelled")
SEEN: dict[str, list[tuple[int, str]]] = defaultdict(list)


@activity.defn(name="beater")
async def beater(key: str) -> str:
    """Attempt 1 heartbeats until cancelled; later attempts finish at once."""
    attempt = activity.info().attempt
    SEEN[key].append((attempt, "started"))
    if attempt > 1:
        return f"done on attempt {attempt}"
    try:
        while True:
            activity.heartbeat(attempt)
            await asyncio.sleep(0.2)
    except asyncio.CancelledError:
        d = activity.cancellation_details()
        SEEN[key].append((attempt, "paused" if d and d.paused else "reset" if d and d.reset else "cancelled"))
        raise


async def _pending(h: WorkflowHandle[RunBeater, str]):  # type: ignore[no-untyped-def]
    desc = await h.describe()
    return desc.raw_description.pending_activities[0]


def _execution(h: WorkflowHandle[RunBeater, str]) -> WorkflowExecution:
    return WorkflowExecution(workflow_id=h.id)


async def _started(h: WorkflowHandle[RunBeater, str], key: str) -> None:
    await wait_until(lambda: asyncio.sleep(0, result=(1, "started") in SEEN[key]), 30, "attempt 1 started")
    await wait_until(
        lambda: _state_is(h, PendingActivityState.PENDING_ACTIVITY_STATE_STARTED), 30, "activity STARTED in describe"
    )


async def _state_is(h: WorkflowHandle[RunBeater, str], state: int) -> bool:
    return (await _pending(h)).state == state


async def test_pause_then_unpause(deployment: Deployment, client: Client) -> None:
    key = wid("pause")
    async with Worker(client, task_queue=TQ, workflows=[RunBeater], activities=[beater]):
        h = await client.start_workflow(RunBeater.run, key, id=key, task_queue=TQ)
        await _started(h, key)
        req = PauseActivityRequest(
            namespace="default", execution=_execution(h), identity="op", id="beat", reason="maintenance", request_id="p1"
        )
        await client.workflow_service.pause_activity(req)
        await client.workflow_service.pause_activity(req)  # same request id: accepted again
        await wait_until(lambda: asyncio.sleep(0, result=(1, "paused") in SEEN[key]), 30, "SDK cancels with paused")
        pa = await wait_until(
            lambda: _paused_waiting(h), 30, "describe PAUSED after the attempt reported back"
        )
        assert pa.paused and pa.attempt == 2
        assert pa.pause_info.manual.identity == "op" and pa.pause_info.manual.reason == "maintenance"
        with pytest.raises(RPCError) as e:
            req2 = PauseActivityRequest(namespace="default", execution=_execution(h), id="beat", request_id="p2")
            await client.workflow_service.pause_activity(req2)
        assert e.value.status == RPCStatusCode.FAILED_PRECONDITION
        # Well past the 300 ms retry backoff: a paused activity gets no new attempt.
        await asyncio.sleep(1.5)
        assert [s for s in SEEN[key] if s[1] == "started"] == [(1, "started")]
        assert (await _pending(h)).state == PendingActivityState.PENDING_ACTIVITY_STATE_PAUSED
        await client.workflow_service.unpause_activity(
            UnpauseActivityRequest(namespace="default", execution=_execution(h), id="beat")
        )
        assert await h.result() == "done on attempt 2"


async def _paused_waiting(h: WorkflowHandle[RunBeater, str]):  # type: ignore[no-untyped-def]
    pa = await _pending(h)
    return pa if pa.state == PendingActivityState.PENDING_ACTIVITY_STATE_PAUSED else None


async def test_pause_requested_shown_while_running(deployment: Deployment, client: Client) -> None:
    """Pause by type; until the running attempt reports back it is PAUSE_REQUESTED. A reset with keep_paused
    counts attempts from 1 again and the activity stays paused until unpaused."""
    key = wid("pause-req")
    worker = Worker(client, task_queue=TQ + "-2", workflows=[RunBeater], activities=[beater])
    async with worker:
        h = await client.start_workflow(RunBeater.run, key, id=key, task_queue=TQ + "-2")
        await _started(h, key)
        await client.workflow_service.pause_activity(
            PauseActivityRequest(namespace="default", execution=_execution(h), type="beater")
        )
        pa = await _pending(h)
        assert pa.paused
        assert pa.state in (
            PendingActivityState.PENDING_ACTIVITY_STATE_PAUSE_REQUESTED, PendingActivityState.PENDING_ACTIVITY_STATE_PAUSED
        )
        await wait_until(lambda: _paused_waiting(h), 30, "PAUSED after the cancel")
        await client.workflow_service.reset_activity(
            ResetActivityRequest(namespace="default", execution=_execution(h), id="beat", keep_paused=True)
        )
        pa = await _pending(h)
        assert pa.paused and pa.attempt == 1
        await client.workflow_service.unpause_activity(
            UnpauseActivityRequest(namespace="default", execution=_execution(h), type="beater")
        )
        # Attempt 1 runs again (and heartbeats until cancelled): reset it once more to let attempt 2 finish.
        await wait_until(lambda: asyncio.sleep(0, result=SEEN[key].count((1, "started")) == 2), 30, "attempt 1 again")
        await client.workflow_service.reset_activity(
            ResetActivityRequest(namespace="default", execution=_execution(h), id="beat")
        )
        assert await h.result() == "done on attempt 2"
        assert (1, "reset") in SEEN[key]


async def test_reset_running_attempt(deployment: Deployment, client: Client) -> None:
    key = wid("reset-act")
    async with Worker(client, task_queue=TQ, workflows=[RunBeater], activities=[beater]):
        h = await client.start_workflow(RunBeater.run, key, id=key, task_queue=TQ)
        await _started(h, key)
        await client.workflow_service.reset_activity(
            ResetActivityRequest(namespace="default", execution=_execution(h), id="beat", reset_heartbeat=True)
        )
        await wait_until(lambda: asyncio.sleep(0, result=(1, "reset") in SEEN[key]), 30, "SDK cancels with reset")
        assert await h.result() == "done on attempt 2"


async def test_bad_requests(deployment: Deployment, client: Client) -> None:
    key = wid("act-bad")
    async with Worker(client, task_queue=TQ + "-wf", workflows=[RunBeater]):  # no activity poller
        h = await client.start_workflow(RunBeater.run, key, id=key, task_queue=TQ + "-wf")
        await wait_until(lambda: _has_pending(h), 30, "activity scheduled")
    ex = _execution(h)
    with pytest.raises(RPCError) as e:
        await client.workflow_service.pause_activity(PauseActivityRequest(namespace="default", execution=ex, id="nope"))
    assert e.value.status == RPCStatusCode.NOT_FOUND
    assert e.value.message == "Can't find pending activity with such ID. Invalid activityID or activity already completed"
    for call, req in (
        (client.workflow_service.pause_activity, PauseActivityRequest(namespace="default", execution=ex)),
        (client.workflow_service.unpause_activity, UnpauseActivityRequest(namespace="default", execution=ex)),
        (client.workflow_service.reset_activity, ResetActivityRequest(namespace="default", execution=ex)),
    ):
        with pytest.raises(RPCError) as e:
            await call(req)  # type: ignore[operator]
        assert e.value.status == RPCStatusCode.INVALID_ARGUMENT
        assert e.value.message == "Either Activity.Id or Activity.Type should be set on request."
    with pytest.raises(RPCError) as e:
        await client.workflow_service.reset_activity(ResetActivityRequest(namespace="default", execution=ex, type="other"))
    assert e.value.status == RPCStatusCode.NOT_FOUND
    # Not running anywhere: pause is at once PAUSED, unpause re-queues it.
    await client.workflow_service.pause_activity(PauseActivityRequest(namespace="default", execution=ex, id="beat"))
    assert (await _pending(h)).state == PendingActivityState.PENDING_ACTIVITY_STATE_PAUSED
    await client.workflow_service.unpause_activity(UnpauseActivityRequest(namespace="default", execution=ex, unpause_all=True))
    assert (await _pending(h)).state == PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED
    await h.terminate("done")


async def _has_pending(h: WorkflowHandle[RunBeater, str]) -> bool:
    return bool((await h.describe()).raw_description.pending_activities)
