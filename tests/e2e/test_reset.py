"""ResetWorkflowExecution through the official SDK's raw call: the new run replays, signals after the cut
are re-applied, the old run is terminated, the request id is idempotent."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio import activity
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import (
    EventType,
    ResetReapplyExcludeType,
    UpdateAdmittedEventOrigin,
    WorkflowTaskFailedCause,
)
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle, WorkflowUpdateStage
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from e2e.deployments import Deployment
from e2e.helpers import wait_until, wid
from e2e.reset_workflows import (
    ActivityAndTimer,
    ChildWaits,
    CollectSignals,
    ContinuesOnce,
    LongUpdate,
    ParentOfChild,
    Tally,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]
TQ = "reset-tq"


async def test_reset_to_first_wft_reapplies_signals(deployment: Deployment, client: Client) -> None:
    async with Worker(client, task_queue=TQ, workflows=[CollectSignals]):
        h = await client.start_workflow(CollectSignals.run, 3, id=wid("reset"), task_queue=TQ)
        await h.signal(CollectSignals.add, "a")

        async def first_completed() -> int | None:
            async for ev in h.fetch_history_events():
                if ev.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
                    return ev.event_id
            return None

        finish = await wait_until(first_completed, 30, "first WFT completed")
        req = ResetWorkflowExecutionRequest(
            namespace="default", workflow_execution=WorkflowExecution(workflow_id=h.id, run_id=h.result_run_id),
            reason="test reset", workflow_task_finish_event_id=finish, request_id=str(uuid.uuid4()),
        )
        resp = await client.workflow_service.reset_workflow_execution(req)
        again = await client.workflow_service.reset_workflow_execution(req)
        assert again.run_id == resp.run_id
        old = await client.get_workflow_handle(h.id, run_id=h.result_run_id).describe()
        assert old.status == WorkflowExecutionStatus.TERMINATED
        new = client.get_workflow_handle(h.id, run_id=resp.run_id)
        failed = [e async for e in new.fetch_history_events()
                  if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]
        a = failed[0].workflow_task_failed_event_attributes
        assert a.cause == WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_RESET_WORKFLOW
        assert (a.base_run_id, a.new_run_id) == (h.result_run_id, resp.run_id)
        await new.signal(CollectSignals.add, "b")
        await new.signal(CollectSignals.add, "c")
        assert await new.result() == ["a", "b", "c"]


async def test_reset_bad_event_id(deployment: Deployment, client: Client) -> None:
    h = await client.start_workflow(CollectSignals.run, 1, id=wid("reset-bad"), task_queue="reset-none")
    with pytest.raises(RPCError) as e:
        await client.workflow_service.reset_workflow_execution(ResetWorkflowExecutionRequest(
            namespace="default", workflow_execution=WorkflowExecution(workflow_id=h.id),
            reason="x", workflow_task_finish_event_id=1, request_id=str(uuid.uuid4())))
    assert e.value.status == RPCStatusCode.INVALID_ARGUMENT


# --type LastWorkflowTask reads the history newest first (GetWorkflowExecutionHistoryReverse).
@pytest.mark.parametrize("how", [["--type", "FirstWorkflowTask"], ["--type", "LastWorkflowTask"], ["--event-id"]])
async def test_cli_reset(deployment: Deployment, client: Client, how: list[str]) -> None:
    if deployment.kind != "dev":
        pytest.skip("CLI runs against start-dev")
    from e2e.test_temporal_cli import temporal

    async with Worker(client, task_queue=TQ, workflows=[CollectSignals]):
        h = await client.start_workflow(CollectSignals.run, 2, id=wid("reset-cli"), task_queue=TQ)
        await h.signal(CollectSignals.add, "a")

        async def wft_done() -> int | None:
            ids = [e.event_id async for e in h.fetch_history_events()
                   if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED]
            return ids[0] if ids else None

        done_id = await wait_until(wft_done, 30, "a WFT completed")
        if how == ["--event-id"]:
            how = [*how, str(done_id)]
        await temporal(deployment, "workflow", "reset", "--workflow-id", h.id, *how, "--reason", "cli", "--yes")
        desc = await client.get_workflow_handle(h.id).describe()
        assert desc.run_id != h.result_run_id
        await client.get_workflow_handle(h.id).signal(CollectSignals.add, "b")
        assert await client.get_workflow_handle(h.id).result() == ["a", "b"]


async def test_reset_carries_over_pending_activity_and_timer(deployment: Deployment, client: Client) -> None:
    """As Temporal's resetter: an activity open at the cut is dispatched again in the new run, a timer open at
    the cut fires when it was due; the old run's activity attempt can no longer complete."""
    calls: list[str] = []
    release = asyncio.Event()

    @activity.defn(name="held")
    async def held() -> str:
        calls.append(activity.info().workflow_run_id)
        if len(calls) == 1:
            await release.wait()  # the base run's attempt: still running at the reset
        return f"attempt of {activity.info().workflow_run_id}"

    tq = f"reset-pending-{uuid.uuid4()}"
    async with Worker(client, task_queue=tq, workflows=[ActivityAndTimer], activities=[held]):
        h = await client.start_workflow(ActivityAndTimer.run, 3.0, id=wid("reset-pending"), task_queue=tq)
        await wait_until(lambda: _started(calls), 30, "first activity attempt running")
        await h.signal(ActivityAndTimer.proceed)

        async def second_completed() -> int | None:
            done = [ev.event_id async for ev in h.fetch_history_events()
                    if ev.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED]
            return done[1] if len(done) >= 2 else None

        finish = await wait_until(second_completed, 30, "the signal's WFT completed")
        resp = await client.workflow_service.reset_workflow_execution(ResetWorkflowExecutionRequest(
            namespace="default", workflow_execution=WorkflowExecution(workflow_id=h.id, run_id=h.result_run_id),
            reason="pending", workflow_task_finish_event_id=finish, request_id=str(uuid.uuid4()),
        ))
        new = client.get_workflow_handle(h.id, run_id=resp.run_id)
        assert await new.result() == [f"attempt of {resp.run_id}", "timer fired"]
        release.set()
        types = [e.event_type async for e in new.fetch_history_events()]
        assert types.count(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED) == 1  # the copied one, not a new one
        assert EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED in types and EventType.EVENT_TYPE_TIMER_FIRED in types
    assert calls == [h.result_run_id, resp.run_id]


