"""Speculative workflow tasks (an update's own WFT): nothing is written unless the worker accepts the update or
returns commands, so a rejected update leaves the history as it was."""

from __future__ import annotations

from temporalio.api.enums.v1 import failed_cause_pb2
from temporalio.api.failure.v1 import message_pb2 as failure_pb2
from temporalio.api.history.v1 import message_pb2 as history_pb2
from temporalio.api.update.v1 import message_pb2 as update_pb2
from temporalio.api.workflowservice.v1 import request_response_pb2 as ws

from services.history.mutable_state import MutableState
from services.history.workflow_task import complete_workflow_task

from .helpers import cmd_timer
from .test_features_unit import msg, proto_cmd
from .test_state_machine import Run

CAPS = ws.RespondWorkflowTaskCompletedRequest.Capabilities(discard_speculative_workflow_task_with_events=True)


def idle_run() -> Run:
    """A run whose first WFT completed with no commands: nothing pending, no WFT."""
    run = Run()
    run.start_wft()
    run.complete([])
    assert run.types()[-1] == "WORKFLOW_TASK_COMPLETED" and not run.record.workflow_task.scheduled_event_id
    return run


def speculate(run: Run) -> None:
    run.tx(lambda ms: ms.ensure_workflow_task(speculative=True))
    run.start_wft()


def rejection(uid: str = "u1") -> ws.RespondWorkflowTaskCompletedRequest:
    body = update_pb2.Rejection(failure=failure_pb2.Failure(message="invalid"))
    return ws.RespondWorkflowTaskCompletedRequest(messages=[msg("x", uid, body)], identity="w", capabilities=CAPS)


def test_rejected_update_leaves_history_unchanged() -> None:
    run = idle_run()
    before = run.types()
    next_id = run.record.next_event_id
    speculate(run)
    wt = run.record.workflow_task
    assert wt.speculative and wt.scheduled_event_id == next_id and wt.started_event_id == next_id + 1
    synthetic = run.tx(lambda ms: ms.transient_events())
    assert [e.event_id for e in synthetic] == [next_id, next_id + 1]
    res = run.tx(lambda ms: complete_workflow_task(ms, rejection(), None, {}, False))
    assert res.error is None and not res.new_wft_scheduled
    assert res.reset_history_event_id == run.record.last_completed_wft_started_event_id == next_id - 2
    assert run.types() == before and run.record.next_event_id == next_id
    assert not run.record.workflow_task.scheduled_event_id
    assert [(e.update_id, e.outcome.failure.message) for e in res.update_effects] == [("u1", "invalid")]  # type: ignore[union-attr]


def test_accepted_update_writes_the_wft_events_at_the_promised_ids() -> None:
    run = idle_run()
    next_id = run.record.next_event_id
    speculate(run)
    acc = update_pb2.Acceptance(accepted_request=update_pb2.Request(meta=update_pb2.Meta(update_id="u1")))
    req = ws.RespondWorkflowTaskCompletedRequest(commands=[proto_cmd("a")], messages=[msg("a", "u1", acc)])
    run.tx(lambda ms: complete_workflow_task(ms, req, None, {}, False))
    assert run.types()[-4:] == [
        "WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED", "WORKFLOW_TASK_COMPLETED", "WORKFLOW_EXECUTION_UPDATE_ACCEPTED",
    ]
    assert run.events[-4].event_id == next_id


def test_events_arriving_before_start_turn_it_into_a_normal_wft() -> None:
    run = idle_run()
    run.tx(lambda ms: ms.ensure_workflow_task(speculative=True))
    run.tx(_signal)
    assert not run.record.workflow_task.speculative
    assert run.types()[-2:] == ["WORKFLOW_EXECUTION_SIGNALED", "WORKFLOW_TASK_SCHEDULED"]


def _signal(ms: MutableState) -> None:
    ms.append_or_buffer(history_pb2.WorkflowExecutionSignaledEventAttributes(signal_name="sig"))
    ms.ensure_workflow_task()


def test_events_buffered_while_started_are_delivered_by_a_normal_wft() -> None:
    run = idle_run()
    speculate(run)
    before = run.types()
    run.tx(_signal)  # buffered: a WFT is in flight
    res = run.tx(lambda ms: complete_workflow_task(ms, rejection(), None, {}, False))
    assert res.new_wft_scheduled and not run.record.workflow_task.speculative
    assert run.types() == [*before, "WORKFLOW_EXECUTION_SIGNALED", "WORKFLOW_TASK_SCHEDULED"]


def test_updates_admitted_meanwhile_get_another_speculative_wft() -> None:
    run = idle_run()
    speculate(run)
    before = run.types()
    res = run.tx(lambda ms: complete_workflow_task(ms, rejection(), None, {}, True))
    assert res.new_wft_scheduled and run.record.workflow_task.speculative and run.types() == before


def test_commands_or_a_failure_make_it_real() -> None:
    run = idle_run()
    speculate(run)
    run.complete([cmd_timer("t", 5)])
    assert run.types()[-4:] == ["WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED", "WORKFLOW_TASK_COMPLETED", "TIMER_STARTED"]
    run2 = idle_run()
    speculate(run2)
    run2.tx(lambda ms: ms.fail_workflow_task(failed_cause_pb2.WORKFLOW_TASK_FAILED_CAUSE_WORKFLOW_WORKER_UNHANDLED_FAILURE, None, "w"))
    assert run2.types()[-3:] == ["WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED", "WORKFLOW_TASK_FAILED"]


def test_unseen_events_are_discarded_only_for_workers_that_cope() -> None:
    """Command events follow WFT completed, so a speculative WFT right after ships them again: a worker that
    does not say it copes with seeing them twice gets the WFT written."""
    legacy = rejection()
    legacy.ClearField("capabilities")
    run = idle_run()
    speculate(run)
    run.complete([cmd_timer("t", 5)])  # accepted nothing, but commands: written
    speculate(run)
    before = run.types()
    run.tx(lambda ms: complete_workflow_task(ms, legacy, None, {}, False))
    assert run.types()[len(before):] == ["WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED", "WORKFLOW_TASK_COMPLETED"]
    speculate(run)  # the timer event is now behind a completed WFT: nothing unseen, so discarded
    before = run.types()
    run.tx(lambda ms: complete_workflow_task(ms, legacy, None, {}, False))
    assert run.types() == before
    speculate(run)
    run.complete([cmd_timer("t2", 5)])
    speculate(run)
    before = run.types()
    run.tx(lambda ms: complete_workflow_task(ms, rejection(), None, {}, False))  # capable: discarded anyway
    assert run.types() == before
