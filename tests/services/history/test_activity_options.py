"""UpdateActivityOptions, sans-IO: merge by mask, Temporal's errors, the rescheduling of a waiting attempt, a
running attempt's timers at the new deadlines (and stale timers re-checking), restore_original."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from temporalio.api.activity.v1 import message_pb2 as activity_pb2
from temporalio.api.common.v1 import message_pb2 as common_pb2
from temporalio.api.enums.v1 import workflow_pb2 as wf_enums
from temporalio.api.failure.v1 import message_pb2 as failure_pb2
from temporalio.api.taskqueue.v1 import message_pb2 as taskqueue_pb2
from temporalio.api.workflowservice.v1 import request_response_pb2 as ws

from server.common.errors import InvalidArgument, NotFound
from server.gen.durata.internal.history.v1 import state_pb2
from services.history import activities, workflow_ops
from services.history.api import activity_options as ao
from services.history.api import activity_pause
from services.history.workflow_task import complete_workflow_task

from .helpers import cmd_activity, dur
from .test_state_machine import Run as StateMachineRun

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T = state_pb2.HistoryTaskType
TO = wf_enums.TimeoutType


class Run(StateMachineRun):
    """The state-machine tests' run, plus scheduling by commands and the activity at hand."""

    def schedule(self, *cmds) -> None:  # type: ignore[no-untyped-def]
        self.tx(lambda ms: ms.start_workflow_task("req", "worker"))
        req = ws.RespondWorkflowTaskCompletedRequest(commands=list(cmds), identity="worker")
        self.tx(lambda ms: complete_workflow_task(ms, req))

    def act(self, sid: int = 5) -> state_pb2.ActivityInfo:
        return self.record.activities[sid]


def _req(paths: list[str] | None, opts: activity_pb2.ActivityOptions | None = None, **kw: object) -> ws.UpdateActivityOptionsRequest:
    if "id" not in kw and "type" not in kw and "match_all" not in kw:
        kw["id"] = "a"
    return ws.UpdateActivityOptionsRequest(
        namespace="default", activity_options=opts, update_mask=FieldMask(paths=paths) if paths is not None else None, **kw,  # type: ignore[arg-type]
    )


def _slow_retry() -> Run:
    run = Run()
    rp = common_pb2.RetryPolicy(initial_interval=dur(3600))
    run.schedule(cmd_activity("a", start_to_close=60, retry_policy=rp))
    run.tx(lambda ms: activities.start_activity(ms, ms.record.activities[5], "r", "w"))
    run.tx(lambda ms: activities.fail_activity(ms, ms.record.activities[5], failure_pb2.Failure(message="f"), "w", None), advance=1)
    assert run.act().attempt == 2
    return run


def test_parse_mask_snake_and_camel() -> None:
    assert ao.parse_mask(["retry_policy.maximum_attempts", "startToCloseTimeout", "task_queue.name"]) == {
        "retryPolicy.maximumAttempts", "startToCloseTimeout", "taskQueue.name"}


def test_shorter_retry_interval_reschedules_waiting_attempt() -> None:
    run = _slow_retry()
    stamp = run.act().stamp
    opts = activity_pb2.ActivityOptions(retry_policy=common_pb2.RetryPolicy(initial_interval=dur(1)))
    out = run.tx(lambda ms: ao.update(ms, _req(["retry_policy.initial_interval"], opts)), advance=5)
    info = run.act()
    assert out.retry_policy.initial_interval.seconds == 1 and out.start_to_close_timeout.seconds == 60
    assert info.retry_policy.initial_interval.seconds == 1 and info.stamp != stamp
    retry = [t for t in run.tasks if t.info.type == T.HISTORY_TASK_TYPE_ACTIVITY_RETRY_TIMER]
    # Temporal's GetNextScheduledTime: last attempt's end + initial * coefficient^(attempt-1) = T0+1s + 2s
    assert len(retry) == 1 and retry[0].info.stamp == info.stamp and retry[0].visibility_time == T0 + timedelta(seconds=3)
    assert len(run.events) == 5  # the update wrote no event (the last is ActivityTaskScheduled)


