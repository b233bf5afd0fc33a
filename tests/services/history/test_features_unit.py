"""Sans-IO unit tests of continue-as-new, cron, children, external signals/cancels and update messages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from google.protobuf import any_pb2
from temporalio.api.command.v1 import message_pb2 as command_pb2
from temporalio.api.common.v1 import message_pb2 as common_pb2
from temporalio.api.enums.v1 import command_type_pb2, event_type_pb2, failed_cause_pb2
from temporalio.api.enums.v1 import workflow_pb2 as wf_enums
from temporalio.api.failure.v1 import message_pb2 as failure_pb2
from temporalio.api.protocol.v1 import message_pb2 as protocol_pb2
from temporalio.api.taskqueue.v1 import message_pb2 as taskqueue_pb2
from temporalio.api.update.v1 import message_pb2 as update_pb2
from temporalio.api.workflowservice.v1 import request_response_pb2 as ws

from server.common.errors import InvalidArgument
from server.gen.durata.internal.history.v1 import state_pb2
from server.persistence.interface import TaskCategory
from services.history import children, cron, external, updates, workflow_ops
from services.history.config import HistoryConfig
from services.history.mutable_state import MutableState
from services.history.workflow_task import complete_workflow_task

from .helpers import cmd_complete, dur, payloads
from .test_state_machine import T0, Run

CT = command_type_pb2.CommandType
T = state_pb2.HistoryTaskType
ET = event_type_pb2.EventType


def started_attrs(run: Run):  # type: ignore[no-untyped-def]
    return run.events[0].workflow_execution_started_event_attributes


def complete_with(run: Run, cmds: list[command_pb2.Command], **kw: object):  # type: ignore[no-untyped-def]
    """Complete the started WFT; returns (result, the next run's MutableState or None)."""
    req = ws.RespondWorkflowTaskCompletedRequest(commands=cmds, identity="worker", **kw)  # type: ignore[arg-type]

    def fn(ms: MutableState):  # type: ignore[no-untyped-def]
        ms.started_attributes = started_attrs(run)
        ms.namespace_name = "default"
        return complete_workflow_task(ms, req, HistoryConfig()), ms.new_run

    return run.tx(fn)


def can_cmd(**kw: object) -> command_pb2.Command:
    return command_pb2.Command(
        command_type=CT.COMMAND_TYPE_CONTINUE_AS_NEW_WORKFLOW_EXECUTION,
        continue_as_new_workflow_execution_command_attributes=command_pb2.ContinueAsNewWorkflowExecutionCommandAttributes(**kw),  # type: ignore[arg-type]
    )


def fail_cmd(message: str = "boom") -> command_pb2.Command:
    return command_pb2.Command(
        command_type=CT.COMMAND_TYPE_FAIL_WORKFLOW_EXECUTION,
        fail_workflow_execution_command_attributes=command_pb2.FailWorkflowExecutionCommandAttributes(
            failure=failure_pb2.Failure(message=message, application_failure_info=failure_pb2.ApplicationFailureInfo())
        ),
    )


# ---------------------------------------------------------------- continue-as-new


def test_continue_as_new_creates_linked_successor() -> None:
    memo = common_pb2.Memo(fields={"k": payloads(b'"v"').payloads[0]})
    run = Run(memo=memo, workflow_execution_timeout=dur(600))
    run.start_wft()
    res, nxt = complete_with(run, [can_cmd(input=payloads(b"2"), backoff_start_interval=dur(5))])
    assert res.error is None and res.closed
    close = run.events[-1]
    assert close.event_type == ET.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    assert run.record.status == wf_enums.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW
    a = close.workflow_execution_continued_as_new_event_attributes
    assert a.new_execution_run_id == nxt.record.run_id and a.workflow_type.name == "W"
    s = nxt.new_events[0].workflow_execution_started_event_attributes
    assert s.first_execution_run_id == "run-1" and s.continued_execution_run_id == "run-1"
    assert s.original_execution_run_id == nxt.record.run_id and s.attempt == 1
    assert s.initiator == wf_enums.CONTINUE_AS_NEW_INITIATOR_WORKFLOW
    assert s.first_workflow_task_backoff.seconds == 5 and s.input == payloads(b"2")
    assert s.workflow_execution_expiration_time == started_attrs(run).workflow_execution_expiration_time
    assert nxt.record.memo == memo and nxt.record.wft_backoff_pending
    assert [t.info.type for t in nxt.tasks if t.category == TaskCategory.TIMER][0] == T.HISTORY_TASK_TYPE_WORKFLOW_BACKOFF_TIMER


def test_close_schedules_no_retention_timer() -> None:
    run = Run()
    run.start_wft()
    complete_with(run, [cmd_complete()])
    assert T.HISTORY_TASK_TYPE_DELETE_HISTORY_EVENT not in [t.info.type for t in run.tasks]


# ---------------------------------------------------------------- cron


def test_cron_parsing() -> None:
    at = T0 + timedelta(seconds=30)
    assert cron.next_backoff("* * * * *", at) == timedelta(seconds=30)
    assert cron.next_backoff("@every 1m30s", at) == timedelta(seconds=90)
    assert cron.next_backoff("@hourly", at) == timedelta(minutes=59, seconds=30)
    for bad in ("nonsense", "* * *", "@every 0s", "@every x"):
        with pytest.raises(cron.CronError):
            cron.validate(bad)


def test_cron_start_validation() -> None:
    with pytest.raises(InvalidArgument):
        Run(cron_schedule="not a cron")
    with pytest.raises(InvalidArgument):
        Run(cron_schedule="* * * * *", workflow_start_delay=dur(3))


def test_cron_first_run_backs_off_then_chains_with_results() -> None:
    run = Run(cron_schedule="* * * * *")
    s = started_attrs(run)
    assert s.cron_schedule == "* * * * *" and s.first_workflow_task_backoff.seconds == 60
    assert run.types() == ["WORKFLOW_EXECUTION_STARTED"]
    run.tx(workflow_ops.backoff_timer_fired, advance=60)
    run.start_wft()
    _res, nxt = complete_with(run, [cmd_complete(b"1")])
    completed = run.events[-1].workflow_execution_completed_event_attributes
    assert completed.new_execution_run_id == nxt.record.run_id
    s2 = nxt.new_events[0].workflow_execution_started_event_attributes
    assert s2.initiator == wf_enums.CONTINUE_AS_NEW_INITIATOR_CRON_SCHEDULE
    assert s2.last_completion_result == payloads(b"1") and s2.cron_schedule == "* * * * *"
    assert s2.first_workflow_task_backoff.seconds == 60  # T0+60s is on a tick: the next one is a minute later


def test_cron_failure_keeps_last_result_and_retry_comes_first() -> None:
    run = Run(cron_schedule="@every 10s")
    run.record.last_completion_result.CopyFrom(payloads(b"7"))
    run.tx(workflow_ops.backoff_timer_fired, advance=10)
    run.start_wft()
    _res, nxt = complete_with(run, [fail_cmd()])
    s = nxt.new_events[0].workflow_execution_started_event_attributes
    assert s.initiator == wf_enums.CONTINUE_AS_NEW_INITIATOR_CRON_SCHEDULE
    assert s.continued_failure.message == "boom" and s.last_completion_result == payloads(b"7")

    retrying = Run(cron_schedule="@every 10s", retry_policy=common_pb2.RetryPolicy(maximum_attempts=2))
    retrying.tx(workflow_ops.backoff_timer_fired, advance=10)
    retrying.start_wft()
    _res, nxt = complete_with(retrying, [fail_cmd()])
    s = nxt.new_events[0].workflow_execution_started_event_attributes
    assert s.initiator == wf_enums.CONTINUE_AS_NEW_INITIATOR_RETRY and s.attempt == 2


# ---------------------------------------------------------------- children


def child_cmd(workflow_id: str = "child", **kw: object) -> command_pb2.Command:
    return command_pb2.Command(
        command_type=CT.COMMAND_TYPE_START_CHILD_WORKFLOW_EXECUTION,
        start_child_workflow_execution_command_attributes=command_pb2.StartChildWorkflowExecutionCommandAttributes(
            workflow_id=workflow_id, workflow_type=common_pb2.WorkflowType(name="Child"), **kw  # type: ignore[arg-type]
        ),
    )


def test_child_lifecycle_in_parent() -> None:
    run = Run()
    run.start_wft()
    res, _ = complete_with(run, [child_cmd()])
    assert res.error is None
    init = run.events[-1]
    assert init.event_type == ET.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED
    a = init.start_child_workflow_execution_initiated_event_attributes
    assert a.parent_close_policy == wf_enums.PARENT_CLOSE_POLICY_TERMINATE and a.task_queue.name == "tq"
    assert a.namespace == "default"
    assert [t.info.type for t in run.tasks if t.category == TaskCategory.TRANSFER] == [T.HISTORY_TASK_TYPE_START_CHILD_EXECUTION]
    iid = init.event_id
    # Started arrives while a WFT is running: buffered, its id is known only when flushed.
    run.tx(lambda ms: ms.ensure_workflow_task())
    run.start_wft()
    assert run.tx(lambda ms: children.child_started(ms, iid, "child-run", None))
    assert run.record.children[iid].started_event_id == -1
    assert not run.tx(lambda ms: children.child_started(ms, iid, "child-run", None))  # idempotent
    complete_with(run, [])
    started_ev = [e for e in run.events if e.event_type == ET.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED][0]
    assert run.record.children[iid].started_event_id == started_ev.event_id
    close = run.events[0].__class__(event_type=ET.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED)
    close.workflow_execution_completed_event_attributes.result.CopyFrom(payloads(b'"r"'))
    ex = common_pb2.WorkflowExecution(workflow_id="child", run_id="child-run")
    run.tx(lambda ms: children.child_closed(ms, iid, ex, close))
    done = run.events[-1]  # the flush above already scheduled a WFT that will deliver it
    assert done.event_type == ET.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED
    assert done.child_workflow_execution_completed_event_attributes.started_event_id == started_ev.event_id
    assert run.record.workflow_task.scheduled_event_id and iid not in run.record.children


def test_child_close_before_started_is_retried_and_parent_close_runs_policies() -> None:
    run = Run()
    run.start_wft()
    complete_with(run, [child_cmd()])
    iid = run.events[-1].event_id
    close = run.events[0].__class__(event_type=ET.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED)
    with pytest.raises(children.ChildNotStarted):
        run.tx(lambda ms: children.child_closed(ms, iid, common_pb2.WorkflowExecution(workflow_id="child"), close))
    run.tx(lambda ms: workflow_ops.terminate(ms, "bye", None, "me"))
    close_tasks = [t.info for t in run.tasks if t.info.type == T.HISTORY_TASK_TYPE_CLOSE_EXECUTION]
    assert len(close_tasks) == 1 and close_tasks[0].event_id == 0  # no parent to notify, only policies


def test_child_run_waits_for_parent_started() -> None:
    req = ws.StartWorkflowExecutionRequest(
        workflow_id="child", workflow_type=common_pb2.WorkflowType(name="C"),
        task_queue=taskqueue_pb2.TaskQueue(name="tq"), request_id="r",
    )
    parent = state_pb2.ParentInfo(namespace_id="ns", namespace="default", workflow_id="p", run_id="prun",
                                  initiated_event_id=5, root_workflow_id="p", root_run_id="prun")
    ms = workflow_ops.new_run(req, "ns", "crun", T0, HistoryConfig(), timedelta(days=1), parent=parent)
    s = ms.new_events[0].workflow_execution_started_event_attributes
    assert s.parent_workflow_execution.workflow_id == "p" and s.parent_initiated_event_id == 5
    assert s.root_workflow_execution.run_id == "prun"
    assert len(ms.new_events) == 1 and ms.record.awaiting_parent_started
    ms.ensure_workflow_task()
    assert not ms.wft_scheduled
    # its final close notifies the parent
    workflow_ops.terminate(ms, "x", None, "")
    assert [t.info.event_id for t in ms.tasks if t.info.type == T.HISTORY_TASK_TYPE_CLOSE_EXECUTION] == [1]


# ---------------------------------------------------------------- external signal / cancel


def test_external_signal_and_cancel_results() -> None:
    run = Run()
    run.start_wft()
    sig = command_pb2.Command(
        command_type=CT.COMMAND_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION,
        signal_external_workflow_execution_command_attributes=command_pb2.SignalExternalWorkflowExecutionCommandAttributes(
            execution=common_pb2.WorkflowExecution(workflow_id="other"), signal_name="s", child_workflow_only=True
        ),
    )
    cancel = command_pb2.Command(
        command_type=CT.COMMAND_TYPE_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION,
        request_cancel_external_workflow_execution_command_attributes=command_pb2.RequestCancelExternalWorkflowExecutionCommandAttributes(
            workflow_id="other"
        ),
    )
    res, _ = complete_with(run, [sig, cancel])
    assert res.error is None
    sig_id, cancel_id = run.events[-2].event_id, run.events[-1].event_id
    assert run.record.pending_signals[sig_id].child_workflow_only
    types = [t.info.type for t in run.tasks if t.category == TaskCategory.TRANSFER]
    assert types == [T.HISTORY_TASK_TYPE_SIGNAL_EXECUTION, T.HISTORY_TASK_TYPE_CANCEL_EXECUTION]
    run.tx(lambda ms: external.signal_result(ms, sig_id, False))
    failed = run.events[-2].signal_external_workflow_execution_failed_event_attributes
    assert failed.cause == failed_cause_pb2.SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED_CAUSE_EXTERNAL_WORKFLOW_EXECUTION_NOT_FOUND
    assert failed.initiated_event_id == sig_id
    run.tx(lambda ms: external.cancel_result(ms, cancel_id, True))
    assert run.types()[-2:] == ["WORKFLOW_TASK_SCHEDULED", "EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED"]
    run.tx(lambda ms: external.cancel_result(ms, cancel_id, True))  # repeated task: no second event
    assert run.types()[-1] == "EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED"


def test_missing_signal_name_fails_wft() -> None:
    run = Run()
    run.start_wft()
    bad = command_pb2.Command(
        command_type=CT.COMMAND_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION,
        signal_external_workflow_execution_command_attributes=command_pb2.SignalExternalWorkflowExecutionCommandAttributes(
            execution=common_pb2.WorkflowExecution(workflow_id="other")
        ),
    )
    res, _ = complete_with(run, [bad])
    assert res.error.cause == failed_cause_pb2.WORKFLOW_TASK_FAILED_CAUSE_BAD_SIGNAL_WORKFLOW_EXECUTION_ATTRIBUTES


# ---------------------------------------------------------------- updates


def msg(mid: str, uid: str, body: object) -> protocol_pb2.Message:
    a = any_pb2.Any()
    a.Pack(body)  # type: ignore[arg-type]
    return protocol_pb2.Message(id=mid, protocol_instance_id=uid, body=a)


def proto_cmd(mid: str) -> command_pb2.Command:
    return command_pb2.Command(
        command_type=CT.COMMAND_TYPE_PROTOCOL_MESSAGE,
        protocol_message_command_attributes=command_pb2.ProtocolMessageCommandAttributes(message_id=mid),
    )


def request(uid: str) -> update_pb2.Request:
    return update_pb2.Request(meta=update_pb2.Meta(update_id=uid), input=update_pb2.Input(name="add"))


def test_update_messages_become_events_in_command_order() -> None:
    run = Run()
    run.start_wft()
    reg = updates.UpdateRegistry()
    reg.admit("k", request("u1"))
    reg.admit("k", request("u2"))
    reg.admit("k", request("u3"))
    sent = updates.request_messages(reg.deliverable("k"), 3, stamp=9)
    assert [m.protocol_instance_id for m in sent] == ["u1", "u2", "u3"] and sent[0].event_id == 2
    messages = [
        msg("a1", "u1", update_pb2.Acceptance(accepted_request_message_id="u1/request", accepted_request_sequencing_event_id=2)),
        msg("r1", "u1", update_pb2.Response(meta=update_pb2.Meta(update_id="u1"), outcome=update_pb2.Outcome(success=payloads(b"1")))),
        msg("x2", "u2", update_pb2.Rejection(failure=failure_pb2.Failure(message="nope"))),
    ]
    req = ws.RespondWorkflowTaskCompletedRequest(commands=[proto_cmd("a1"), proto_cmd("r1")], messages=messages)
    res = run.tx(lambda ms: complete_workflow_task(ms, req, HistoryConfig(), reg.requests("k"), False))
    assert res.error is None
    assert run.types()[-2:] == ["WORKFLOW_EXECUTION_UPDATE_ACCEPTED", "WORKFLOW_EXECUTION_UPDATE_COMPLETED"]
    acc = run.events[-2].workflow_execution_update_accepted_event_attributes
    assert acc.accepted_request == request("u1") and acc.protocol_instance_id == "u1"
    assert run.events[-1].workflow_execution_update_completed_event_attributes.accepted_event_id == run.events[-2].event_id
    assert run.record.updates["u1"].completed_event_id == run.events[-1].event_id
    entries = {uid: reg.get("k", uid) for uid in ("u1", "u2", "u3")}
    reg.apply("k", res.update_effects, wft_stamp=9)
    assert entries["u1"].outcome.success == payloads(b"1")  # type: ignore[union-attr]
    assert entries["u2"].outcome.failure.message == "nope"  # type: ignore[union-attr]
    assert updates.NOT_PROCESSED in entries["u3"].outcome.failure.message  # type: ignore[union-attr]
    assert reg.get("k", "u1") is None


def test_unknown_protocol_message_fails_wft_and_waiting_updates_force_a_wft() -> None:
    run = Run()
    run.start_wft()
    res = run.tx(lambda ms: complete_workflow_task(ms, ws.RespondWorkflowTaskCompletedRequest(commands=[proto_cmd("nope")])))
    assert res.error.cause == failed_cause_pb2.WORKFLOW_TASK_FAILED_CAUSE_BAD_UPDATE_WORKFLOW_EXECUTION_MESSAGE
    run2 = Run()
    run2.start_wft()
    res = run2.tx(lambda ms: complete_workflow_task(ms, ws.RespondWorkflowTaskCompletedRequest(), None, {}, True))
    # Only updates to deliver: the new WFT is speculative (no event until the worker accepts one).
    assert res.new_wft_scheduled and run2.record.workflow_task.speculative
    assert run2.types()[-1] == "WORKFLOW_TASK_COMPLETED"


def test_bad_child_attributes_fail_the_wft() -> None:
    run = Run()
    run.start_wft()
    res, _ = complete_with(run, [child_cmd(retry_policy=common_pb2.RetryPolicy(backoff_coefficient=0.5))])
    assert res.error.cause == failed_cause_pb2.WORKFLOW_TASK_FAILED_CAUSE_BAD_START_CHILD_EXECUTION_ATTRIBUTES
    run.start_wft()
    res, _ = complete_with(run, [child_cmd(workflow_id="")])
    assert res.error is not None and "WorkflowId" in res.error.message
