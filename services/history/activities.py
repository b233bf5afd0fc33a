"""Activity state machine (reference section 4): scheduling with timeout normalization, lazy Started events,
server-side retries invisible in history, heartbeats, cancellation and the four timeouts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from google.protobuf import duration_pb2
from temporalio.api.command.v1 import message_pb2 as command_pb2
from temporalio.api.common.v1 import message_pb2 as common_pb2
from temporalio.api.enums.v1 import failed_cause_pb2 as fc
from temporalio.api.enums.v1 import workflow_pb2 as wf_enums
from temporalio.api.failure.v1 import message_pb2 as failure_pb2
from temporalio.api.history.v1 import message_pb2 as history_pb2

from server.common.durations import validate_and_cap
from server.gen.durata.internal.history.v1 import state_pb2
from server.persistence.interface import TaskCategory

from .events import make_event
from .mutable_state import MutableState, T, from_dur, from_ts, to_dur, to_ts

ZERO = timedelta(0)
TO = wf_enums.TimeoutType
RS = wf_enums.RetryState


class CommandError(Exception):
    """A command the server rejects: the WFT fails with ``cause`` (a WorkflowTaskFailedCause)."""

    def __init__(self, cause: int, message: str) -> None:
        super().__init__(message)
        self.cause = cause
        self.message = message


def default_retry_policy(given: common_pb2.RetryPolicy | None) -> common_pb2.RetryPolicy:
    """Fill unset fields (initial 1 s, coefficient 2.0, max interval 100x initial) and validate."""
    rp = common_pb2.RetryPolicy()
    if given is not None:
        rp.CopyFrom(given)
    initial = from_dur(rp.initial_interval) if rp.HasField("initial_interval") else ZERO
    if initial <= ZERO:
        initial = timedelta(seconds=1)
        rp.initial_interval.FromTimedelta(initial)
    if rp.backoff_coefficient == 0:
        rp.backoff_coefficient = 2.0
    if not rp.HasField("maximum_interval") or from_dur(rp.maximum_interval) <= ZERO:
        rp.maximum_interval.FromTimedelta(initial * 100)
    if rp.backoff_coefficient < 1:
        raise ValueError("BackoffCoefficient cannot be less than 1.")
    if from_dur(rp.maximum_interval) < initial:
        raise ValueError("MaximumInterval cannot be less than InitialInterval on retry policy.")
    if rp.maximum_attempts < 0:
        raise ValueError("MaximumAttempts cannot be negative on retry policy.")
    return rp


_TIMEOUT_FIELDS = (
    ("schedule_to_close_timeout", "ScheduleToCloseTimeout"),
    ("schedule_to_start_timeout", "ScheduleToStartTimeout"),
    ("start_to_close_timeout", "StartToCloseTimeout"),
    ("heartbeat_timeout", "HeartbeatTimeout"),
)


class ActivityOptions(NamedTuple):
    """Timeouts after normalization (4.2) and the retry policy with its defaults filled."""

    schedule_to_close: timedelta
    schedule_to_start: timedelta
    start_to_close: timedelta
    heartbeat: timedelta
    retry_policy: common_pb2.RetryPolicy


def normalize_activity_options(
    task_queue: str,
    timeouts: Sequence[duration_pb2.Duration | None],
    retry_policy: common_pb2.RetryPolicy | None,
    run_timeout: timedelta,
) -> ActivityOptions:
    """The checks of a ScheduleActivityTask command on its options (also applied to UpdateActivityOptions);
    ``timeouts`` are schedule-to-close, schedule-to-start, start-to-close and heartbeat (None = unset).
    Raises ValueError with the text the client sees."""
    if not task_queue:
        raise ValueError("missing task queue name")
    for d, (_, label) in zip(timeouts, _TIMEOUT_FIELDS, strict=True):
        reason = validate_and_cap(d) if d is not None else None
        if reason is not None:
            raise ValueError(f"invalid {label}: {reason}")
    if retry_policy is not None:
        for field, label in (("initial_interval", "InitialInterval"), ("maximum_interval", "MaximumInterval")):
            reason = validate_and_cap(getattr(retry_policy, field))
            if reason is not None:
                raise ValueError(f"invalid {label}: {reason}")
    s2c, s2s, stc, hb = (from_dur(d) if d is not None else ZERO for d in timeouts)
    if min(s2c, s2s, stc, hb) < ZERO:
        raise ValueError("Activity timeouts cannot be negative.")
    if s2c > ZERO:
        s2s = min(s2s, s2c) if s2s > ZERO else s2c
        stc = min(stc, s2c) if stc > ZERO else s2c
    elif stc > ZERO:
        s2c = run_timeout
        if s2s <= ZERO:
            s2s = run_timeout
    else:
        raise ValueError("A valid StartToClose or ScheduleToCloseTimeout is not set on ScheduleActivityTaskCommand.")
    if run_timeout > ZERO:
        s2c = min(s2c, run_timeout) if s2c > ZERO else run_timeout
        s2s = min(s2s, run_timeout) if s2s > ZERO else run_timeout
        stc = min(stc, run_timeout) if stc > ZERO else run_timeout
        hb = min(hb, run_timeout)
    if stc > ZERO:
        hb = min(hb, stc)
    return ActivityOptions(s2c, s2s, stc, hb, default_retry_policy(retry_policy))


def schedule_activity(
    ms: MutableState, attrs: command_pb2.ScheduleActivityTaskCommandAttributes, wft_completed_id: int, eager: bool = False
) -> history_pb2.HistoryEvent:
    """``eager``: the completing worker will run it (started by ``start_eager``), so nothing goes to matching."""
    r = ms.record
    cause = fc.WORKFLOW_TASK_FAILED_CAUSE_BAD_SCHEDULE_ACTIVITY_ATTRIBUTES
    if not attrs.activity_id:
        raise CommandError(cause, "ActivityId is not set on ScheduleActivityTaskCommand.")
    if not attrs.activity_type.name:
        raise CommandError(cause, "ActivityType is not set on ScheduleActivityTaskCommand.")
    for info in r.activities.values():
        if info.activity_id == attrs.activity_id:
            raise CommandError(
                fc.WORKFLOW_TASK_FAILED_CAUSE_SCHEDULE_ACTIVITY_DUPLICATE_ID,
                f"Activity with id {attrs.activity_id} is already running.",
            )
    run_timeout = from_dur(r.workflow_run_timeout) if r.HasField("workflow_run_timeout") else ZERO
    try:
        s2c, s2s, stc, hb, retry = normalize_activity_options(
            attrs.task_queue.name,
            [getattr(attrs, f) if attrs.HasField(f) else None for f, _ in _TIMEOUT_FIELDS],  # type: ignore[arg-type]
            attrs.retry_policy if attrs.HasField("retry_policy") else None,
            run_timeout,
        )
    except ValueError as e:
        raise CommandError(cause, str(e)) from None
    queue = attrs.task_queue.name or r.task_queue
    event_attrs = history_pb2.ActivityTaskScheduledEventAttributes(
        activity_id=attrs.activity_id,
        activity_type=attrs.activity_type,
        task_queue=ms.normal_task_queue(),
        header=attrs.header,
        input=attrs.input,
        schedule_to_close_timeout=to_dur(s2c),
        schedule_to_start_timeout=to_dur(s2s),
        start_to_close_timeout=to_dur(stc),
        heartbeat_timeout=to_dur(hb),
        workflow_task_completed_event_id=wft_completed_id,
        retry_policy=retry,
        priority=attrs.priority,
    )
    event_attrs.task_queue.name = queue
    ev = ms.append(event_attrs)
    info = state_pb2.ActivityInfo(
        scheduled_event_id=ev.event_id,
        activity_id=attrs.activity_id,
        activity_type=attrs.activity_type.name,
        task_queue=queue,
        scheduled_time=ev.event_time,
        current_attempt_scheduled_time=ev.event_time,
        schedule_to_close_timeout=to_dur(s2c),
        schedule_to_start_timeout=to_dur(s2s),
        start_to_close_timeout=to_dur(stc),
        heartbeat_timeout=to_dur(hb),
        retry_policy=retry,
        attempt=1,
        stamp=ms.next_stamp(),
        priority=attrs.priority if attrs.HasField("priority") else None,
    )
    r.activities[ev.event_id].CopyFrom(info)
    if not eager:
        _dispatch_attempt(ms, r.activities[ev.event_id])
    if s2c > ZERO:
        ms.add_timer_task(
            T.HISTORY_TASK_TYPE_ACTIVITY_TIMEOUT, ms.now + s2c, event_id=ev.event_id, timeout_type=TO.TIMEOUT_TYPE_SCHEDULE_TO_CLOSE
        )
    return ev


def _dispatch_attempt(ms: MutableState, info: state_pb2.ActivityInfo) -> None:
    """Push the current attempt to matching and arm its schedule-to-start timer."""
    ms.add_task(
        TaskCategory.TRANSFER,
        T.HISTORY_TASK_TYPE_ACTIVITY_TASK,
        event_id=info.scheduled_event_id,
        attempt=info.attempt,
        stamp=info.stamp,
        schedule_to_start_timeout=info.schedule_to_start_timeout,
    )
    s2s = from_dur(info.schedule_to_start_timeout)
    if s2s > ZERO:
        ms.add_timer_task(
            T.HISTORY_TASK_TYPE_ACTIVITY_TIMEOUT,
            ms.now + s2s,
            event_id=info.scheduled_event_id,
            attempt=info.attempt,
            stamp=info.stamp,
            timeout_type=TO.TIMEOUT_TYPE_SCHEDULE_TO_START,
        )


def start_activity(ms: MutableState, info: state_pb2.ActivityInfo, request_id: str, identity: str) -> None:
    info.started = True
    info.started_time.CopyFrom(to_ts(ms.now))
    info.started_request_id = request_id
    info.started_identity = identity
    info.last_worker_identity = identity
    ms.dirty = True
    stc = from_dur(info.start_to_close_timeout)
    if stc > ZERO:
        ms.add_timer_task(
            T.HISTORY_TASK_TYPE_ACTIVITY_TIMEOUT,
            ms.now + stc,
            event_id=info.scheduled_event_id,
            attempt=info.attempt,
            stamp=info.stamp,
            timeout_type=TO.TIMEOUT_TYPE_START_TO_CLOSE,
        )
    _arm_heartbeat(ms, info, ms.now)


def start_eager(ms: MutableState, scheduled_event_id: int, request_id: str, identity: str) -> state_pb2.ActivityInfo | None:
    """Start an activity scheduled with request_eager_execution once all commands are applied; None if the same
    completion already cancelled it (then it needs no task at all)."""
    info = ms.record.activities.get(scheduled_event_id)
    if info is None or info.started:
        return None
    start_activity(ms, info, request_id, identity)
    return info


def _arm_heartbeat(ms: MutableState, info: state_pb2.ActivityInfo, since: datetime) -> None:
    hb = from_dur(info.heartbeat_timeout)
    if hb > ZERO:
        ms.add_timer_task(
            T.HISTORY_TASK_TYPE_ACTIVITY_TIMEOUT,
            since + hb,
            event_id=info.scheduled_event_id,
            attempt=info.attempt,
            stamp=info.stamp,
            timeout_type=TO.TIMEOUT_TYPE_HEARTBEAT,
        )


def _write_started(ms: MutableState, info: state_pb2.ActivityInfo) -> int:
    """The lazy ActivityTaskStarted (4.3), written right before the terminal event; returns its id (0 if none)."""
    if not info.started:
        return 0
    attrs = history_pb2.ActivityTaskStartedEventAttributes(
        scheduled_event_id=info.scheduled_event_id,
        identity=info.started_identity,
        request_id=info.started_request_id,
        attempt=info.attempt,
    )
    if info.HasField("last_failure"):
        attrs.last_failure.CopyFrom(info.last_failure)
    ev = ms.append(attrs, from_ts(info.started_time))
    return ev.event_id


def _finish(ms: MutableState, info: state_pb2.ActivityInfo, build: object) -> None:
    """Write Started + terminal event (buffered together if a WFT is running), drop the activity, ensure a WFT."""
    sched = info.scheduled_event_id
    if ms.wft_started:
        # Buffer both: they get ids at flush time, Started first.
        started_attrs = None
        if info.started:
            started_attrs = history_pb2.ActivityTaskStartedEventAttributes(
                scheduled_event_id=sched,
                identity=info.started_identity,
                request_id=info.started_request_id,
                attempt=info.attempt,
                last_failure=info.last_failure if info.HasField("last_failure") else None,
            )
        _buffer_pair(ms, started_attrs, build, info)
    else:
        started_id = _write_started(ms, info)
        ms.append(build(started_id))  # type: ignore[operator]
    del ms.record.activities[sched]
    ms.ensure_workflow_task()


def _buffer_pair(ms: MutableState, started_attrs: object, build: object, info: state_pb2.ActivityInfo) -> None:
    # Buffered events have no ids yet; a terminal event's started_event_id of -1 is patched at flush time to
    # the event just before it (flush assigns consecutive ids).
    if started_attrs is not None:
        ms.record.buffered_events.append(make_event(started_attrs, from_ts(info.started_time)))  # type: ignore[arg-type]
        terminal = make_event(build(-1), ms.now)  # type: ignore[operator]
    else:
        terminal = make_event(build(0), ms.now)  # type: ignore[operator]
    ms.record.buffered_events.append(terminal)
    ms.dirty = True


def complete_activity(ms: MutableState, info: state_pb2.ActivityInfo, result: common_pb2.Payloads | None, identity: str) -> None:
    def build(started_id: int) -> history_pb2.ActivityTaskCompletedEventAttributes:
        a = history_pb2.ActivityTaskCompletedEventAttributes(
            scheduled_event_id=info.scheduled_event_id, started_event_id=started_id, identity=identity
        )
        if result is not None:
            a.result.CopyFrom(result)
        return a

    _finish(ms, info, build)


def cancel_activity_completed(ms: MutableState, info: state_pb2.ActivityInfo, details: common_pb2.Payloads | None, identity: str) -> None:
    def build(started_id: int) -> history_pb2.ActivityTaskCanceledEventAttributes:
        a = history_pb2.ActivityTaskCanceledEventAttributes(
            scheduled_event_id=info.scheduled_event_id,
            started_event_id=started_id,
            latest_cancel_requested_event_id=info.cancel_requested_event_id,
            identity=identity,
        )
        if details is not None:
            a.details.CopyFrom(details)
        return a

    _finish(ms, info, build)


def _is_retryable(info: state_pb2.ActivityInfo, failure: failure_pb2.Failure) -> bool:
    if info.cancel_requested:
        return False
    if failure.HasField("canceled_failure_info") or failure.HasField("terminated_failure_info"):
        return False
    non_retryable = set(info.retry_policy.non_retryable_error_types)
    if failure.HasField("application_failure_info"):
        app = failure.application_failure_info
        if app.non_retryable or app.type in non_retryable:
            return False
    if failure.HasField("timeout_failure_info"):
        tt = failure.timeout_failure_info.timeout_type
        if tt in (TO.TIMEOUT_TYPE_SCHEDULE_TO_START, TO.TIMEOUT_TYPE_SCHEDULE_TO_CLOSE):
            return False
        name = {TO.TIMEOUT_TYPE_START_TO_CLOSE: "TemporalTimeout:StartToClose", TO.TIMEOUT_TYPE_HEARTBEAT: "TemporalTimeout:Heartbeat"}
        if name.get(tt) in non_retryable:
            return False
    return True


def _next_backoff(info: state_pb2.ActivityInfo, failure: failure_pb2.Failure, now: datetime) -> tuple[Any, timedelta]:
    """(retry_state, backoff): RETRY_STATE_IN_PROGRESS with a delay, or the reason retrying stops."""
    rp = info.retry_policy
    if not _is_retryable(info, failure):
        return RS.RETRY_STATE_NON_RETRYABLE_FAILURE, ZERO
    if rp.maximum_attempts > 0 and info.attempt >= rp.maximum_attempts:
        return RS.RETRY_STATE_MAXIMUM_ATTEMPTS_REACHED, ZERO
    initial = from_dur(rp.initial_interval)
    backoff = initial * (rp.backoff_coefficient ** (info.attempt - 1))
    backoff = min(backoff, from_dur(rp.maximum_interval))
    if failure.HasField("application_failure_info") and failure.application_failure_info.HasField("next_retry_delay"):
        backoff = from_dur(failure.application_failure_info.next_retry_delay)
    s2c = from_dur(info.schedule_to_close_timeout)
    if s2c > ZERO and now + backoff >= from_ts(info.scheduled_time) + s2c:
        return RS.RETRY_STATE_TIMEOUT, ZERO
    return RS.RETRY_STATE_IN_PROGRESS, backoff


def _retry(ms: MutableState, info: state_pb2.ActivityInfo, failure: failure_pb2.Failure, backoff: timedelta) -> None:
    info.attempt += 1
    info.stamp = ms.next_stamp()
    info.started = False
    info.ClearField("started_time")
    info.started_request_id = ""
    info.last_failure.CopyFrom(failure)
    info.last_attempt_complete_time.CopyFrom(to_ts(ms.now))
    info.current_attempt_scheduled_time.CopyFrom(to_ts(ms.now + backoff))
    if info.reset_heartbeats:  # ResetActivity(reset_heartbeat) applies to the next attempt
        info.ClearField("heartbeat_details")
        info.ClearField("last_heartbeat_time")
    info.activity_reset = info.reset_heartbeats = False
    ms.dirty = True
    if info.paused:
        return  # PauseActivity: no new attempt until UnpauseActivity schedules one
    ms.add_timer_task(
        T.HISTORY_TASK_TYPE_ACTIVITY_RETRY_TIMER,
        ms.now + backoff,
        event_id=info.scheduled_event_id,
        attempt=info.attempt,
        stamp=info.stamp,
    )


def retry_timer_fired(ms: MutableState, info: state_pb2.ActivityInfo) -> None:
    _dispatch_attempt(ms, info)


def fail_activity(
    ms: MutableState,
    info: state_pb2.ActivityInfo,
    failure: failure_pb2.Failure,
    identity: str,
    last_heartbeat_details: common_pb2.Payloads | None,
) -> bool:
    """Returns True if the activity will be retried (no events written)."""
    if last_heartbeat_details is not None:
        info.heartbeat_details.CopyFrom(last_heartbeat_details)
    state, backoff = _next_backoff(info, failure, ms.now)
    if state == RS.RETRY_STATE_IN_PROGRESS:
        _retry(ms, info, failure, backoff)
        return True

    def build(started_id: int) -> history_pb2.ActivityTaskFailedEventAttributes:
        return history_pb2.ActivityTaskFailedEventAttributes(
            failure=failure,
            scheduled_event_id=info.scheduled_event_id,
            started_event_id=started_id,
            identity=identity,
            retry_state=state,
        )

    _finish(ms, info, build)
    return False


def timeout_activity(ms: MutableState, info: state_pb2.ActivityInfo, timeout_type: int) -> bool:
    """Apply a timeout that is still valid; returns True if retried."""
    failure = failure_pb2.Failure()
    messages: dict[Any, str] = {
        TO.TIMEOUT_TYPE_START_TO_CLOSE: "activity StartToClose timeout",
        TO.TIMEOUT_TYPE_SCHEDULE_TO_START: "activity ScheduleToStart timeout",
        TO.TIMEOUT_TYPE_SCHEDULE_TO_CLOSE: "activity ScheduleToClose timeout",
        TO.TIMEOUT_TYPE_HEARTBEAT: "activity Heartbeat timeout",
    }
    failure.message = messages[timeout_type]
    failure.timeout_failure_info.timeout_type = timeout_type  # type: ignore[assignment]
    if info.HasField("heartbeat_details"):
        failure.timeout_failure_info.last_heartbeat_details.CopyFrom(info.heartbeat_details)
    if timeout_type in (TO.TIMEOUT_TYPE_START_TO_CLOSE, TO.TIMEOUT_TYPE_HEARTBEAT):
        state, backoff = _next_backoff(info, failure, ms.now)
        if state == RS.RETRY_STATE_IN_PROGRESS:
            _retry(ms, info, failure, backoff)
            return True
    else:
        state = RS.RETRY_STATE_TIMEOUT  # type: ignore[assignment]
    if info.HasField("last_failure") and timeout_type != TO.TIMEOUT_TYPE_START_TO_CLOSE:
        failure.cause.CopyFrom(info.last_failure)

    def build(started_id: int) -> history_pb2.ActivityTaskTimedOutEventAttributes:
        return history_pb2.ActivityTaskTimedOutEventAttributes(
            failure=failure, scheduled_event_id=info.scheduled_event_id, started_event_id=started_id, retry_state=state
        )

    _finish(ms, info, build)
    return False


def timeout_deadline(info: state_pb2.ActivityInfo, timeout_type: int) -> datetime | None:
    """When the timeout of that type expires by the activity's stored options (None: no such timeout);
    UpdateActivityOptions changes them, so a timer re-checks this rather than trusting its own fire time."""
    if timeout_type == TO.TIMEOUT_TYPE_SCHEDULE_TO_CLOSE:
        since, d = from_ts(info.scheduled_time), info.schedule_to_close_timeout
    elif timeout_type == TO.TIMEOUT_TYPE_SCHEDULE_TO_START:
        since, d = from_ts(info.current_attempt_scheduled_time), info.schedule_to_start_timeout
    elif timeout_type == TO.TIMEOUT_TYPE_START_TO_CLOSE:
        since, d = from_ts(info.started_time), info.start_to_close_timeout
    else:
        since, d = from_ts(info.started_time), info.heartbeat_timeout
        if info.HasField("last_heartbeat_time"):
            since = max(since, from_ts(info.last_heartbeat_time))
    dur = from_dur(d)
    return since + dur if dur > ZERO else None


def arm_timeout(ms: MutableState, info: state_pb2.ActivityInfo, timeout_type: int, when: datetime) -> None:
    """A timeout timer of the current attempt (schedule-to-close spans all attempts, so it carries none)."""
    if timeout_type == TO.TIMEOUT_TYPE_SCHEDULE_TO_CLOSE:
        ms.add_timer_task(T.HISTORY_TASK_TYPE_ACTIVITY_TIMEOUT, when, event_id=info.scheduled_event_id, timeout_type=timeout_type)
    else:
        ms.add_timer_task(
            T.HISTORY_TASK_TYPE_ACTIVITY_TIMEOUT, when, event_id=info.scheduled_event_id, attempt=info.attempt, stamp=info.stamp,
            timeout_type=timeout_type,
        )


def activity_timer_fired(ms: MutableState, task: state_pb2.HistoryTaskInfo) -> None:
    """Re-validate an ACTIVITY_TIMEOUT task against mutable state (invariant 5) and apply it."""
    info = ms.record.activities.get(task.event_id)
    if info is None or not ms.running:
        return
    tt = task.timeout_type
    if tt != TO.TIMEOUT_TYPE_SCHEDULE_TO_CLOSE:
        if task.attempt != info.attempt or task.stamp != info.stamp:
            return
        if info.started != (tt != TO.TIMEOUT_TYPE_SCHEDULE_TO_START):
            return
    deadline = timeout_deadline(info, tt)
    if deadline is None:
        return  # the timeout was removed (UpdateActivityOptions)
    if deadline > ms.now:
        arm_timeout(ms, info, tt, deadline)  # heartbeats arrived or the timeout was lengthened: check again later
        ms.dirty = True
    else:
        timeout_activity(ms, info, tt)


def heartbeat(ms: MutableState, info: state_pb2.ActivityInfo, details: common_pb2.Payloads | None, identity: str) -> bool:
    if details is not None:
        info.heartbeat_details.CopyFrom(details)
    info.last_heartbeat_time.CopyFrom(to_ts(ms.now))
    if identity:
        info.last_worker_identity = identity
    ms.dirty = True
    return info.cancel_requested


def request_cancel(ms: MutableState, scheduled_event_id: int, wft_completed_id: int) -> bool:
    """REQUEST_CANCEL_ACTIVITY_TASK; returns True if it was cancelled at once (forces a new WFT)."""
    info = ms.record.activities.get(scheduled_event_id)
    if info is None:
        raise CommandError(
            fc.WORKFLOW_TASK_FAILED_CAUSE_BAD_REQUEST_CANCEL_ACTIVITY_ATTRIBUTES,
            f"Activity with scheduled event id {scheduled_event_id} is not pending.",
        )
    ev = ms.append(
        history_pb2.ActivityTaskCancelRequestedEventAttributes(
            scheduled_event_id=scheduled_event_id, workflow_task_completed_event_id=wft_completed_id
        )
    )
    info.cancel_requested = True
    info.cancel_requested_event_id = ev.event_id
    if info.started:
        return False
    ms.append(
        history_pb2.ActivityTaskCanceledEventAttributes(
            scheduled_event_id=scheduled_event_id, started_event_id=0, latest_cancel_requested_event_id=ev.event_id
        )
    )
    del ms.record.activities[scheduled_event_id]
    return True


def restore_scheduled_activity(ms: MutableState, ev: history_pb2.HistoryEvent, cancel_requested_event_id: int = 0) -> None:
    """An activity a reset run inherits from its copied history, pending at the cut: scheduled anew now (as
    Temporal's resetter moves its scheduled time), first attempt, dispatched again with its timeouts."""
    a = ev.activity_task_scheduled_event_attributes
    info = state_pb2.ActivityInfo(
        scheduled_event_id=ev.event_id,
        activity_id=a.activity_id,
        activity_type=a.activity_type.name,
        task_queue=a.task_queue.name,
        scheduled_time=to_ts(ms.now),
        current_attempt_scheduled_time=to_ts(ms.now),
        schedule_to_close_timeout=a.schedule_to_close_timeout,
        schedule_to_start_timeout=a.schedule_to_start_timeout,
        start_to_close_timeout=a.start_to_close_timeout,
        heartbeat_timeout=a.heartbeat_timeout,
        retry_policy=a.retry_policy if a.HasField("retry_policy") else None,
        attempt=1,
        stamp=ms.next_stamp(),
        priority=a.priority if a.HasField("priority") else None,
        cancel_requested=bool(cancel_requested_event_id),
        cancel_requested_event_id=cancel_requested_event_id,
    )
    ms.record.activities[ev.event_id].CopyFrom(info)
    _dispatch_attempt(ms, ms.record.activities[ev.event_id])
    s2c = from_dur(a.schedule_to_close_timeout)
    if s2c > ZERO:
        ms.add_timer_task(
            T.HISTORY_TASK_TYPE_ACTIVITY_TIMEOUT, ms.now + s2c, event_id=ev.event_id, timeout_type=TO.TIMEOUT_TYPE_SCHEDULE_TO_CLOSE
        )