def test_running_attempt_keeps_stamp_and_gets_new_deadline() -> None:
    run = Run()
    run.schedule(cmd_activity("a", start_to_close=10))
    run.tx(lambda ms: activities.start_activity(ms, ms.record.activities[5], "r", "w"))
    old_timer = next(t.info for t in run.tasks if t.info.timeout_type == TO.TIMEOUT_TYPE_START_TO_CLOSE)
    stamp = run.act().stamp
    opts = activity_pb2.ActivityOptions(start_to_close_timeout=dur(100))
    run.tx(lambda ms: ao.update(ms, _req(["start_to_close_timeout"], opts)), advance=1)
    assert run.act().stamp == stamp and run.act().start_to_close_timeout.seconds == 100
    new = [t for t in run.tasks if t.info.timeout_type == TO.TIMEOUT_TYPE_START_TO_CLOSE]
    assert [t.visibility_time for t in new] == [T0 + timedelta(seconds=100)]
    # the old 10 s timer fires: the stored deadline is later, so it only re-arms
    run.tx(lambda ms: activities.activity_timer_fired(ms, old_timer), advance=9)
    assert 5 in run.record.activities and run.act().attempt == 1
    assert [t.visibility_time for t in run.tasks] == [T0 + timedelta(seconds=100)]
    # shortened again: the timer at the new deadline times the attempt out
    opts = activity_pb2.ActivityOptions(start_to_close_timeout=dur(12))
    run.tx(lambda ms: ao.update(ms, _req(["start_to_close_timeout"], opts)))
    short = next(t.info for t in run.tasks if t.info.timeout_type == TO.TIMEOUT_TYPE_START_TO_CLOSE)
    run.tx(lambda ms: activities.activity_timer_fired(ms, short), advance=2)
    assert run.act().attempt == 2  # timed out by start-to-close, retried
    assert run.act().last_failure.timeout_failure_info.timeout_type == TO.TIMEOUT_TYPE_START_TO_CLOSE


def test_errors() -> None:
    run = Run()
    run.schedule(cmd_activity("a"))
    opts = activity_pb2.ActivityOptions()
    cases = [
        (_req(["start_to_close_timeout"]), "ActivityOptions are not provided"),
        (_req(None, opts), "UpdateMask is not provided"),
        (_req(["task_queue.name"], opts), "TaskQueue is not provided"),
        (_req(["retry_policy.maximum_attempts"], opts), "RetryPolicy is not provided"),
        (_req(["priority.fairness_key"], opts), "Priority is not provided"),
        (_req(["start_to_close_timeout"], opts),
         "A valid StartToClose or ScheduleToCloseTimeout is not set on ScheduleActivityTaskCommand."),
        (_req(["retry_policy.backoff_coefficient"], activity_pb2.ActivityOptions(retry_policy=common_pb2.RetryPolicy(backoff_coefficient=0.5))),
         "BackoffCoefficient cannot be less than 1 on retry policy."),
        (_req(["task_queue.name"], activity_pb2.ActivityOptions(task_queue=taskqueue_pb2.TaskQueue())), "missing task queue name"),
    ]
    for req, message in cases:
        with pytest.raises(InvalidArgument) as err:
            run.tx(lambda ms, r=req: ao.update(ms, r))
        assert err.value.message == message
    with pytest.raises(NotFound):
        run.tx(lambda ms: ao.update(ms, _req(["x"], opts, type="other")))
    with pytest.raises(NotFound):
        run.tx(lambda ms: ao.update(ms, _req(["x"], opts, id="other")))
    # unknown paths are ignored; nothing failed above changed the activity
    out = run.tx(lambda ms: ao.update(ms, _req(["no_such_field"], opts)))
    assert out.start_to_close_timeout.seconds == 10 and run.act().task_queue == "tq"


