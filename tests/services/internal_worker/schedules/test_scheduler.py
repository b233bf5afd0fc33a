"""The scheduler core (sans-IO): overlap policies, catch-up window, pause, limits, trigger, backfill, results,
describe/list, continue-as-new. A fake wrapper (scheduler_world.World) executes the actions against simulated
runs with an injected clock; nothing sleeps. The properties are in test_scheduler_properties.py."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

import pytest
from google.protobuf import timestamp_pb2
from temporalio.api.enums.v1 import workflow_pb2 as wf_enums
from temporalio.api.failure.v1 import message_pb2 as failure_pb
from temporalio.api.schedule.v1 import message_pb2 as sched
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv

from server.common.errors import InvalidArgument
from services.internal_worker.schedules import scheduler as scheduler_module
from services.internal_worker.schedules.actions import StartWorkflow
from services.internal_worker.schedules.scheduler import Scheduler
from services.internal_worker.schedules.spec import compile_spec, jitter_seed

from .scheduler_world import (
    ALLOW_ALL,
    BUFFER_ALL,
    BUFFER_ONE,
    CANCEL_OTHER,
    SKIP,
    T0,
    TERMINATE_OTHER,
    UNSPECIFIED,
    WS,
    World,
    at,
    dur,
    every,
    make_schedule,
    new_scheduler,
    payloads,
    wid,
)

# ---------------------------------------------------------------- the start request


def test_start_request_carries_temporal_fields() -> None:
    w = World(new_scheduler())
    w.tick(60)
    [start] = w.starts
    assert start.workflow_id == "wf-2024-01-01T00:01:00Z"
    assert start.nominal_time == start.actual_time == at(60)
    assert not start.manual and start.overlap_policy == SKIP
    req = start.request
    assert req.namespace == "ns" and req.workflow_id == start.workflow_id and req.request_id == start.request_id
    assert req.workflow_type.name == "Job" and req.task_queue.name == "q"
    assert req.identity == "temporal-scheduler-ns-sid"
    assert req.workflow_id_reuse_policy == wf_enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE
    fields = req.search_attributes.indexed_fields
    assert fields["TemporalScheduledById"].data == b'"sid"'
    assert fields["TemporalScheduledStartTime"].data == b'"2024-01-01T00:01:00Z"'
    assert fields["TemporalScheduledStartTime"].metadata["encoding"] == b"json/plain"
    assert fields["Custom"].data == b'"x"'
    assert not req.HasField("last_completion_result") and not req.HasField("continued_failure")
    # the same decision on a replay gives the same request id
    again = World(new_scheduler())
    again.tick(60)
    assert again.starts[0].request_id == start.request_id
    assert w.watched == {start.workflow_id} and w.running_ids() == [start.workflow_id]


def test_times_strictly_after_creation_and_once_each() -> None:
    w = World(new_scheduler(now=at(0)))
    w.tick(0)
    assert w.starts == []
    for t in (30, 60, 60, 61, 119):
        w.tick(t)
    assert [a.workflow_id for a in w.starts] == [wid(60)]
    assert w.s.next_wakeup(w.now) == at(120)


# ---------------------------------------------------------------- overlap policies


def test_skip_is_the_default_and_defaults_show_in_describe() -> None:
    w = World(new_scheduler(make_schedule(policy=UNSPECIFIED)))
    w.tick(60)
    w.tick(120)  # the 00:01 run is still running
    assert [a.workflow_id for a in w.starts] == [wid(60)]
    assert w.s.info.overlap_skipped == 1
    w.close(wid(60), WS.WORKFLOW_EXECUTION_STATUS_COMPLETED)
    assert len(w.starts) == 1  # a skipped time is not taken later
    w.tick(180)
    assert [a.workflow_id for a in w.starts] == [wid(60), wid(180)]
    desc = w.s.describe(w.now)
    assert desc.schedule.policies.overlap_policy == SKIP
    assert desc.schedule.policies.catchup_window.seconds == 365 * 86400


def test_buffer_one_keeps_one_and_skips_the_rest() -> None:
    w = World(new_scheduler(make_schedule(policy=BUFFER_ONE)))
    w.tick(60)
    w.tick(120)
    w.tick(180)
    assert w.s.info.overlap_skipped == 1 and w.s.describe(w.now).info.buffer_size == 1
    w.close(wid(60), WS.WORKFLOW_EXECUTION_STATUS_COMPLETED)
    assert [a.workflow_id for a in w.starts] == [wid(60), wid(120)]
    assert w.starts[1].actual_time == at(120)  # the buffered start keeps its times


def test_buffer_all_runs_everything_in_order() -> None:
    w = World(new_scheduler(make_schedule(policy=BUFFER_ALL)))
    w.tick(240)  # four times due at once: one starts, three wait
    assert [a.workflow_id for a in w.starts] == [wid(60)]
    assert w.s.describe(w.now).info.buffer_size == 3
    for t in (60, 120, 180):
        w.close(wid(t), WS.WORKFLOW_EXECUTION_STATUS_COMPLETED)
    assert [a.workflow_id for a in w.starts] == [wid(60), wid(120), wid(180), wid(240)]
    assert w.s.info.overlap_skipped == 0 and w.s.info.action_count == 4


@pytest.mark.parametrize("policy", [CANCEL_OTHER, TERMINATE_OTHER])
def test_cancel_or_terminate_other(policy: int) -> None:
    w = World(new_scheduler(make_schedule(policy=policy)), auto_stop=False)
    w.tick(60)
    w.tick(120)
    stops: list[Any] = w.cancels if policy == CANCEL_OTHER else w.terminates
    assert [(a.workflow_id, a.first_execution_run_id) for a in stops] == [(wid(60), "run-1")]
    assert [a.workflow_id for a in w.starts] == [wid(60)]  # the new one waits for the old one to close
    if policy == CANCEL_OTHER:
        assert w.cancels[0].reason == "cancelled by schedule overlap policy"
        req = w.cancels[0].request("ns")
        assert req.first_execution_run_id == "run-1" and not req.workflow_execution.run_id
    else:
        assert w.terminates[0].reason == "terminated by schedule overlap policy"
    status = WS.WORKFLOW_EXECUTION_STATUS_CANCELED if policy == CANCEL_OTHER else WS.WORKFLOW_EXECUTION_STATUS_TERMINATED
    w.close(wid(60), status)
    assert [a.workflow_id for a in w.starts] == [wid(60), wid(120)]
    assert w.running_ids() == [wid(120)]


def test_cancel_other_with_several_due_keeps_only_the_latest() -> None:
    w = World(new_scheduler(make_schedule(policy=CANCEL_OTHER)))
    w.tick(180)  # nothing running: the later ones replace the earlier ones
    assert [a.workflow_id for a in w.starts] == [wid(180)]
    assert w.cancels == []


def test_allow_all_starts_everything_and_tracks_nothing() -> None:
    w = World(new_scheduler(make_schedule(policy=ALLOW_ALL)))
    w.tick(60)
    w.close(wid(60), WS.WORKFLOW_EXECUTION_STATUS_COMPLETED, result=payloads("1"))  # not tracked: ignored
    w.tick(180)
    assert [a.workflow_id for a in w.starts] == [wid(60), wid(120), wid(180)]
    assert w.s.info.running_workflows == [] and w.watched == set()
    assert all(a.last_completion_result is None for a in w.starts)
    assert len(w.s.info.recent_actions) == 3


def test_refresh_sees_a_close_the_watcher_has_not_reported() -> None:
    w = World(new_scheduler(make_schedule(policy=SKIP)))
    w.tick(60)
    w.silent_close(wid(60))
    w.tick(120)
    assert w.refreshes == 1
    assert [a.workflow_id for a in w.starts] == [wid(60), wid(120)]
    assert w.s.info.overlap_skipped == 0


# ---------------------------------------------------------------- catch-up window, pause, limits


def test_catchup_window_drops_and_counts_old_times() -> None:
    s = new_scheduler(make_schedule(policy=BUFFER_ALL, catchup_window=dur(600)))
    w = World(s)
    w.tick(3600)  # down for an hour: times older than 10 minutes are missed
    assert s.info.missed_catchup_window == 49  # 00:01 .. 00:49; 00:50 is exactly 10 minutes old: still in
    assert w.starts[0].workflow_id == wid(3000)
    assert s.describe(w.now).info.buffer_size == 10
    w.tick(3601)
    assert s.info.missed_catchup_window == 49  # counted once


def test_catchup_window_has_a_minimum_and_a_default() -> None:
    s = new_scheduler(make_schedule(catchup_window=dur(1)))
    assert s.catchup_window() == timedelta(seconds=10)
    assert s.describe(T0).schedule.policies.catchup_window.seconds == 10
    assert new_scheduler().catchup_window() == timedelta(days=365)
    w = World(s)
    w.tick(71)  # 00:01 is 11 s old
    assert s.info.missed_catchup_window == 1 and w.starts == []


def test_long_outage_is_caught_up_over_several_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scheduler_module, "MAX_TIMES_PER_PASS", 100)
    s = new_scheduler(make_schedule(spec=every(1), catchup_window=dur(60)))
    w = World(s)
    w.tick(250)
    assert s.info.missed_catchup_window == 100 and w.starts == []
    assert s.next_wakeup(w.now) == w.now
    w.tick(250)
    w.tick(250)
    assert s.info.missed_catchup_window == 189 and [a.workflow_id for a in w.starts] == [wid(190)]
    assert s.next_wakeup(w.now) == at(251)


def test_start_timeout_follows_the_catchup_window() -> None:
    w = World(new_scheduler(make_schedule(catchup_window=dur(600))))
    w.tick(90)
    assert w.starts[0].timeout == timedelta(seconds=570)
    w2 = World(new_scheduler())
    w2.tick(60)
    assert w2.starts[0].timeout == timedelta(hours=1)


def test_paused_takes_no_action_and_does_not_count_missed() -> None:
    schedule = make_schedule()
    schedule.state.paused = True
    schedule.state.notes = "off"
    s = new_scheduler(schedule)
    w = World(s)
    w.tick(600)
    assert w.starts == [] and s.info.missed_catchup_window == 0
    assert s.next_wakeup(w.now) is None
    token = s.conflict_token
    w.patch(sched.SchedulePatch(unpause="back"))
    assert s.schedule.state.notes == "back" and not s.paused and s.conflict_token == token + 1
    assert w.starts == []  # times while paused are not taken afterwards
    w.tick(660)
    assert [a.workflow_id for a in w.starts] == [wid(660)]
    w.patch(sched.SchedulePatch(pause="maintenance"))
    assert s.paused and s.schedule.state.notes == "maintenance" and s.conflict_token == token + 2
    w.tick(900)
    assert len(w.starts) == 1


@pytest.mark.parametrize(
    ("status", "note"),
    [
        (WS.WORKFLOW_EXECUTION_STATUS_FAILED, f"paused due to workflow failure: {wid(60)}: boom"),
        (WS.WORKFLOW_EXECUTION_STATUS_TIMED_OUT, f"paused due to workflow timeout: {wid(60)}"),
    ],
)
def test_pause_on_failure(status: int, note: str) -> None:
    s = new_scheduler(make_schedule(pause_on_failure=True))
    w = World(s)
    w.tick(60)
    token = s.conflict_token
    w.close(wid(60), status, failure=failure_pb.Failure(message="boom"))
    assert s.paused and s.schedule.state.notes == note and s.conflict_token == token + 1
    assert s.info.recent_actions[0].start_workflow_status == status
    w.tick(600)
    assert len(w.starts) == 1


def test_a_second_report_of_the_same_close_changes_nothing() -> None:
    s = new_scheduler(make_schedule(pause_on_failure=True))
    w = World(s)
    w.tick(60)
    failure = failure_pb.Failure(message="boom")
    w.run(s.closed(wid(60), WS.WORKFLOW_EXECUTION_STATUS_FAILED, None, failure, w.now))
    w.patch(sched.SchedulePatch(unpause="fixed"))
    token = s.conflict_token
    assert s.closed(wid(60), WS.WORKFLOW_EXECUTION_STATUS_FAILED, None, failure, w.now) == []
    assert not s.paused and s.conflict_token == token and s.schedule.state.notes == "fixed"


def test_cancelled_run_does_not_pause_and_no_pause_without_policy() -> None:
    s = new_scheduler(make_schedule(pause_on_failure=True))
    w = World(s)
    w.tick(60)
    w.close(wid(60), WS.WORKFLOW_EXECUTION_STATUS_CANCELED)
    assert not s.paused
    s2 = new_scheduler()
    w2 = World(s2)
    w2.tick(60)
    w2.close(wid(60), WS.WORKFLOW_EXECUTION_STATUS_FAILED, failure=failure_pb.Failure(message="x"))
    assert not s2.paused


def test_limited_actions() -> None:
    schedule = make_schedule(policy=ALLOW_ALL)
    schedule.state.limited_actions = True
    schedule.state.remaining_actions = 2
    s = new_scheduler(schedule)
    assert [t.seconds for t in s.describe(T0).info.future_action_times] == [
        int(at(60).timestamp()), int(at(120).timestamp())
    ]
    w = World(s)
    token = s.conflict_token
    w.tick(60)
    assert s.schedule.state.remaining_actions == 1 and s.conflict_token == token + 1
    w.tick(300)
    assert [a.workflow_id for a in w.starts] == [wid(60), wid(120)]
    assert s.schedule.state.remaining_actions == 0
    wakeup = s.next_wakeup(w.now)
    assert wakeup is not None and wakeup > at(300 + 6 * 86400)  # only the retention timer is left
    # a trigger is not limited
    w.patch(sched.SchedulePatch(trigger_immediately=sched.TriggerImmediatelyRequest()))
    assert len(w.starts) == 3 and w.starts[-1].manual


# ---------------------------------------------------------------- trigger and backfill


def test_trigger_immediately() -> None:
    schedule = make_schedule(policy=SKIP)
    schedule.state.paused = True
    s = new_scheduler(schedule)
    w = World(s)
    w.now = at(30.5)
    trig = sched.TriggerImmediatelyRequest()
    trig.scheduled_time.FromDatetime(at(30.25))
    w.patch(sched.SchedulePatch(trigger_immediately=trig))
    [a] = w.starts
    assert a.manual and a.nominal_time == at(30.25) and a.workflow_id == wid(30)
    assert a.request.workflow_id_reuse_policy == wf_enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE
    assert a.timeout == timedelta(seconds=60)
    # while it runs, a second trigger with the schedule's SKIP is skipped; with ALLOW_ALL it would start
    w.patch(sched.SchedulePatch(trigger_immediately=sched.TriggerImmediatelyRequest()))
    assert len(w.starts) == 1 and s.info.overlap_skipped == 1
    w.now = at(45)
    w.patch(sched.SchedulePatch(trigger_immediately=sched.TriggerImmediatelyRequest(overlap_policy=ALLOW_ALL)))
    assert len(w.starts) == 2 and w.starts[1].overlap_policy == ALLOW_ALL
    assert w.starts[1].request_id != a.request_id


def test_backfill_past_range_inclusive_with_own_policy() -> None:
    s = new_scheduler(make_schedule(policy=SKIP, catchup_window=dur(10)), now=at(100_000))
    w = World(s)
    w.now = at(100_000)
    bf = sched.BackfillRequest(overlap_policy=BUFFER_ALL)
    bf.start_time.FromDatetime(at(60))
    bf.end_time.FromDatetime(at(240))
    w.patch(sched.SchedulePatch(backfill_request=[bf]))
    for t in (60, 120, 180):
        w.close(wid(t), WS.WORKFLOW_EXECUTION_STATUS_COMPLETED)
    assert [a.workflow_id for a in w.starts] == [wid(60), wid(120), wid(180), wid(240)]
    assert all(a.manual for a in w.starts) and s.info.missed_catchup_window == 0


def test_backfill_allow_all_is_paced_per_pass() -> None:
    s = new_scheduler(make_schedule(spec=every(1)), now=at(100_000))
    w = World(s)
    w.now = at(100_000)
    s.schedule.state.paused = True  # backfills run while paused
    bf = sched.BackfillRequest(overlap_policy=ALLOW_ALL)
    bf.start_time.FromDatetime(at(1))
    bf.end_time.FromDatetime(at(25))
    w.patch(sched.SchedulePatch(backfill_request=[bf]))
    assert len(w.starts) == 10
    assert s.next_wakeup(w.now) == w.now + timedelta(seconds=1)
    for i in range(1, 4):
        w.tick(100_000 + i)
    assert [a.nominal_time for a in w.starts] == [at(i) for i in range(1, 26)]
    assert s.next_wakeup(w.now) is None  # paused, backfill done


def test_too_many_backfills_are_dropped() -> None:
    s = new_scheduler()
    bf = sched.BackfillRequest(overlap_policy=SKIP)
    bf.start_time.FromDatetime(at(0))
    bf.end_time.FromDatetime(at(0))
    s.schedule.action.ClearField("start_workflow")
    s.patch(sched.SchedulePatch(backfill_request=[bf] * 1005), T0)
    assert s.info.buffer_dropped == 5


def test_buffer_limit() -> None:
    s = new_scheduler(make_schedule(spec=every(1), policy=BUFFER_ALL))
    w = World(s)
    w.tick(1500)
    assert s.info.buffer_dropped == 500  # 1000 buffered, the first of them started
    assert s.describe(w.now).info.buffer_size == 999


# ---------------------------------------------------------------- results, describe, list


def test_last_completion_result_and_continued_failure() -> None:
    s = new_scheduler(make_schedule(policy=BUFFER_ALL))
    w = World(s)
    w.tick(60)
    w.close(wid(60), WS.WORKFLOW_EXECUTION_STATUS_COMPLETED, result=payloads("1"))
    w.tick(120)
    assert w.starts[1].last_completion_result == payloads("1")
    assert w.starts[1].request.last_completion_result == payloads("1")
    w.close(wid(120), WS.WORKFLOW_EXECUTION_STATUS_FAILED, failure=failure_pb.Failure(message="bad"))
    w.tick(180)
    assert w.starts[2].last_completion_result == payloads("1")  # kept through a failure
    assert w.starts[2].continued_failure == failure_pb.Failure(message="bad")
    w.close(wid(180), WS.WORKFLOW_EXECUTION_STATUS_COMPLETED, result=payloads("3"))
    w.tick(240)
    assert w.starts[3].last_completion_result == payloads("3") and w.starts[3].continued_failure is None


def test_recent_actions_and_running_workflows() -> None:
    s = new_scheduler(make_schedule(policy=SKIP))
    w = World(s)
    for i in range(1, 13):
        w.tick(60 * i)
        w.close(wid(60 * i), WS.WORKFLOW_EXECUTION_STATUS_COMPLETED)
    w.tick(60 * 13)
    desc = s.describe(w.now)
    assert desc.info.action_count == 13 and len(desc.info.recent_actions) == 10
    assert desc.info.recent_actions[-1].start_workflow_result.workflow_id == wid(780)
    assert desc.info.recent_actions[-1].start_workflow_status == WS.WORKFLOW_EXECUTION_STATUS_RUNNING
    assert desc.info.recent_actions[-2].start_workflow_status == WS.WORKFLOW_EXECUTION_STATUS_COMPLETED
    assert desc.info.recent_actions[-1].schedule_time.ToDatetime(UTC) == at(780)
    assert [ex.workflow_id for ex in desc.info.running_workflows] == [wid(780)]
    assert [t.ToDatetime(UTC) for t in desc.info.future_action_times] == [at(60 * i) for i in range(14, 24)]
    info = s.list_info(w.now)
    assert len(info.recent_actions) == 5 and len(info.future_action_times) == 5
    assert info.workflow_type.name == "Job" and info.recent_actions[-1] == desc.info.recent_actions[-1]


def test_describe_spec_form_and_list_limits() -> None:
    spec = sched.ScheduleSpec(
        structured_calendar=[sched.StructuredCalendarSpec(minute=[sched.Range(start=i)]) for i in range(12)],
        timezone_name="UTC", timezone_data=b"x",
    )  # fmt: skip
    s = new_scheduler(make_schedule(spec=spec))
    minute = s.describe(T0).schedule.spec.structured_calendar[0].minute[0]
    assert (minute.start, minute.end, minute.step) == (0, 0, 1)
    info = s.list_info(T0)
    assert len(info.spec.structured_calendar) == 10 and not info.spec.timezone_data


def test_invalid_spec_is_reported_and_takes_no_action() -> None:
    bad = sched.ScheduleSpec(cron_string=["not a cron"])
    s = new_scheduler(make_schedule(spec=bad))
    assert s.info.invalid_schedule_error
    assert s.advance(at(1000)) == [] and s.next_wakeup(at(1000)) is not None  # retention only
    with pytest.raises(InvalidArgument, match="invalid schedule"):
        s.list_matching_times(wsv.ListScheduleMatchingTimesRequest(start_time=T0_ts(), end_time=T0_ts()))


def T0_ts() -> Any:  # noqa: N802
    t = timestamp_pb2.Timestamp()
    t.FromDatetime(T0)
    return t


def test_list_matching_times_matches_spec() -> None:
    s = new_scheduler(make_schedule(spec=every(60, jitter=dur(30))))
    req = wsv.ListScheduleMatchingTimesRequest()
    req.start_time.FromDatetime(T0)
    req.end_time.FromDatetime(at(600))
    got = [t.ToDatetime(UTC) for t in s.list_matching_times(req).start_time]
    spec = compile_spec(s.schedule.spec, jitter_seed("ns-id", "sid"))
    assert got == spec.matching_times(T0, at(600)) and len(got) >= 9
    assert any(t.microsecond or t.second for t in got)  # jittered


def test_jittered_time_fires_at_actual_and_is_named_by_nominal() -> None:
    s = new_scheduler(make_schedule(spec=every(60, jitter=dur(50))))
    spec = compile_spec(s.schedule.spec, jitter_seed("ns-id", "sid"))
    first = spec.get_next_time(T0)
    assert first is not None and first.actual > first.nominal
    w = World(s)
    w.now = first.nominal + (first.actual - first.nominal) / 2
    w.run(s.advance(w.now))  # woken between nominal and actual: not yet, and not lost
    assert w.starts == [] and s.next_wakeup(w.now) == first.actual
    w.tick((first.actual - T0).total_seconds())
    assert [a.workflow_id for a in w.starts] == [wid(60)] and w.starts[0].actual_time == first.actual


def test_start_failure_drops_that_start() -> None:
    s = new_scheduler(make_schedule(policy=BUFFER_ALL))
    w = World(s)
    w.fail_next_start = "x"
    w.tick(120)  # 00:01 fails, 00:02 goes next
    assert [a.workflow_id for a in w.starts] == [wid(60), wid(120)]
    assert s.info.action_count == 1 and w.running_ids() == [wid(120)]


# ---------------------------------------------------------------- update, conflict token, retention


def test_update_applies_from_now_and_checks_the_token() -> None:
    s = new_scheduler()
    w = World(s)
    w.tick(60)
    w.close(wid(60), WS.WORKFLOW_EXECUTION_STATUS_COMPLETED)
    token = s.conflict_token
    w.now = at(95)
    w.run(s.update(make_schedule(spec=every(3600), policy=ALLOW_ALL), w.now, conflict_token=token + 5))
    assert s.last_update_rejected and s.conflict_token == token
    w.run(s.update(make_schedule(spec=every(10), policy=ALLOW_ALL), w.now, conflict_token=token))
    assert not s.last_update_rejected and s.conflict_token == token + 1
    assert s.info.update_time.ToDatetime(UTC) == at(95) and s.schedule.policies.overlap_policy == ALLOW_ALL
    assert len(w.starts) == 1  # the new spec's times before the update are not taken
    w.tick(100)
    assert [a.workflow_id for a in w.starts] == [wid(60), wid(100)]


def test_retention_after_the_last_time() -> None:
    end = T0 + timedelta(seconds=150)
    spec = every(60)
    spec.end_time.FromDatetime(end)
    s = new_scheduler(make_schedule(spec=spec))
    w = World(s)
    w.tick(60)
    w.close(wid(60), WS.WORKFLOW_EXECUTION_STATUS_COMPLETED)
    assert s.next_wakeup(w.now) == at(120)
    w.tick(120)
    w.close(wid(120), WS.WORKFLOW_EXECUTION_STATUS_COMPLETED)
    expiry = at(120) + timedelta(days=7)
    assert s.next_wakeup(w.now) == expiry
    assert not s.finished(expiry - timedelta(seconds=1)) and s.finished(expiry)


def test_continue_as_new_round_trip() -> None:
    s = new_scheduler(make_schedule(policy=BUFFER_ALL))
    w = World(s)
    w.tick(60)
    w.close(wid(60), WS.WORKFLOW_EXECUTION_STATUS_COMPLETED, result=payloads("7"))
    w.tick(240)
    assert s.should_continue_as_new(suggested=True)
    assert not s.should_continue_as_new()
    raw = s.to_args().SerializeToString()
    r = Scheduler.restore(raw, w.now)
    assert r.snapshot() == s.snapshot() and r.info == s.info and r.schedule == s.schedule
    assert r.conflict_token == s.conflict_token
    w2 = World(r)
    w2.runs = w.runs
    w2.tick(241)
    assert w2.watched == {wid(120)}  # the new run watches what the old one tracked
    w2.close(wid(120), WS.WORKFLOW_EXECUTION_STATUS_COMPLETED)
    assert [a.workflow_id for a in w2.starts] == [wid(180)]
    assert w2.starts[0].last_completion_result == payloads("7")


def test_not_continue_as_new_while_a_start_is_out() -> None:
    s = new_scheduler()
    [start] = [a for a in s.advance(at(60)) if isinstance(a, StartWorkflow)]
    assert not s.should_continue_as_new(suggested=True)
    s.started(start.request_id, "r", at(60))
    assert s.should_continue_as_new(suggested=True)


def test_initial_patch_triggers_on_the_first_pass() -> None:
    args = Scheduler("ns", "ns-id", "sid", make_schedule(), None, None, T0).to_args()
    args.initial_patch.CopyFrom(sched.SchedulePatch(trigger_immediately=sched.TriggerImmediatelyRequest()))
    args.create_time.FromDatetime(T0)
    s = Scheduler.from_args(args, at(1))
    w = World(s)
    w.tick(1)
    assert [a.manual for a in w.starts] == [True] and w.starts[0].nominal_time == at(1)
    assert s.info.create_time.ToDatetime(UTC) == T0
