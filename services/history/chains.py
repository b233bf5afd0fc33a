"""Run chains (reference 5.4): workflow retry, cron and continue-as-new. The closing run and its successor
are written in one transaction: the successor is attached to ``ms.new_run`` before the close event."""

from __future__ import annotations

import uuid
from datetime import timedelta

from temporalio.api.command.v1 import message_pb2 as command_pb2
from temporalio.api.common.v1 import message_pb2 as common_pb2
from temporalio.api.enums.v1 import failed_cause_pb2 as fc
from temporalio.api.enums.v1 import workflow_pb2 as wf_enums
from temporalio.api.failure.v1 import message_pb2 as failure_pb2
from temporalio.api.history.v1 import message_pb2 as history_pb2
from temporalio.api.workflowservice.v1 import request_response_pb2 as ws

from server.common.errors import InvalidArgument
from server.common.ids import new_run_id

from . import cron, reset_points
from .activities import CommandError
from .config import HistoryConfig
from .mutable_state import MutableState, from_dur, from_ts
from .workflow_ops import Chain, new_run

RS = wf_enums.RetryState
INIT = wf_enums.ContinueAsNewInitiator
ST = wf_enums.WorkflowExecutionStatus
ZERO = timedelta(0)


def retry_decision(ms: MutableState, failure: failure_pb2.Failure) -> tuple[int, timedelta]:
    r = ms.record
    if not r.has_retry_policy:
        return RS.RETRY_STATE_RETRY_POLICY_NOT_SET, ZERO
    rp = r.retry_policy
    if failure.HasField("application_failure_info"):
        app = failure.application_failure_info
        if app.non_retryable or app.type in rp.non_retryable_error_types:
            return RS.RETRY_STATE_NON_RETRYABLE_FAILURE, ZERO
    if failure.HasField("timeout_failure_info") and "TemporalTimeout:StartToClose" in rp.non_retryable_error_types:
        return RS.RETRY_STATE_NON_RETRYABLE_FAILURE, ZERO
    if rp.maximum_attempts > 0 and r.attempt >= rp.maximum_attempts:
        return RS.RETRY_STATE_MAXIMUM_ATTEMPTS_REACHED, ZERO
    backoff = from_dur(rp.initial_interval) * (rp.backoff_coefficient ** (r.attempt - 1))
    backoff = min(backoff, from_dur(rp.maximum_interval))
    if failure.HasField("application_failure_info") and failure.application_failure_info.HasField("next_retry_delay"):
        backoff = from_dur(failure.application_failure_info.next_retry_delay)
    if r.HasField("execution_expiration_time") and ms.now + backoff >= from_ts(r.execution_expiration_time):
        return RS.RETRY_STATE_TIMEOUT, ZERO
    return RS.RETRY_STATE_IN_PROGRESS, backoff


def _inherited_request(ms: MutableState) -> ws.StartWorkflowExecutionRequest:
    """The next run's start request as the current run was started (needs ``ms.started_attributes``)."""
    r = ms.record
    sa = ms.started_attributes
    assert sa is not None
    return ws.StartWorkflowExecutionRequest(
        workflow_id=r.workflow_id,
        workflow_type=common_pb2.WorkflowType(name=r.workflow_type),
        task_queue=ms.normal_task_queue(),
        input=sa.input if sa.HasField("input") else None,
        workflow_execution_timeout=r.workflow_execution_timeout,
        workflow_run_timeout=sa.workflow_run_timeout,
        workflow_task_timeout=r.workflow_task_timeout,
        identity=sa.identity,
        request_id=str(uuid.uuid4()),
        retry_policy=r.retry_policy if r.has_retry_policy else None,
        memo=r.memo,
        search_attributes=r.search_attributes,
        header=sa.header if sa.HasField("header") else None,
        cron_schedule=r.cron_schedule,
    )


def _chain(ms: MutableState, attempt: int, initiator: int, backoff: timedelta, **kw: object) -> Chain:
    r = ms.record
    return Chain(
        first_execution_run_id=r.first_execution_run_id,
        previous_run_id=r.run_id,
        attempt=attempt,
        initiator=initiator,
        backoff=backoff,
        expiration_time=from_ts(r.execution_expiration_time) if r.HasField("execution_expiration_time") else None,
        **kw,  # type: ignore[arg-type]
    )


def _attach(ms: MutableState, req: ws.StartWorkflowExecutionRequest, chain: Chain, config: HistoryConfig) -> str:
    parent = ms.record.parent if ms.record.HasField("parent") else None
    nxt = new_run(req, ms.record.namespace_id, new_run_id(), ms.now, config, ms.retention, chain=chain, parent=parent)
    reset_points.roll_over(ms.record, nxt.record, ms.now, ms.retention)
    ms.new_run = nxt
    return nxt.record.run_id


def maybe_retry(ms: MutableState, failure: failure_pb2.Failure, config: HistoryConfig) -> tuple[int, str]:
    """Decide and, if retrying, attach the next run to ``ms.new_run``. Returns (retry_state, new run id).
    Needs ``ms.started_attributes`` (event 1 of this run); without it the run is not retried."""
    state, backoff = retry_decision(ms, failure)
    if state != RS.RETRY_STATE_IN_PROGRESS or ms.started_attributes is None:
        return (state if state != RS.RETRY_STATE_IN_PROGRESS else RS.RETRY_STATE_INTERNAL_SERVER_ERROR), ""
    prev = ms.record.last_completion_result if ms.record.HasField("last_completion_result") else None
    chain = _chain(ms, ms.record.attempt + 1, INIT.CONTINUE_AS_NEW_INITIATOR_RETRY, backoff,
                   continued_failure=failure, last_completion_result=prev)
    return RS.RETRY_STATE_IN_PROGRESS, _attach(ms, _inherited_request(ms), chain, config)


