"""Run-level state changes: creating a run, signals, cancel requests, termination, run timeout, first-WFT
backoff. All sans-IO: they take a MutableState (or build one) and add events/tasks to it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio.api.common.v1 import message_pb2 as common_pb2
from temporalio.api.enums.v1 import task_queue_pb2
from temporalio.api.enums.v1 import workflow_pb2 as wf_enums
from temporalio.api.failure.v1 import message_pb2 as failure_pb2
from temporalio.api.history.v1 import message_pb2 as history_pb2
from temporalio.api.workflowservice.v1 import request_response_pb2 as ws

from server.common.errors import InvalidArgument
from server.gen.durata.internal.history.v1 import state_pb2
from server.persistence.interface import TaskCategory

from . import cron
from .activities import default_retry_policy
from .config import HistoryConfig
from .mutable_state import STATE_RUNNING, MutableState, T, from_dur, from_ts, to_dur, to_ts

ZERO = timedelta(0)
ST = wf_enums.WorkflowExecutionStatus
MAX_ID_LENGTH = 1000


@dataclass
class Chain:
    """How a run continues a previous one (workflow retry, continue-as-new, cron)."""

    first_execution_run_id: str
    previous_run_id: str
    attempt: int
    initiator: int  # temporal.api.enums.v1.ContinueAsNewInitiator
    backoff: timedelta
    expiration_time: datetime | None = None
    continued_failure: failure_pb2.Failure | None = None
    last_completion_result: common_pb2.Payloads | None = None


def _d(msg: object, name: str) -> timedelta:
    return from_dur(getattr(msg, name)) if msg.HasField(name) else ZERO  # type: ignore[attr-defined]


def validate_start(req: ws.StartWorkflowExecutionRequest | ws.SignalWithStartWorkflowExecutionRequest) -> None:
    for label, value in (
        ("WorkflowId", req.workflow_id),
        ("WorkflowType", req.workflow_type.name),
        ("TaskQueue", req.task_queue.name),
    ):
        if not value:
            raise InvalidArgument(f"{label} is not set on request.")
        if len(value) > MAX_ID_LENGTH:
            raise InvalidArgument(f"{label} exceeds length limit of {MAX_ID_LENGTH}.")
    for name in ("workflow_execution_timeout", "workflow_run_timeout", "workflow_task_timeout"):
        if _d(req, name) < ZERO:
            raise InvalidArgument(f"Invalid {name}: must not be negative.")
    if req.HasField("workflow_start_delay") and _d(req, "workflow_start_delay") < ZERO:
        raise InvalidArgument("Invalid WorkflowStartDelay: must not be negative.")
    if req.cron_schedule:
        try:
            cron.validate(req.cron_schedule)
        except cron.CronError as e:
            raise InvalidArgument(str(e)) from None
        if _d(req, "workflow_start_delay") > ZERO:
            raise InvalidArgument("CronSchedule and WorkflowStartDelay may not be used together.")


def new_run(
    req: ws.StartWorkflowExecutionRequest | ws.SignalWithStartWorkflowExecutionRequest,
    namespace_id: str,
    run_id: str,
    now: datetime,
    config: HistoryConfig,
    retention: timedelta,
    signal: history_pb2.WorkflowExecutionSignaledEventAttributes | None = None,
    chain: Chain | None = None,
    parent: state_pb2.ParentInfo | None = None,
) -> MutableState:
    """Events Started(1) [+ Signaled] [+ WorkflowTaskScheduled] and the tasks of a new run (2.3); ``chain``
    links it to the previous run of a retry chain (5.4)."""
    validate_start(req)
    exec_timeout = _d(req, "workflow_execution_timeout")
    run_timeout = _d(req, "workflow_run_timeout")
    if run_timeout == ZERO:
        run_timeout = exec_timeout
    elif exec_timeout > ZERO:
        run_timeout = min(run_timeout, exec_timeout)
    task_timeout = _d(req, "workflow_task_timeout")
    if task_timeout == ZERO:
        task_timeout = timedelta(seconds=config.default_workflow_task_timeout_seconds)
    task_timeout = min(task_timeout, timedelta(seconds=config.max_workflow_task_timeout_seconds))
    if run_timeout > ZERO:
        task_timeout = min(task_timeout, run_timeout)
    retry: common_pb2.RetryPolicy | None = None
    if req.HasField("retry_policy"):
        try:
            retry = default_retry_policy(req.retry_policy)
        except ValueError as e:
            raise InvalidArgument(str(e)) from None
    if chain is not None:
        backoff = chain.backoff
    elif req.cron_schedule:
        backoff = cron.next_backoff(req.cron_schedule, now)
    else:
        backoff = _d(req, "workflow_start_delay")
    first_run_id = chain.first_execution_run_id if chain is not None else run_id
    attempt = chain.attempt if chain is not None else 1

    r = state_pb2.MutableState(
        namespace_id=namespace_id,
        workflow_id=req.workflow_id,
        run_id=run_id,
        first_execution_run_id=first_run_id,
        workflow_type=req.workflow_type.name,
        task_queue=req.task_queue.name,
        workflow_execution_timeout=to_dur(exec_timeout),
        workflow_run_timeout=to_dur(run_timeout),
        workflow_task_timeout=to_dur(task_timeout),
        has_retry_policy=retry is not None,
        memo=req.memo,
        search_attributes=req.search_attributes,
        state=STATE_RUNNING,
        status=ST.WORKFLOW_EXECUTION_STATUS_RUNNING,
        next_event_id=1,
        start_time=to_ts(now),
        execution_time=to_ts(now + backoff),
        attempt=attempt,
        first_workflow_task_backoff=to_dur(backoff),
        create_request_id=req.request_id,
    )
    if retry is not None:
        r.retry_policy.CopyFrom(retry)
    r.cron_schedule = req.cron_schedule
    if parent is not None and parent.workflow_id:
        r.parent.CopyFrom(parent)
    if chain is not None and chain.last_completion_result is not None:
        r.last_completion_result.CopyFrom(chain.last_completion_result)
    if req.request_id:
        r.start_request_ids.append(req.request_id)
    if chain is not None and chain.expiration_time is not None:
        r.execution_expiration_time.CopyFrom(to_ts(chain.expiration_time))
    elif exec_timeout > ZERO:
        r.execution_expiration_time.CopyFrom(to_ts(now + exec_timeout))
    if req.HasField("priority"):
        r.priority.CopyFrom(req.priority)
    if req.HasField("versioning_override"):
        r.versioning_override.CopyFrom(req.versioning_override)
    ms = MutableState(r, now, retention=retention)
    ms.suggest_can_events = config.suggest_continue_as_new_history_count
    ms.suggest_can_bytes = config.suggest_continue_as_new_history_size_bytes
    started = history_pb2.WorkflowExecutionStartedEventAttributes(
        workflow_type=req.workflow_type,
        task_queue=ms.normal_task_queue(),
        input=req.input if req.HasField("input") else None,
        # Unset rather than zero when there is none, as Temporal writes it: SDKs read "no timeout" from absence.
        workflow_execution_timeout=to_dur(exec_timeout) if exec_timeout > ZERO else None,
        workflow_run_timeout=to_dur(run_timeout) if run_timeout > ZERO else None,
        workflow_task_timeout=to_dur(task_timeout),
        original_execution_run_id=run_id,
        identity=req.identity,
        first_execution_run_id=first_run_id,
        retry_policy=retry,
        attempt=attempt,
        workflow_execution_expiration_time=r.execution_expiration_time if r.HasField("execution_expiration_time") else None,
        first_workflow_task_backoff=to_dur(backoff) if backoff > ZERO else None,
        memo=req.memo if req.HasField("memo") else None,
        search_attributes=req.search_attributes if req.HasField("search_attributes") else None,
        header=req.header if req.HasField("header") else None,
        workflow_id=req.workflow_id,
        priority=req.priority if req.HasField("priority") else None,
        versioning_override=req.versioning_override if req.HasField("versioning_override") else None,
        cron_schedule=req.cron_schedule,
    )
    started.task_queue.kind = task_queue_pb2.TASK_QUEUE_KIND_NORMAL
    if chain is None and req.cron_schedule:
        started.initiator = wf_enums.CONTINUE_AS_NEW_INITIATOR_CRON_SCHEDULE  # as the real server does
    if chain is None and isinstance(req, ws.StartWorkflowExecutionRequest):
        # A schedule hands each run its predecessor's result or failure (workflow.get_last_completion_result).
        if req.HasField("last_completion_result"):
            started.last_completion_result.CopyFrom(req.last_completion_result)
            r.last_completion_result.CopyFrom(req.last_completion_result)
        if req.HasField("continued_failure"):
            started.continued_failure.CopyFrom(req.continued_failure)
    if chain is not None:
        started.continued_execution_run_id = chain.previous_run_id
        started.initiator = chain.initiator  # type: ignore[assignment]
        if chain.continued_failure is not None:
            started.continued_failure.CopyFrom(chain.continued_failure)
        if chain.last_completion_result is not None:
            started.last_completion_result.CopyFrom(chain.last_completion_result)
    if r.HasField("parent"):
        p = r.parent
        started.parent_workflow_namespace = p.namespace
        started.parent_workflow_namespace_id = p.namespace_id
        started.parent_workflow_execution.workflow_id = p.workflow_id
        started.parent_workflow_execution.run_id = p.run_id
        started.parent_initiated_event_id = p.initiated_event_id
        started.root_workflow_execution.workflow_id = p.root_workflow_id
        started.root_workflow_execution.run_id = p.root_run_id
        # The first chain run of a child waits for its parent to record ChildWorkflowExecutionStarted.
        r.awaiting_parent_started = chain is None
    else:
        started.root_workflow_execution.workflow_id = req.workflow_id
        started.root_workflow_execution.run_id = run_id
    first = ms.append(started)
    if req.HasField("user_metadata"):
        first.user_metadata.CopyFrom(req.user_metadata)
        r.user_metadata.CopyFrom(req.user_metadata)
    if signal is not None:
        ms.append(signal)
        if signal.request_id:
            r.signal_request_ids.append(signal.request_id)
    if backoff > ZERO:
        r.wft_backoff_pending = True
        ms.add_timer_task(T.HISTORY_TASK_TYPE_WORKFLOW_BACKOFF_TIMER, now + backoff)
    else:
        ms.ensure_workflow_task()
    if run_timeout > ZERO:
        deadline = now + backoff + run_timeout
        if r.HasField("execution_expiration_time"):
            deadline = min(deadline, from_ts(r.execution_expiration_time))
        ms.add_timer_task(T.HISTORY_TASK_TYPE_WORKFLOW_RUN_TIMEOUT, deadline)
    ms.add_task(TaskCategory.VISIBILITY, T.HISTORY_TASK_TYPE_VISIBILITY_UPSERT)
    return ms


def backoff_timer_fired(ms: MutableState) -> None:
    if ms.running and ms.record.wft_backoff_pending:
        ms.record.wft_backoff_pending = False
        ms.dirty = True
        ms.ensure_workflow_task()


def signal(
    ms: MutableState, req: ws.SignalWorkflowExecutionRequest, external: common_pb2.WorkflowExecution | None = None
) -> None:
    """Dedupe by request id, write (or buffer) WorkflowExecutionSignaled, make sure a WFT will deliver it."""
    if req.request_id and req.request_id in ms.record.signal_request_ids:
        return
    ms.append_or_buffer(
        history_pb2.WorkflowExecutionSignaledEventAttributes(
            signal_name=req.signal_name,
            input=req.input if req.HasField("input") else None,
            identity=req.identity,
            header=req.header if req.HasField("header") else None,
            request_id=req.request_id,
            external_workflow_execution=external if external is not None and external.workflow_id else None,
        )
    )
    if req.request_id:
        ms.record.signal_request_ids.append(req.request_id)
        ms.dirty = True
    ms.ensure_workflow_task()


def request_cancel(
    ms: MutableState,
    req: ws.RequestCancelWorkflowExecutionRequest,
    external: common_pb2.WorkflowExecution | None = None,
    external_initiated_event_id: int = 0,
) -> None:
    """Idempotent: a second request (or the same request id) is a no-op."""
    r = ms.record
    if r.cancel_requested or (req.request_id and req.request_id in r.cancel_request_ids):
        return
    r.cancel_requested = True
    if req.request_id:
        r.cancel_request_ids.append(req.request_id)
    ms.dirty = True
    ms.append_or_buffer(
        history_pb2.WorkflowExecutionCancelRequestedEventAttributes(
            cause=req.reason,
            identity=req.identity,
            external_initiated_event_id=external_initiated_event_id,
            external_workflow_execution=external if external is not None and external.workflow_id else None,
        )
    )
    ms.ensure_workflow_task()


def terminate(ms: MutableState, reason: str, details: common_pb2.Payloads | None, identity: str) -> None:
    ms.force_close_started_wft()
    ms.close(
        ST.WORKFLOW_EXECUTION_STATUS_TERMINATED,
        history_pb2.WorkflowExecutionTerminatedEventAttributes(reason=reason, details=details, identity=identity),
    )


def run_timeout_fired(ms: MutableState, config: HistoryConfig | None = None) -> None:
    """WORKFLOW_RUN_TIMEOUT: re-validated by the deadline stored in the record (the run may be done)."""
    from . import chains

    if not ms.running:
        return
    r = ms.record
    run_timeout = from_dur(r.workflow_run_timeout)
    deadline = from_ts(r.execution_time) + run_timeout
    if r.HasField("execution_expiration_time"):
        deadline = min(deadline, from_ts(r.execution_expiration_time))
    if run_timeout <= ZERO or deadline > ms.now:
        return
    ms.force_close_started_wft()
    failure = failure_pb2.Failure(message="workflow timed out")
    failure.timeout_failure_info.timeout_type = wf_enums.TIMEOUT_TYPE_START_TO_CLOSE
    attrs = history_pb2.WorkflowExecutionTimedOutEventAttributes(retry_state=wf_enums.RETRY_STATE_TIMEOUT)
    attrs.retry_state, attrs.new_execution_run_id = chains.retry_or_cron(ms, failure, config or HistoryConfig())  # type: ignore[assignment]
    ms.close(ST.WORKFLOW_EXECUTION_STATUS_TIMED_OUT, attrs)