async def _started(calls: list[str]) -> bool:
    return bool(calls)


async def test_reset_reapplies_updates_as_durable_requests(deployment: Deployment, client: Client) -> None:
    """Updates after the cut come back as UpdateAdmitted (origin REAPPLY) events the worker runs again, in order
    with the signals; excluding updates leaves them out."""
    tq = f"reset-updates-{uuid.uuid4()}"
    async with Worker(client, task_queue=tq, workflows=[Tally]):
        h = await client.start_workflow(Tally.run, id=wid("reset-upd"), task_queue=tq)
        first = await wait_until(lambda: _nth_completed(h, 1), 30, "first WFT completed")
        assert await h.execute_update(Tally.add, "u1", id="upd-1") == 1
        await h.signal(Tally.note, "s1")
        assert await h.execute_update(Tally.add, "u2", id="upd-2") == 3

        async def reset(exclude: list[int]) -> str:
            resp = await client.workflow_service.reset_workflow_execution(ResetWorkflowExecutionRequest(
                namespace="default", workflow_execution=WorkflowExecution(workflow_id=h.id),
                reason="reapply", workflow_task_finish_event_id=first, request_id=str(uuid.uuid4()),
                reset_reapply_exclude_types=exclude,  # type: ignore[arg-type]
            ))
            return resp.run_id

        run = await reset([])
        new = client.get_workflow_handle(h.id, run_id=run)
        # The re-applied update's outcome is there for a caller of the new run, under the same update id.
        assert await new.get_update_handle("upd-2").result() == 3
        await new.signal(Tally.finish)
        assert await new.result() == ["u1", "s1", "u2"]
        admitted = [e async for e in new.fetch_history_events()
                    if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ADMITTED]
        assert [e.workflow_execution_update_admitted_event_attributes.request.meta.update_id for e in admitted] == [
            "upd-1", "upd-2"]
        assert all(e.workflow_execution_update_admitted_event_attributes.origin == UpdateAdmittedEventOrigin.
                   UPDATE_ADMITTED_EVENT_ORIGIN_REAPPLY for e in admitted)

        again = client.get_workflow_handle(h.id, run_id=await reset([ResetReapplyExcludeType.RESET_REAPPLY_EXCLUDE_TYPE_UPDATE]))
        await again.signal(Tally.finish)
        assert await again.result() == ["s1"]