def _cron_next(
    ms: MutableState, config: HistoryConfig, result: common_pb2.Payloads | None, failure: failure_pb2.Failure | None
) -> str:
    r = ms.record
    if not r.cron_schedule or ms.started_attributes is None:
        return ""
    chain = _chain(ms, 1, INIT.CONTINUE_AS_NEW_INITIATOR_CRON_SCHEDULE, cron.next_backoff(r.cron_schedule, ms.now),
                   continued_failure=failure, last_completion_result=result)
    return _attach(ms, _inherited_request(ms), chain, config)


def retry_or_cron(ms: MutableState, failure: failure_pb2.Failure, config: HistoryConfig) -> tuple[int, str]:
    """A failed / timed-out run: the retry policy first, then the cron schedule (5.4)."""
    state, run_id = maybe_retry(ms, failure, config)
    if run_id:
        return state, run_id
    prev = ms.record.last_completion_result if ms.record.HasField("last_completion_result") else None
    return state, _cron_next(ms, config, prev, failure)


def cron_after_completion(ms: MutableState, result: common_pb2.Payloads | None, config: HistoryConfig) -> str:
    return _cron_next(ms, config, result if result is not None else common_pb2.Payloads(), None)


def continue_as_new(
    ms: MutableState, a: command_pb2.ContinueAsNewWorkflowExecutionCommandAttributes, completed_id: int, config: HistoryConfig
) -> history_pb2.HistoryEvent:
    """CONTINUE_AS_NEW_WORKFLOW_EXECUTION: close with WorkflowExecutionContinuedAsNew and create the next run."""
    r = ms.record
    req = ws.StartWorkflowExecutionRequest(
        workflow_id=r.workflow_id,
        workflow_type=a.workflow_type if a.workflow_type.name else common_pb2.WorkflowType(name=r.workflow_type),
        task_queue=ms.normal_task_queue(),
        input=a.input if a.HasField("input") else None,
        workflow_execution_timeout=r.workflow_execution_timeout,
        workflow_run_timeout=a.workflow_run_timeout if from_dur(a.workflow_run_timeout) > ZERO else r.workflow_run_timeout,
        workflow_task_timeout=a.workflow_task_timeout if from_dur(a.workflow_task_timeout) > ZERO else r.workflow_task_timeout,
        request_id=str(uuid.uuid4()),
        memo=a.memo if a.HasField("memo") else r.memo,
        search_attributes=a.search_attributes if a.HasField("search_attributes") else r.search_attributes,
        header=a.header if a.HasField("header") else None,
        cron_schedule=a.cron_schedule or r.cron_schedule,
    )
    if a.task_queue.name:
        req.task_queue.name = a.task_queue.name
    if a.HasField("retry_policy"):
        req.retry_policy.CopyFrom(a.retry_policy)
    elif r.has_retry_policy:
        req.retry_policy.CopyFrom(r.retry_policy)
    if ms.started_attributes is not None:
        req.identity = ms.started_attributes.identity
    backoff = from_dur(a.backoff_start_interval) if a.HasField("backoff_start_interval") else ZERO
    if backoff < ZERO:
        raise CommandError(fc.WORKFLOW_TASK_FAILED_CAUSE_BAD_CONTINUE_AS_NEW_ATTRIBUTES, "BackoffStartInterval is negative.")
    initiator = a.initiator or INIT.CONTINUE_AS_NEW_INITIATOR_WORKFLOW
    last = a.last_completion_result if a.HasField("last_completion_result") else (
        r.last_completion_result if r.HasField("last_completion_result") else None)
    chain = _chain(ms, 1, initiator, backoff, continued_failure=a.failure if a.HasField("failure") else None,
                   last_completion_result=last)
    try:
        run_id = _attach(ms, req, chain, config)
    except InvalidArgument as e:
        raise CommandError(fc.WORKFLOW_TASK_FAILED_CAUSE_BAD_CONTINUE_AS_NEW_ATTRIBUTES, e.message) from None
    nr = ms.new_run
    assert nr is not None
    attrs = history_pb2.WorkflowExecutionContinuedAsNewEventAttributes(
        new_execution_run_id=run_id,
        workflow_type=req.workflow_type,
        task_queue=nr.normal_task_queue(),
        input=a.input if a.HasField("input") else None,
        workflow_run_timeout=nr.record.workflow_run_timeout,
        workflow_task_timeout=nr.record.workflow_task_timeout,
        workflow_task_completed_event_id=completed_id,
        backoff_start_interval=a.backoff_start_interval if a.HasField("backoff_start_interval") else None,
        initiator=initiator,  # type: ignore[arg-type]
        failure=a.failure if a.HasField("failure") else None,
        last_completion_result=a.last_completion_result if a.HasField("last_completion_result") else None,
        header=a.header if a.HasField("header") else None,
        memo=a.memo if a.HasField("memo") else None,
        search_attributes=a.search_attributes if a.HasField("search_attributes") else None,
    )
    return ms.close(ST.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW, attrs)
