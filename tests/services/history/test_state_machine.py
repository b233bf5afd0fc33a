"""Unit tests of the sans-IO engine: MutableState + workflow_task/commands/activities, no persistence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from temporalio.api.command.v1 import message_pb2 as command_pb2
from temporalio.api.common.v1 import message_pb2 as common_pb2
from temporalio.api.enums.v1 import command_type_pb2, failed_cause_pb2
from temporalio.api.enums.v1 import workflow_pb2 as wf_enums
from temporalio.api.failure.v1 import message_pb2 as failure_pb2
from temporalio.api.taskqueue.v1 import message_pb2 as taskqueue_pb2
from temporalio.api.workflowservice.v1 import request_response_pb2 as ws

from server.gen.durata.internal.history.v1 import state_pb2
from server.persistence.interface import TaskCategory
from services.history import activities, commands, workflow_ops
from services.history.config import HistoryConfig
from services.history.mutable_state import MutableState
from services.history.workflow_task import (
    complete_workflow_task,
    fail_workflow_task,
    workflow_task_timer_fired,
)

from .helpers import cmd_activity, cmd_complete, cmd_timer, dur, names

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T = state_pb2.HistoryTaskType


class Run:
    """Carries the record between 'transactions' and accumulates the full history, like the shard would."""

    def __init__(self, **start_kw: object) -> None:
        req = ws.StartWorkflowExecutionRequest(
            workflow_id="wf", workflow_type=common_pb2.WorkflowType(name="W"),
            task_queue=taskqueue_pb2.TaskQueue(name="tq"), request_id="r", **start_kw,  # type: ignore[arg-type]
        )
        ms = workflow_ops.new_run(req, "ns", "run-1", T0, HistoryConfig(), timedelta(days=1))
        self.now = T0
        self.record = ms.record
        self.events = list(ms.new_events)
        self.tasks = list(ms.tasks)

    def tx(self, fn, advance: float = 0.0):  # type: ignore[no-untyped-def]
        self.now += timedelta(seconds=advance)
        ms = MutableState(self.record, self.now)
        result = fn(ms)
        self.events.extend(ms.new_events)
        self.tasks = list(ms.tasks)
        return result

    def start_wft(self) -> None:
        self.tx(lambda ms: ms.start_workflow_task("req", "worker"))

    def complete(self, cmds, **kw):  # type: ignore[no-untyped-def]
        req = ws.RespondWorkflowTaskCompletedRequest(commands=cmds, identity="worker", **kw)
        return self.tx(lambda ms: complete_workflow_task(ms, req))

    def types(self) -> list[str]:
        assert [e.event_id for e in self.events] == list(range(1, len(self.events) + 1))
        return names(self.events)

    def task(self, type_: int) -> state_pb2.HistoryTaskInfo:
        return next(t.info for t in self.tasks if t.info.type == type_)


def test_start_activity_complete_workflow() -> None:
    run = Run()
    assert run.types() == ["WORKFLOW_EXECUTION_STARTED", "WORKFLOW_TASK_SCHEDULED"]
    assert {t.category for t in run.tasks} == {TaskCategory.TRANSFER, TaskCategory.VISIBILITY}
    run.start_wft()
    run.complete([cmd_activity("a")])
    info = run.record.activities[5]
    assert run.task(T.HISTORY_TASK_TYPE_ACTIVITY_TASK).event_id == 5
    run.tx(lambda ms: activities.start_activity(ms, ms.record.activities[5], "r1", "aw"), advance=1)
    assert run.types()[-1] == "ACTIVITY_TASK_SCHEDULED"  # lazy Started: nothing written yet
    run.tx(lambda ms: activities.complete_activity(ms, ms.record.activities[5], None, "aw"), advance=1)
    assert run.types()[-3:] == ["ACTIVITY_TASK_STARTED", "ACTIVITY_TASK_COMPLETED", "WORKFLOW_TASK_SCHEDULED"]
    assert info.activity_id == "a"
    run.start_wft()
    result = run.complete([cmd_complete()])
    assert result.closed and run.record.status == wf_enums.WORKFLOW_EXECUTION_STATUS_COMPLETED
    assert run.types()[-1] == "WORKFLOW_EXECUTION_COMPLETED"


def test_timer_and_cancel_of_buffered_fire() -> None:
    run = Run()
    run.start_wft()
    run.complete([cmd_timer("1", 5)])
    timer_task = run.task(T.HISTORY_TASK_TYPE_USER_TIMER)
    run.tx(lambda ms: commands.timer_fired(ms, timer_task), advance=5)
    assert run.types()[-2:] == ["TIMER_FIRED", "WORKFLOW_TASK_SCHEDULED"]
    run.tx(lambda ms: commands.timer_fired(ms, timer_task))  # at-least-once: second delivery is a no-op
    assert run.types()[-1] == "WORKFLOW_TASK_SCHEDULED"
    # A timer that fires while a WFT is running is buffered; cancelling it in that WFT drops the fire.
    run.start_wft()
    run.complete([cmd_timer("2", 5)])
    second = run.task(T.HISTORY_TASK_TYPE_USER_TIMER)
    run.tx(lambda ms: ms.schedule_workflow_task(1))
    run.start_wft()
    run.tx(lambda ms: commands.timer_fired(ms, second), advance=5)
    assert len(run.record.buffered_events) == 1
    cancel = command_pb2.Command(
        command_type=command_type_pb2.COMMAND_TYPE_CANCEL_TIMER,
        cancel_timer_command_attributes=command_pb2.CancelTimerCommandAttributes(timer_id="2"),
    )
    res = run.complete([cancel])
    assert res.error is None and "TIMER_FIRED" not in run.types()[-3:]
    assert run.types()[-1] == "TIMER_CANCELED" and not run.record.buffered_events


def test_signal_buffered_while_started_and_unhandled_command() -> None:
    run = Run()
    run.start_wft()
    sig = ws.SignalWorkflowExecutionRequest(signal_name="s", request_id="x")
    run.tx(lambda ms: workflow_ops.signal(ms, sig))
    assert len(run.record.buffered_events) == 1 and run.types()[-1] == "WORKFLOW_TASK_STARTED"
    res = run.complete([cmd_complete()])
    assert res.error is not None and res.error.message == "UnhandledCommand"
    assert run.types()[-3:] == ["WORKFLOW_TASK_FAILED", "WORKFLOW_EXECUTION_SIGNALED", "WORKFLOW_TASK_SCHEDULED"]
    assert run.record.workflow_task.attempt == 1


def test_transient_wft_after_failure_and_conversion_on_new_event() -> None:
    run = Run()
    run.start_wft()
    req = ws.RespondWorkflowTaskFailedRequest(cause=failed_cause_pb2.WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR, failure=failure_pb2.Failure(message="x"))
    run.tx(lambda ms: fail_workflow_task(ms, req))
    wt = run.record.workflow_task
    assert wt.transient and wt.attempt == 2 and wt.scheduled_event_id == run.record.next_event_id
    assert run.types()[-1] == "WORKFLOW_TASK_FAILED"
    # a signal before the transient WFT starts converts it to a normal attempt-1 WFT
    run.tx(lambda ms: workflow_ops.signal(ms, ws.SignalWorkflowExecutionRequest(signal_name="s")))
    assert run.types()[-2:] == ["WORKFLOW_EXECUTION_SIGNALED", "WORKFLOW_TASK_SCHEDULED"]
    assert not run.record.workflow_task.transient and run.record.workflow_task.attempt == 1


def test_wft_timeout_increments_attempt_and_stale_timer_ignored() -> None:
    run = Run()
    run.start_wft()
    timeout_task = run.task(T.HISTORY_TASK_TYPE_WORKFLOW_TASK_TIMEOUT)
    run.tx(lambda ms: workflow_task_timer_fired(ms, timeout_task), advance=10)
    assert run.types()[-1] == "WORKFLOW_TASK_TIMED_OUT" and run.record.workflow_task.attempt == 2
    n = len(run.events)
    run.tx(lambda ms: workflow_task_timer_fired(ms, timeout_task))
    assert len(run.events) == n


def test_duplicate_timer_id_fails_wft_and_discards_effects() -> None:
    run = Run()
    run.start_wft()
    res = run.complete([cmd_activity("a"), cmd_timer("t", 1), cmd_timer("t", 2)])
    assert res.error.cause == failed_cause_pb2.WORKFLOW_TASK_FAILED_CAUSE_START_TIMER_DUPLICATE_ID
    assert "ACTIVITY_TASK_SCHEDULED" not in run.types() and not run.record.activities
    assert run.types()[-1] == "WORKFLOW_TASK_FAILED"


def test_activity_timeout_normalization_and_retry_backoff() -> None:
    run = Run(workflow_run_timeout=dur(100))
    run.start_wft()
    cmd = cmd_activity("a", start_to_close=50, schedule_to_close_timeout=dur(20), heartbeat_timeout=dur(30))
    run.complete([cmd])
    info = run.record.activities[5]
    assert info.start_to_close_timeout.seconds == 20 and info.schedule_to_start_timeout.seconds == 20
    assert info.heartbeat_timeout.seconds == 20 and info.retry_policy.backoff_coefficient == 2.0
    run.tx(lambda ms: activities.start_activity(ms, ms.record.activities[5], "r", "w"))
    retried = run.tx(lambda ms: activities.fail_activity(ms, ms.record.activities[5], failure_pb2.Failure(message="f"), "w", None), advance=1)
    assert retried and run.record.activities[5].attempt == 2
    retry_timer = run.tasks[0]
    assert retry_timer.info.type == T.HISTORY_TASK_TYPE_ACTIVITY_RETRY_TIMER and retry_timer.visibility_time == T0 + timedelta(seconds=2)
    # non-retryable failure ends it
    run.tx(lambda ms: activities.retry_timer_fired(ms, ms.record.activities[5]), advance=1)
    run.tx(lambda ms: activities.start_activity(ms, ms.record.activities[5], "r2", "w"))
    nr = failure_pb2.Failure(message="nr", application_failure_info=failure_pb2.ApplicationFailureInfo(non_retryable=True))
    assert not run.tx(lambda ms: activities.fail_activity(ms, ms.record.activities[5], nr, "w", None))
    assert run.types()[-3:] == ["ACTIVITY_TASK_STARTED", "ACTIVITY_TASK_FAILED", "WORKFLOW_TASK_SCHEDULED"]
    started = run.events[-3].activity_task_started_event_attributes
    assert started.attempt == 2 and started.last_failure.message == "f"


def test_activity_schedule_to_start_timeout_not_retried() -> None:
    run = Run()
    run.start_wft()
    run.complete([cmd_activity("a", schedule_to_start_timeout=dur(3))])
    s2s = next(t.info for t in run.tasks if t.info.timeout_type == wf_enums.TIMEOUT_TYPE_SCHEDULE_TO_START)
    run.tx(lambda ms: activities.activity_timer_fired(ms, s2s), advance=3)
    assert run.types()[-2:] == ["ACTIVITY_TASK_TIMED_OUT", "WORKFLOW_TASK_SCHEDULED"]
    ev = run.events[-2].activity_task_timed_out_event_attributes
    assert ev.retry_state == wf_enums.RETRY_STATE_TIMEOUT and ev.started_event_id == 0


def test_activity_result_buffered_during_started_wft() -> None:
    run = Run()
    run.start_wft()
    run.complete([cmd_activity("a")])
    run.tx(lambda ms: activities.start_activity(ms, ms.record.activities[5], "r", "w"))
    run.tx(lambda ms: ms.schedule_workflow_task(1))  # e.g. a signal's WFT
    run.start_wft()
    run.tx(lambda ms: activities.complete_activity(ms, ms.record.activities[5], None, "w"))
    assert len(run.record.buffered_events) == 2
    run.complete([], force_create_new_workflow_task=False)
    tail = run.events[-3:]
    assert names(tail) == ["ACTIVITY_TASK_STARTED", "ACTIVITY_TASK_COMPLETED", "WORKFLOW_TASK_SCHEDULED"]
    assert tail[1].activity_task_completed_event_attributes.started_event_id == tail[0].event_id


def test_upsert_search_attributes_and_memo_merge() -> None:
    run = Run()
    run.start_wft()
    sa = common_pb2.SearchAttributes(indexed_fields={"TemporalChangeVersion": common_pb2.Payload(metadata={"type": b"KeywordList"}, data=b'["p-1"]')})
    memo = common_pb2.Memo(fields={"k": common_pb2.Payload(data=b'"v"')})
    cmds = [
        command_pb2.Command(
            command_type=command_type_pb2.COMMAND_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
            upsert_workflow_search_attributes_command_attributes=command_pb2.UpsertWorkflowSearchAttributesCommandAttributes(search_attributes=sa),
        ),
        command_pb2.Command(
            command_type=command_type_pb2.COMMAND_TYPE_MODIFY_WORKFLOW_PROPERTIES,
            modify_workflow_properties_command_attributes=command_pb2.ModifyWorkflowPropertiesCommandAttributes(upserted_memo=memo),
        ),
    ]
    res = run.complete(cmds)
    assert res.error is None
    assert "TemporalChangeVersion" in run.record.search_attributes.indexed_fields and "k" in run.record.memo.fields
    assert run.types()[-2:] == ["UPSERT_WORKFLOW_SEARCH_ATTRIBUTES", "WORKFLOW_PROPERTIES_MODIFIED"]


def test_unsupported_command_fails_wft_with_clear_message() -> None:
    run = Run()
    run.start_wft()
    cmd = command_pb2.Command(command_type=command_type_pb2.COMMAND_TYPE_SCHEDULE_NEXUS_OPERATION)
    res = run.complete([cmd])
    assert "not supported" in res.error.message
    assert run.events[-1].workflow_task_failed_event_attributes.cause == failed_cause_pb2.WORKFLOW_TASK_FAILED_CAUSE_FEATURE_DISABLED


def test_start_delay_defers_first_wft() -> None:
    run = Run(workflow_start_delay=dur(60))
    assert run.types() == ["WORKFLOW_EXECUTION_STARTED"]
    assert run.events[0].workflow_execution_started_event_attributes.first_workflow_task_backoff.seconds == 60
    run.tx(workflow_ops.backoff_timer_fired, advance=60)
    assert run.types() == ["WORKFLOW_EXECUTION_STARTED", "WORKFLOW_TASK_SCHEDULED"]


def test_bad_completion_on_later_attempt_changes_nothing() -> None:
    run = Run()
    run.start_wft()
    run.tx(lambda ms: fail_workflow_task(ms, ws.RespondWorkflowTaskFailedRequest(cause=failed_cause_pb2.WORKFLOW_TASK_FAILED_CAUSE_WORKFLOW_WORKER_UNHANDLED_FAILURE)))
    run.start_wft()  # transient attempt 2
    before = run.record.SerializeToString()
    res = run.complete([cmd_timer("t", 1), cmd_timer("t", 1)])
    assert res.error is not None and run.record.SerializeToString() == before and not run.tasks