async def _nth_completed(h: WorkflowHandle, n: int) -> int | None:  # type: ignore[type-arg]
    done = [ev.event_id async for ev in h.fetch_history_events()
            if ev.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED]
    return done[n - 1] if len(done) >= n else None


async def _reset_to(client: Client, h: WorkflowHandle, finish: int) -> str:  # type: ignore[type-arg]
    resp = await client.workflow_service.reset_workflow_execution(ResetWorkflowExecutionRequest(
        namespace="default", workflow_execution=WorkflowExecution(workflow_id=h.id, run_id=h.result_run_id or ""),
        reason="children", workflow_task_finish_event_id=finish, request_id=str(uuid.uuid4()),
    ))
    return resp.run_id


async def test_reset_with_running_child_keeps_it_and_new_run_gets_its_result(deployment: Deployment, client: Client) -> None:
    """As Temporal with history.allowResetWithPendingChildren (its default): a child open at the cut is carried by
    the new run, the terminated run leaves it running (no parent close policy), and its completion, reported to
    the old parent run, reaches the new run through the old run's reset_run_id."""
    tq = f"reset-child-{uuid.uuid4()}"
    child_id = wid("reset-kid")
    async with Worker(client, task_queue=tq, workflows=[ParentOfChild, ChildWaits]):
        h = await client.start_workflow(ParentOfChild.run, args=[child_id, False], id=wid("reset-parent"), task_queue=tq)
        finish = await wait_until(lambda: _nth_completed(h, 2), 30, "the WFT after the child started completed")
        run = await _reset_to(client, h, finish)
        old = await client.get_workflow_handle(h.id, run_id=h.result_run_id).describe()
        assert old.status == WorkflowExecutionStatus.TERMINATED
        assert old.raw_description.workflow_extended_info.reset_run_id == run
        new = client.get_workflow_handle(h.id, run_id=run)
        desc = await new.describe()
        assert [c.workflow_id for c in desc.raw_description.pending_children] == [child_id]
        child = client.get_workflow_handle(child_id)
        await asyncio.sleep(1.0)  # a bounded wait for a negative: the old run's close task has run by then
        assert (await child.describe()).status == WorkflowExecutionStatus.RUNNING
        await child.signal(ChildWaits.release)
        assert await new.result() == f"parent got child {child_id}"
        assert (await child.describe()).status == WorkflowExecutionStatus.COMPLETED
        types = [e.event_type async for e in new.fetch_history_events()]
        assert types.count(EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED) == 1
        assert EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED in types


async def test_reset_with_child_initiated_not_started_at_the_cut(deployment: Deployment, client: Client) -> None:
    """The cut lies between the child's Initiated and Started events: the base run's Started event is re-applied
    to the new run (as Temporal's resetter re-applies child events), which then gets the child's result."""
    tq = f"reset-child-{uuid.uuid4()}"
    child_id = wid("reset-kid2")
    async with Worker(client, task_queue=tq, workflows=[ParentOfChild, ChildWaits]):
        h = await client.start_workflow(ParentOfChild.run, args=[child_id, True], id=wid("reset-parent2"), task_queue=tq)

        async def first_started() -> bool:
            return any([e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED async for e in h.fetch_history_events()])

        await wait_until(first_started, 30, "the first WFT started", interval=0.05)
        await h.signal(ParentOfChild.poke)  # buffered behind the held task

        async def cut() -> int | None:
            events = [e async for e in h.fetch_history_events()]
            ids = {t: [e.event_id for e in events if e.event_type == t] for t in (
                EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED,
                EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED, EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED)}
            init = ids[EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED]
            started = ids[EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED]
            if not init or not started:
                return None
            between = [s for s in ids[EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED] if init[0] < s < started[0]]
            assert between, "no WorkflowTaskScheduled between the child's Initiated and Started events"
            return between[0] + 1

        finish = await wait_until(cut, 30, "child started")
        run = await _reset_to(client, h, finish)
        new = client.get_workflow_handle(h.id, run_id=run)
        types = [e.event_type async for e in new.fetch_history_events()]
        failed = types.index(EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED)
        assert EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED in types[failed:]
        await client.get_workflow_handle(child_id).signal(ChildWaits.release)
        assert await new.result() == f"parent got child {child_id}"


