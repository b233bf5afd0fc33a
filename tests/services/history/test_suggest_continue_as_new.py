"""A workflow task's Started event suggests continue-as-new once the history reaches the configured event count
or size, with Temporal's reasons; a zero-length timer is accepted and fires at once."""

from __future__ import annotations

from temporalio.api.enums.v1 import workflow_pb2 as wf_enums
from temporalio.api.history.v1 import message_pb2 as history_pb2

from services.history.mutable_state import MutableState

from .helpers import cmd_timer
from .test_state_machine import Run


def started_attrs(run: Run, **limits: int) -> history_pb2.WorkflowTaskStartedEventAttributes:
    def start(ms: MutableState) -> None:
        for name, value in limits.items():
            setattr(ms, name, value)
        ms.start_workflow_task("req", "worker")

    run.tx(start)
    return run.events[-1].workflow_task_started_event_attributes


def test_no_suggestion_under_the_limits() -> None:
    attrs = started_attrs(Run())
    assert not attrs.suggest_continue_as_new and list(attrs.suggest_continue_as_new_reasons) == []
    assert attrs.history_size_bytes > 0


def test_event_count_limit_counts_the_started_event_itself() -> None:
    assert started_attrs(Run(), suggest_can_events=4).suggest_continue_as_new is False  # Started is event 3
    attrs = started_attrs(Run(), suggest_can_events=3)
    assert attrs.suggest_continue_as_new
    assert list(attrs.suggest_continue_as_new_reasons) == [wf_enums.SUGGEST_CONTINUE_AS_NEW_REASON_TOO_MANY_HISTORY_EVENTS]


def test_size_and_count_give_both_reasons() -> None:
    attrs = started_attrs(Run(), suggest_can_events=1, suggest_can_bytes=1)
    assert list(attrs.suggest_continue_as_new_reasons) == [
        wf_enums.SUGGEST_CONTINUE_AS_NEW_REASON_HISTORY_SIZE_TOO_LARGE,
        wf_enums.SUGGEST_CONTINUE_AS_NEW_REASON_TOO_MANY_HISTORY_EVENTS,
    ]


def test_zero_timer_is_started() -> None:
    run = Run()
    run.start_wft()
    run.complete([cmd_timer("t0", 0)])
    assert run.types()[-1] == "TIMER_STARTED"
    assert run.record.timers["t0"].expiry_time.ToDatetime() == run.now.replace(tzinfo=None)
