"""Workflow retry (reference 5.4): a failed or timed-out run with a retry policy closes with
retry_state=IN_PROGRESS and the next run of the chain is created in the same transaction."""

from __future__ import annotations

import uuid
from datetime import timedelta

from temporalio.api.common.v1 import message_pb2 as common_pb2
from temporalio.api.enums.v1 import workflow_pb2 as wf_enums
from temporalio.api.failure.v1 import message_pb2 as failure_pb2
from temporalio.api.workflowservice.v1 import request_response_pb2 as ws

from .config import HistoryConfig
from .mutable_state import MutableState, from_dur, from_ts
from .workflow_ops import Chain, new_run

RS = wf_enums.RetryState
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


def maybe_retry(ms: MutableState, failure: failure_pb2.Failure, config: HistoryConfig) -> tuple[int, str]:
    """Decide and, if retrying, attach the next run to ``ms.new_run``. Returns (retry_state, new run id).
    Needs ``ms.started_attributes`` (event 1 of this run); without it the run is not retried."""
    state, backoff = retry_decision(ms, failure)
    if state != RS.RETRY_STATE_IN_PROGRESS or ms.started_attributes is None:
        return (state if state != RS.RETRY_STATE_IN_PROGRESS else RS.RETRY_STATE_INTERNAL_SERVER_ERROR), ""
    r = ms.record
    sa = ms.started_attributes
    req = ws.StartWorkflowExecutionRequest(
        workflow_id=r.workflow_id,
        workflow_type=common_pb2.WorkflowType(name=r.workflow_type),
        task_queue=ms.normal_task_queue(),
        input=sa.input if sa.HasField("input") else None,
        workflow_execution_timeout=r.workflow_execution_timeout,
        workflow_run_timeout=sa.workflow_run_timeout,
        workflow_task_timeout=r.workflow_task_timeout,
        identity=sa.identity,
        request_id=str(uuid.uuid4()),
        retry_policy=r.retry_policy,
        memo=r.memo,
        search_attributes=r.search_attributes,
        header=sa.header if sa.HasField("header") else None,
    )
    chain = Chain(
        first_execution_run_id=r.first_execution_run_id,
        previous_run_id=r.run_id,
        attempt=r.attempt + 1,
        initiator=wf_enums.CONTINUE_AS_NEW_INITIATOR_RETRY,
        backoff=backoff,
        expiration_time=from_ts(r.execution_expiration_time) if r.HasField("execution_expiration_time") else None,
        continued_failure=failure,
    )
    nxt = new_run(req, r.namespace_id, str(uuid.uuid4()), ms.now, config, ms.retention, chain=chain)
    ms.new_run = nxt
    return RS.RETRY_STATE_IN_PROGRESS, nxt.record.run_id
