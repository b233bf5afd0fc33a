"""Schedules end to end: a scheduler system workflow per schedule on the internal worker (Durata's own SDK),
driven with the official Python SDK and the `temporal` CLI, on start-dev and the PostgreSQL services. The
calendar maths and every policy in detail are unit-tested on the sans-IO core
(tests/services/internal_worker/schedules); these tests check what a user sees."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.api.workflowservice.v1 import CountSchedulesRequest
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleBackfill,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from e2e.deployments import Deployment
from e2e.helpers import wait_until
from e2e.search_attribute_workflows import Counter
from e2e.test_temporal_cli import parse_json, temporal

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def sid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def scheduled_runs(client: Client, schedule_id: str) -> list[Any]:
    return [w async for w in client.list_workflows(f"TemporalScheduledById = '{schedule_id}'")]


async def test_interval_schedule_runs_hands_results_on_and_is_described_listed_and_deleted(
    deployment: Deployment, task_queue: str
) -> None:
    client = await Client.connect(deployment.address)
    schedule_id = sid("every")
    async with Worker(client, task_queue=task_queue, workflows=[Counter]):
        handle = await client.create_schedule(schedule_id, Schedule(
            action=ScheduleActionStartWorkflow(Counter.run, id=f"{schedule_id}-wf", task_queue=task_queue),
            # SKIP (the default) tracks each run, so its result reaches the next (ALLOW_ALL does not track).
            spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=1))]),
        ), memo={"owner": "team-a"})  # fmt: skip
        with pytest.raises(ScheduleAlreadyRunningError):
            await client.create_schedule(schedule_id, Schedule(
                action=ScheduleActionStartWorkflow(Counter.run, id="x", task_queue=task_queue), spec=ScheduleSpec(),
            ))  # fmt: skip

        async def three_done() -> Any:
            d = await handle.describe()
            done = [a for a in d.info.recent_actions if a.action.workflow_id]
            return d if d.info.num_actions >= 3 and len(done) >= 3 else None

        desc = await wait_until(three_done, 30, "three scheduled runs")
        assert desc.schedule.spec.intervals[0].every == timedelta(seconds=1)
        assert await desc.memo() == {"owner": "team-a"}
        assert len(desc.info.next_action_times) == 10
        ids = [a.action.workflow_id for a in desc.info.recent_actions]
        assert all(i.startswith(f"{schedule_id}-wf-20") and i.endswith("Z") for i in ids)  # <id>-<nominal time>

        # Each run got the last completion result of the one before it: their results count up.
        async def counted() -> list[int] | None:
            runs = await scheduled_runs(client, schedule_id)
            closed = sorted(r.id for r in runs if r.status is not None and r.status.name == "COMPLETED")
            if len(closed) < 3:
                return None
            return [await client.get_workflow_handle(w).result() for w in closed[:3]]

        results = await wait_until(counted, 30, "completed scheduled runs")
        assert results == [1, 2, 3]

        listed = [s async for s in await client.list_schedules(f"ScheduleId = '{schedule_id}'")]
        assert [s.id for s in listed] == [schedule_id]
        assert listed[0].raw_entry.info.workflow_type.name == "Counter"
        assert listed[0].info is not None and len(listed[0].info.next_action_times) > 0
        counted = await client.workflow_service.count_schedules(
            CountSchedulesRequest(namespace=client.namespace, query=f"ScheduleId = '{schedule_id}'")
        )
        assert counted.count == 1
        # The scheduler itself is a system workflow: it is not among the user's workflows.
        assert [w async for w in client.list_workflows(f"WorkflowId = 'temporal-sys-scheduler:{schedule_id}'")] == []

        await handle.delete()
    with pytest.raises(RPCError) as err:
        await handle.describe()
    assert err.value.status == RPCStatusCode.NOT_FOUND


async def test_pause_trigger_backfill_update_and_matching_times(deployment: Deployment, task_queue: str) -> None:
    client = await Client.connect(deployment.address)
    schedule_id = sid("manual")
    # Nothing polls "nobody": started runs stay open, so overlap decisions are visible.
    handle = await client.create_schedule(schedule_id, Schedule(
        action=ScheduleActionStartWorkflow("Idle", id=f"{schedule_id}-wf", task_queue="nobody"),
        spec=ScheduleSpec(cron_expressions=["0 12 * * *"]), state=ScheduleState(paused=True, note="not yet"),
    ))  # fmt: skip
    desc = await handle.describe()
    assert desc.schedule.state.paused and desc.schedule.state.note == "not yet"
    cal = desc.schedule.spec.calendars[0]
    assert [r.start for r in cal.hour] == [12] and [r.start for r in cal.minute] == [0]

    # Trigger runs even while paused; a second trigger overlaps the first and the policy (skip) drops it.
    await handle.trigger()
    await wait_until(lambda: _len(scheduled_runs(client, schedule_id), 1), 20, "triggered run")
    await handle.trigger()
    await asyncio.sleep(1.0)
    assert len(await scheduled_runs(client, schedule_id)) == 1
    await handle.trigger(overlap=ScheduleOverlapPolicy.ALLOW_ALL)
    await wait_until(lambda: _len(scheduled_runs(client, schedule_id), 2), 20, "an allowed overlapping run")

    # Backfill three past noons at once with ALLOW_ALL: one run each, named by their nominal times.
    start = datetime(2024, 1, 1, 11, 0, tzinfo=UTC)
    await handle.backfill(ScheduleBackfill(start_at=start, end_at=start + timedelta(days=2, hours=2),
                                           overlap=ScheduleOverlapPolicy.ALLOW_ALL))  # fmt: skip
    await wait_until(lambda: _len(scheduled_runs(client, schedule_id), 5), 20, "backfilled runs")
    names = sorted(w.id for w in await scheduled_runs(client, schedule_id))
    assert [f"{schedule_id}-wf-2024-01-0{d}T12:00:00Z" for d in (1, 2, 3)] == [n for n in names if "2024-01" in n]

    # Matching times, as the scheduler will use them.
    times = await client.workflow_service.list_schedule_matching_times(_matching(client, schedule_id, start))
    assert [t.ToDatetime(UTC) for t in times.start_time] == [start + timedelta(days=d, hours=1) for d in range(3)]

    # Update (the SDK describes, edits, sends the conflict token): a new spec; unpause.
    def edit(update_input: ScheduleUpdateInput) -> ScheduleUpdate:
        schedule = update_input.description.schedule
        schedule.spec = ScheduleSpec(cron_expressions=["30 6 * * *"])
        return ScheduleUpdate(schedule=schedule)

    await handle.update(edit)
    await handle.unpause(note="go")
    desc = await handle.describe()
    assert not desc.schedule.state.paused and desc.schedule.state.note == "go"
    assert [r.start for r in desc.schedule.spec.calendars[0].hour] == [6]
    assert desc.info.next_action_times[0].hour == 6 and desc.info.next_action_times[0].minute == 30

    # The CLI sees the same schedule.
    out = parse_json(await temporal(deployment, "schedule", "describe", "--schedule-id", schedule_id, "-o", "json"))
    assert out["schedule"]["state"].get("paused", False) is False
    listed = parse_json(await temporal(deployment, "schedule", "list", "-o", "json"))
    assert schedule_id in [s["scheduleId"] for s in listed]
    await temporal(deployment, "schedule", "delete", "--schedule-id", schedule_id)
    async for w in client.list_workflows(f"TemporalScheduledById = '{schedule_id}' AND ExecutionStatus = 'Running'"):
        await client.get_workflow_handle(w.id).terminate("done")


def _matching(client: Client, schedule_id: str, start: datetime) -> Any:
    from google.protobuf.timestamp_pb2 import Timestamp
    from temporalio.api.workflowservice.v1 import ListScheduleMatchingTimesRequest

    begin, end = Timestamp(), Timestamp()
    begin.FromDatetime(start)
    end.FromDatetime(start + timedelta(days=2, hours=2))
    return ListScheduleMatchingTimesRequest(
        namespace=client.namespace, schedule_id=schedule_id, start_time=begin, end_time=end
    )


@pytest.mark.parametrize(
    ("policy", "actions", "tracked", "buffered", "statuses"),
    [
        # one run started by a trigger, then three nominal times at once:
        # (actions taken, runs the schedule tracks, starts buffered, run statuses)
        (ScheduleOverlapPolicy.SKIP, 1, 1, 0, ["RUNNING"]),
        (ScheduleOverlapPolicy.BUFFER_ONE, 1, 1, 1, ["RUNNING"]),
        (ScheduleOverlapPolicy.BUFFER_ALL, 1, 1, 3, ["RUNNING"]),
        # the last of the three replaces the others; the running one is terminated, then it starts
        (ScheduleOverlapPolicy.TERMINATE_OTHER, 2, 1, 0, ["RUNNING", "TERMINATED"]),
        # the running one is asked to cancel (nothing runs it, so it stays): all three wait in the buffer,
        # the last of them to start once it closes
        (ScheduleOverlapPolicy.CANCEL_OTHER, 1, 1, 3, ["RUNNING"]),
        # overlapping runs are not tracked (Temporal's DontTrackOverlapping)
        (ScheduleOverlapPolicy.ALLOW_ALL, 4, 0, 0, ["RUNNING"] * 4),
    ],
)
async def test_overlap_policies(
    deployment: Deployment, policy: ScheduleOverlapPolicy, actions: int, tracked: int, buffered: int,
    statuses: list[str],
) -> None:
    """Runs that never finish (nothing polls their queue), so every overlap decision stays visible."""
    client = await Client.connect(deployment.address)
    schedule_id = sid(f"ov-{policy.name.lower().replace('_', '')}")
    handle = await client.create_schedule(schedule_id, Schedule(
        action=ScheduleActionStartWorkflow("Idle", id=f"{schedule_id}-wf", task_queue="nobody"),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(hours=1))]),
        policy=SchedulePolicy(overlap=policy),
    ))  # fmt: skip
    await handle.trigger()
    await wait_until(lambda: _len(scheduled_runs(client, schedule_id), 1), 20, "the triggered run")
    start = datetime(2024, 3, 1, tzinfo=UTC)
    await handle.backfill(ScheduleBackfill(start_at=start, end_at=start + timedelta(hours=2, minutes=30)))

    async def settled() -> bool:
        raw = await client.workflow_service.describe_schedule(_describe(client, schedule_id))
        runs = await scheduled_runs(client, schedule_id)
        seen = sorted(r.status.name for r in runs if r.status is not None)
        last[:] = [(raw.info.action_count, len(raw.info.running_workflows), raw.info.buffer_size, seen)]
        return last[0] == (actions, tracked, buffered, sorted(statuses))

    last: list[Any] = []
    try:
        await wait_until(settled, 30, f"{policy.name} settles")
    except TimeoutError as err:
        raise AssertionError(f"{policy.name}: (actions, tracked, buffered, statuses) = {last}") from err
    await asyncio.sleep(1.0)  # and stays so: nothing more happens on its own
    assert await settled()
    if policy == ScheduleOverlapPolicy.SKIP:
        assert (await handle.describe()).info.num_actions_skipped_overlap == 3
    await handle.delete()
    async for w in client.list_workflows(f"TemporalScheduledById = '{schedule_id}' AND ExecutionStatus = 'Running'"):
        await client.get_workflow_handle(w.id).terminate("done")


def _describe(client: Client, schedule_id: str) -> Any:
    from temporalio.api.workflowservice.v1 import DescribeScheduleRequest

    return DescribeScheduleRequest(namespace=client.namespace, schedule_id=schedule_id)


async def test_bad_schedules_are_refused(deployment: Deployment, task_queue: str) -> None:
    client = await Client.connect(deployment.address)
    bad = [
        (ScheduleSpec(cron_expressions=["61 * * * *"]), "Invalid schedule spec"),
        (ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=0))]), "Invalid schedule spec"),
    ]
    for spec, message in bad:
        with pytest.raises(RPCError) as err:
            await client.create_schedule(sid("bad"), Schedule(
                action=ScheduleActionStartWorkflow("X", id="x", task_queue=task_queue), spec=spec,
            ))  # fmt: skip
        assert err.value.status == RPCStatusCode.INVALID_ARGUMENT
        assert message in err.value.message, err.value.message
    with pytest.raises(RPCError) as err:
        await client.get_schedule_handle(sid("missing")).describe()
    assert err.value.status == RPCStatusCode.NOT_FOUND


async def _len(value: Any, n: int) -> bool:
    return len(await value) == n


@pytest.mark.parametrize("role", ["internal_worker", "history"])
async def test_a_crash_neither_skips_nor_repeats_a_time(fresh_cluster: Deployment, role: str) -> None:
    """A schedule fires every second for a minute; the internal worker (which runs the scheduler) or
    the history host (which owns its state) is SIGKILLed and restarted a few seconds later. Every nominal time
    from the first to the last is started exactly once: the missed ones are caught up (the default catch-up
    window is a year) and none is started twice (the run id is the nominal time, REJECT_DUPLICATE)."""
    client = await Client.connect(fresh_cluster.address)
    task_queue = f"crash-{uuid.uuid4().hex[:6]}"
    schedule_id = sid("crash")
    async with Worker(client, task_queue=task_queue, workflows=[Counter]):
        handle = await client.create_schedule(schedule_id, Schedule(
            action=ScheduleActionStartWorkflow(Counter.run, id=f"{schedule_id}-wf", task_queue=task_queue),
            spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=1))]),
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.ALLOW_ALL),
        ))  # fmt: skip
        await wait_until(lambda: _at_least(scheduled_runs(client, schedule_id), 4), 30, "the schedule fires")
        await asyncio.to_thread(fresh_cluster.kill, [role])
        await asyncio.sleep(3.0)  # times come due while nothing runs the scheduler
        await asyncio.to_thread(fresh_cluster.restart, [role])
        await wait_until(lambda: _at_least(scheduled_runs(client, schedule_id), 60), 120, "a minute of firing")
        await handle.pause()
        await asyncio.sleep(1.5)

        # A start that was in flight on the killed worker is retried once its activity times out (12 s).
        async def contiguous() -> bool:
            ids = [r.id for r in await scheduled_runs(client, schedule_id)]
            times = sorted(datetime.fromisoformat(i.removeprefix(f"{schedule_id}-wf-").replace("Z", "+00:00"))
                           for i in ids)  # fmt: skip
            found[:] = [ids, times]
            return all(b - a == timedelta(seconds=1) for a, b in zip(times, times[1:], strict=False))

        found: list[Any] = []
        try:
            await wait_until(contiguous, 60, "every nominal time started")
        except TimeoutError:
            pass
    ids, times = found
    assert len(ids) == len(set(ids)), "a run was started twice"
    gaps = [(a, b) for a, b in zip(times, times[1:], strict=False) if b - a != timedelta(seconds=1)]
    if gaps:
        missing = [a + timedelta(seconds=1) for a, _ in gaps]
        raw = await client.workflow_service.describe_schedule(_describe(client, schedule_id))
        found = []
        for t in missing:
            wid = f"{schedule_id}-wf-{t.strftime('%Y-%m-%dT%H:%M:%SZ')}"
            try:
                found.append((wid, (await client.get_workflow_handle(wid).describe()).status))
            except RPCError as err:
                found.append((wid, err.message))
        history = await client.get_workflow_handle(f"temporal-sys-scheduler:{schedule_id}").fetch_history()
        failed = [e for e in history.events if e.HasField("activity_task_failed_event_attributes")
                  or e.HasField("activity_task_timed_out_event_attributes")]  # fmt: skip
        raise AssertionError(f"nominal times skipped: {gaps}; runs: {found}; info: missed="
                             f"{raw.info.missed_catchup_window} actions={raw.info.action_count}; failed: {failed}")
    await handle.delete()


async def _at_least(value: Any, n: int) -> bool:
    return len(await value) >= n