def test_by_type_and_match_all_and_priority() -> None:
    run = Run()
    run.schedule(cmd_activity("a"), cmd_activity("b"))
    ids = sorted(run.record.activities)
    opts = activity_pb2.ActivityOptions(task_queue=taskqueue_pb2.TaskQueue(name="other"), priority=common_pb2.Priority(priority_key=2))
    run.tx(lambda ms: ao.update(ms, _req(["task_queue.name", "priority.priority_key"], opts, type="act")))
    assert [run.record.activities[i].task_queue for i in ids] == ["other", "other"]
    assert [run.record.activities[i].priority.priority_key for i in ids] == [2, 2]
    dispatched = [t for t in run.tasks if t.info.type == T.HISTORY_TASK_TYPE_ACTIVITY_RETRY_TIMER]
    assert len(dispatched) == 2
    run.tx(lambda ms: ao.update(ms, _req(["heartbeat_timeout"], activity_pb2.ActivityOptions(heartbeat_timeout=dur(3)), match_all=True)))
    assert [run.record.activities[i].heartbeat_timeout.seconds for i in ids] == [3, 3]


def test_paused_activity_is_not_rescheduled() -> None:
    run = _slow_retry()
    run.tx(lambda ms: activity_pause.pause(ms, ws.PauseActivityRequest(id="a", request_id="p")))
    opts = activity_pb2.ActivityOptions(retry_policy=common_pb2.RetryPolicy(initial_interval=dur(1)))
    run.tx(lambda ms: ao.update(ms, _req(["retry_policy.initial_interval"], opts)))
    assert not [t for t in run.tasks if t.info.type == T.HISTORY_TASK_TYPE_ACTIVITY_RETRY_TIMER]


def test_restore_original_options() -> None:
    run = Run()
    run.schedule(cmd_activity("a", start_to_close=10))
    scheduled = {5: run.events[4].activity_task_scheduled_event_attributes}
    opts = activity_pb2.ActivityOptions(start_to_close_timeout=dur(99), task_queue=taskqueue_pb2.TaskQueue(name="q2"))
    run.tx(lambda ms: ao.update(ms, _req(["start_to_close_timeout", "task_queue.name"], opts)))
    assert run.act().task_queue == "q2"
    out = run.tx(lambda ms: ao.restore(ms, [ms.record.activities[5]], scheduled))
    assert out is not None and out.start_to_close_timeout.seconds == 10 and out.task_queue.name == "tq"
    assert run.act().start_to_close_timeout.seconds == 10 and run.act().task_queue == "tq"
    # ResetActivity(restore_original_options) uses the same event
    run.tx(lambda ms: ao.update(ms, _req(["start_to_close_timeout"], opts)))
    run.tx(lambda ms: activity_pause.reset(ms, ws.ResetActivityRequest(id="a", restore_original_options=True), scheduled))
    assert run.act().start_to_close_timeout.seconds == 10


def test_closed_run() -> None:
    run = Run()
    run.schedule(cmd_activity("a"))
    run.tx(lambda ms: workflow_ops.terminate(ms, "x", None, "op"))
    with pytest.raises(NotFound) as err:
        run.tx(lambda ms: ao.update(ms, _req(["x"], activity_pb2.ActivityOptions())))
    assert err.value.message == "workflow execution already completed"


def test_extreme_backoff_is_capped() -> None:
    run = _slow_retry()
    opts = activity_pb2.ActivityOptions(retry_policy=common_pb2.RetryPolicy(backoff_coefficient=1e308))
    run.tx(lambda ms: ao.update(ms, _req(["retry_policy.backoff_coefficient"], opts)))
    retry = next(t for t in run.tasks if t.info.type == T.HISTORY_TASK_TYPE_ACTIVITY_RETRY_TIMER)
    assert retry.visibility_time == T0 + timedelta(seconds=1) + timedelta(hours=100)  # the maximum interval


def test_whole_retry_policy_replaced() -> None:
    run = _slow_retry()
    opts = activity_pb2.ActivityOptions(retry_policy=common_pb2.RetryPolicy(maximum_attempts=5))
    out = run.tx(lambda ms: ao.update(ms, _req(["retry_policy"], opts)))
    assert out.retry_policy.maximum_attempts == 5
    rp = run.act().retry_policy
    assert rp.maximum_attempts == 5 and rp.initial_interval.seconds == 1 and rp.backoff_coefficient == 2.0
    bad = activity_pb2.ActivityOptions(retry_policy=common_pb2.RetryPolicy(backoff_coefficient=0.5))
    with pytest.raises(InvalidArgument) as err:
        run.tx(lambda ms: ao.update(ms, _req(["retry_policy"], bad)))
    assert err.value.message == "BackoffCoefficient cannot be less than 1 on retry policy."