async def test_cli_reset_last_continued_as_new(deployment: Deployment, client: Client) -> None:
    """``--type LastContinuedAsNew`` resets the run that continued as new to its last workflow task: the current
    run is terminated and the new run (replaying run 1's history, its signal included) continues as new again."""
    if deployment.kind != "dev":
        pytest.skip("CLI runs against start-dev")
    from e2e.test_temporal_cli import temporal

    tq = f"reset-can-{uuid.uuid4()}"
    async with Worker(client, task_queue=tq, workflows=[ContinuesOnce]):
        h = await client.start_workflow(ContinuesOnce.run, args=[0, 1], id=wid("reset-can"), task_queue=tq)
        await h.signal(ContinuesOnce.add, "first")

        async def second_run() -> str | None:
            desc = await client.get_workflow_handle(h.id).describe()
            return desc.run_id if desc.run_id != h.result_run_id else None

        run2 = await wait_until(second_run, 30, "run 1 continued as new")
        await temporal(deployment, "workflow", "reset", "--workflow-id", h.id, "--type", "LastContinuedAsNew",
                       "--reason", "cli", "--yes")
        terminated = await client.get_workflow_handle(h.id, run_id=run2).describe()
        assert terminated.status == WorkflowExecutionStatus.TERMINATED

        base = await client.get_workflow_handle(h.id, run_id=h.result_run_id).describe()
        reset_run = base.raw_description.workflow_extended_info.reset_run_id  # the base links to its reset run
        assert reset_run not in ("", h.result_run_id, run2)

        async def reset_run_continued() -> bool:
            desc = await client.get_workflow_handle(h.id, run_id=reset_run).describe()
            return desc.status == WorkflowExecutionStatus.CONTINUED_AS_NEW

        await wait_until(reset_run_continued, 30, "the reset run continued as new again")
        await client.get_workflow_handle(h.id).signal(ContinuesOnce.add, "again")
        assert await client.get_workflow_handle(h.id).result() == ["again"]


async def test_reset_with_an_accepted_update_open_at_the_cut(deployment: Deployment, client: Client) -> None:
    """An update accepted before the cut and not completed lives on in the new run (its Accepted event is
    copied): the worker's replay resumes the handler, and the outcome is there under the same update id."""
    tq = f"reset-open-upd-{uuid.uuid4()}"
    async with Worker(client, task_queue=tq, workflows=[LongUpdate]):
        h = await client.start_workflow(LongUpdate.run, id=wid("reset-open-upd"), task_queue=tq)
        await wait_until(lambda: _nth_completed(h, 1), 30, "first WFT completed")
        upd = await h.start_update(LongUpdate.hold, "x", id="held-1", wait_for_stage=WorkflowUpdateStage.ACCEPTED)
        await wait_until(lambda: _nth_completed(h, 2), 30, "the update's WFT completed")
        await h.signal(LongUpdate.ping)  # a later task: the cut after it has the update accepted, not completed
        finish = await wait_until(lambda: _nth_completed(h, 3), 30, "the ping's WFT completed")
        resp = await client.workflow_service.reset_workflow_execution(ResetWorkflowExecutionRequest(
            namespace="default", workflow_execution=WorkflowExecution(workflow_id=h.id),
            reason="open update", workflow_task_finish_event_id=finish, request_id=str(uuid.uuid4()),
        ))
        new = client.get_workflow_handle(h.id, run_id=resp.run_id)
        await new.signal(LongUpdate.release)
        assert await new.result() == "done"
        assert await new.get_update_handle("held-1").result() == "held x"
        types = [e.event_type async for e in new.fetch_history_events()]
        assert types.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED) == 1
        assert types.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED) == 1
        del upd
