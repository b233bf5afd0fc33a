"""Properties of the scheduler core, with Hypothesis: every matching time once and in order (ALLOW_ALL), no
nominal time started twice across continue-as-new, every due time accounted for, invariants under any mix of
requests."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.api.failure.v1 import message_pb2 as failure_pb
from temporalio.api.schedule.v1 import message_pb2 as sched

from services.internal_worker.schedules.scheduler import Scheduler
from services.internal_worker.schedules.spec import compile_spec, jitter_seed

from .scheduler_world import (
    ALL_POLICIES,
    ALLOW_ALL,
    T0,
    WS,
    World,
    at,
    dur,
    every,
    make_schedule,
    new_scheduler,
    payloads,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    period=st.sampled_from([1, 7, 60]),
    jitter=st.sampled_from([0, 3]),
    steps=st.lists(st.floats(min_value=0.1, max_value=40), min_size=1, max_size=25),
)
def test_allow_all_starts_every_matching_time_once_in_order(period: int, jitter: int, steps: list[float]) -> None:
    s = new_scheduler(make_schedule(spec=every(period, jitter=dur(jitter)), policy=ALLOW_ALL))
    w = World(s)
    t = 0.0
    for step in steps:
        t += step
        w.tick(t)
    expected = compile_spec(s.schedule.spec, jitter_seed("ns-id", "sid")).matching_times(T0, at(t))
    assert [a.actual_time for a in w.starts] == expected
    assert len({a.workflow_id for a in w.starts}) == len(w.starts)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    policy=st.sampled_from(ALL_POLICIES),
    events=st.lists(
        st.tuples(st.floats(min_value=0.5, max_value=150), st.sampled_from(["tick", "close", "restore", "silent"])),
        min_size=1, max_size=30,
    ),
)  # fmt: skip
def test_no_time_starts_twice_and_every_time_is_accounted(policy: int, events: list[tuple[float, str]]) -> None:
    schedule = make_schedule(spec=every(30), policy=policy, catchup_window=dur(120))
    s = new_scheduler(schedule)
    w = World(s)
    t = 0.0
    replaced = 0
    for step, kind in events:
        t += step
        w.now = at(t)
        running = [wf for wf, r in w.runs.items() if r["status"] == WS.WORKFLOW_EXECUTION_STATUS_RUNNING]
        if kind == "close" and running:
            w.close(running[0], WS.WORKFLOW_EXECUTION_STATUS_COMPLETED, result=payloads(str(t)))
        elif kind == "silent" and running:
            w.silent_close(running[0])
        elif kind == "restore" and s.should_continue_as_new(suggested=True):
            replaced += s.overlap_replaced
            s = Scheduler.restore(s.to_args().SerializeToString(), w.now)
            w.s = s
            w.run(s.advance(w.now))
            assert w.watched >= {ex.workflow_id for ex in s.info.running_workflows}
        w.tick(t)
    replaced += s.overlap_replaced
    scheduled = [a.workflow_id for a in w.starts if not a.manual]
    assert len(scheduled) == len(set(scheduled))
    due = len(compile_spec(s.schedule.spec).matching_times(T0, at(t)))
    info = s.info
    buffered = s.describe(w.now).info.buffer_size
    accounted = info.action_count + info.overlap_skipped + info.missed_catchup_window + info.buffer_dropped
    assert accounted + buffered + replaced == due


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    policy=st.sampled_from(ALL_POLICIES),
    events=st.lists(
        st.tuples(
            st.floats(min_value=0.5, max_value=100),
            st.sampled_from(["tick", "close", "fail", "restore", "pause", "unpause", "trigger", "backfill", "update"]),
        ),
        min_size=1, max_size=30,
    ),
)  # fmt: skip
def test_invariants_under_any_mix_of_requests(policy: int, events: list[tuple[float, str]]) -> None:
    """A nominal time never starts twice, at most one tracked run at a time, nothing half done when the core
    agrees to continue-as-new, and a paused schedule takes no scheduled action."""
    s = new_scheduler(make_schedule(spec=every(20), policy=policy, pause_on_failure=True))
    w = World(s)
    t = 0.0
    for step, kind in events:
        t += step
        w.now = at(t)
        running = [wf for wf, r in w.runs.items() if r["status"] == WS.WORKFLOW_EXECUTION_STATUS_RUNNING]
        scheduled_before = sum(1 for a in w.starts if not a.manual)
        if kind in ("close", "fail") and running:
            status = WS.WORKFLOW_EXECUTION_STATUS_COMPLETED if kind == "close" else WS.WORKFLOW_EXECUTION_STATUS_FAILED
            w.close(running[0], status, failure=failure_pb.Failure(message="x") if kind == "fail" else None)
        elif kind == "restore" and s.should_continue_as_new(suggested=True):
            s = Scheduler.restore(s.to_args().SerializeToString(), w.now)
            w.s = s
        elif kind in ("pause", "unpause"):
            w.patch(sched.SchedulePatch(**{kind: kind}))  # type: ignore[arg-type]
        elif kind == "trigger":
            w.patch(sched.SchedulePatch(trigger_immediately=sched.TriggerImmediatelyRequest()))
        elif kind == "backfill":
            bf = sched.BackfillRequest(overlap_policy=policy)  # type: ignore[arg-type]
            bf.start_time.FromDatetime(at(max(t - 100, 0)))
            bf.end_time.FromDatetime(at(t))
            w.patch(sched.SchedulePatch(backfill_request=[bf]))
        elif kind == "update":
            w.run(s.update(make_schedule(spec=every(15), policy=policy, pause_on_failure=True), w.now))
        paused = s.paused
        w.tick(t)
        if paused and s.paused:
            assert sum(1 for a in w.starts if not a.manual) == scheduled_before
        if policy != ALLOW_ALL:
            assert len(s.info.running_workflows) <= 1
        assert len(s.info.recent_actions) <= 10
    scheduled = [a.workflow_id for a in w.starts if not a.manual]
    assert len(scheduled) == len(set(scheduled))
    assert s.info.action_count == len(w.succeeded) == len(set(w.succeeded))
