"""UpdateActivityOptions: an operator changes the task queue, timeouts, retry policy or priority of a run's
pending activities (by id, by type or all), or restores the options of their ActivityTaskScheduled events.

As in Temporal no history event is written: the options live in the activity's mutable state. The merged
options pass the checks of a ScheduleActivityTask command (with no run timeout, as Temporal validates them).
An activity waiting for an attempt gets a new dispatch (its stamp moves on, so the queued task or the retry
timer of the old schedule is dropped) at the time its retry policy now gives; a running attempt keeps its
stamp (its task token carries it) and gets timeout timers at the new deadlines; every activity timer
re-checks its deadline against the stored options when it fires (activities.activity_timer_fired).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from temporalio.api.activity.v1 import message_pb2 as activity_pb2
from temporalio.api.common.v1 import message_pb2 as common_pb2
from temporalio.api.enums.v1 import workflow_pb2 as wf_enums
from temporalio.api.history.v1 import message_pb2 as history_pb2
from temporalio.api.workflow.v1 import message_pb2 as workflow_pb2
from temporalio.api.workflowservice.v1 import request_response_pb2 as ws

from server.common.durations import validate_and_cap
from server.common.errors import InvalidArgument, NotFound
from server.gen.durata.internal.history.v1 import state_pb2

from ..activities import arm_timeout, normalize_activity_options, timeout_deadline
from ..api_workflow import resolve_run_id
from ..engine import Engine
from ..mutable_state import MutableState, from_dur, from_ts, to_dur
from .activity_pause import (
    ACTIVITY_NOT_FOUND,
    WORKFLOW_COMPLETED,
    _reschedule,
    _targets,
    validate_activity_request,
)

ZERO = timedelta(0)
TO = wf_enums.TimeoutType
BOTH_MASK_AND_RESTORE = "Both UpdateMask and RestoreOriginal are provided"
_TIMEOUT_PATHS = ("scheduleToCloseTimeout", "scheduleToStartTimeout", "startToCloseTimeout", "heartbeatTimeout")
_PRIORITY_PATHS = ("priorityKey", "fairnessKey", "fairnessWeight")
_RETRY_PATHS = ("initialInterval", "backoffCoefficient", "maximumInterval", "maximumAttempts")
_FAIRNESS_KEY_MAX = 64
_TIMEOUT_TYPE_PREFIX = "TemporalTimeout:"
_MAX_INTERVAL = timedelta(days=36500)  # durations are capped at 100 years


def _camel(part: str) -> str:
    head, *rest = part.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def parse_mask(paths: Iterable[str]) -> set[str]:
    """Mask paths as Temporal compares them: each segment in lowerCamelCase (``retry_policy.maximum_attempts``
    and ``retryPolicy.maximumAttempts`` are the same path)."""
    return {".".join(_camel(p) for p in path.split(".")) for path in paths}


def check_priority(p: common_pb2.Priority) -> None:
    """Temporal's priorities.Validate."""
    if p.priority_key < 0:
        raise InvalidArgument("priority key can't be negative")
    if len(p.fairness_key) > _FAIRNESS_KEY_MAX:
        raise InvalidArgument("fairness key length exceeds limit")
    if p.fairness_weight < 0:
        raise InvalidArgument("must be greater than zero")


def validate_request(req: ws.UpdateActivityOptionsRequest) -> None:
    """The frontend's checks before History."""
    validate_activity_request(req)
    check_priority(req.activity_options.priority)


def check_retry_policy(rp: common_pb2.RetryPolicy) -> None:
    """Temporal's retrypolicy.Validate."""
    if rp.maximum_attempts == 1:
        return
    if validate_and_cap(rp.initial_interval) is not None:
        raise InvalidArgument(f"invalid InitialInterval set on retry policy: {validate_and_cap(rp.initial_interval)}")
    if rp.backoff_coefficient < 1:
        raise InvalidArgument("BackoffCoefficient cannot be less than 1 on retry policy.")
    if validate_and_cap(rp.maximum_interval) is not None:
        raise InvalidArgument(f"invalid MaximumInterval set on retry policy: {validate_and_cap(rp.maximum_interval)}")
    if ZERO < from_dur(rp.maximum_interval) < from_dur(rp.initial_interval):
        raise InvalidArgument("MaximumInterval cannot be less than InitialInterval on retry policy.")
    if rp.maximum_attempts < 0:
        raise InvalidArgument("MaximumAttempts cannot be negative on retry policy.")
    names = set(TO.keys())
    for nrt in rp.non_retryable_error_types:
        if nrt.startswith(_TIMEOUT_TYPE_PREFIX):
            value = nrt[len(_TIMEOUT_TYPE_PREFIX):]
            if f"TIMEOUT_TYPE_{value}" not in names or value == "UNSPECIFIED":
                raise InvalidArgument(f"Invalid timeout type value: {value}.")


def _with_defaults(rp: common_pb2.RetryPolicy) -> common_pb2.RetryPolicy:
    out = common_pb2.RetryPolicy()
    out.CopyFrom(rp)
    if out.backoff_coefficient == 0:
        out.backoff_coefficient = 2.0
    if from_dur(out.initial_interval) == ZERO:
        out.initial_interval.FromSeconds(1)
    if from_dur(out.maximum_interval) == ZERO:
        out.maximum_interval.FromTimedelta(from_dur(out.initial_interval) * 100)
    return out


def current_options(info: state_pb2.ActivityInfo) -> activity_pb2.ActivityOptions:
    """What the activity runs with now (the retry policy without its non-retryable types, as Temporal gives it)."""
    rp = info.retry_policy
    opts = activity_pb2.ActivityOptions(
        schedule_to_close_timeout=info.schedule_to_close_timeout,
        schedule_to_start_timeout=info.schedule_to_start_timeout,
        start_to_close_timeout=info.start_to_close_timeout,
        heartbeat_timeout=info.heartbeat_timeout,
        retry_policy=common_pb2.RetryPolicy(
            initial_interval=rp.initial_interval if rp.HasField("initial_interval") else None,
            backoff_coefficient=rp.backoff_coefficient,
            maximum_interval=rp.maximum_interval if rp.HasField("maximum_interval") else None,
            maximum_attempts=rp.maximum_attempts,
        ),
    )
    opts.task_queue.name = info.task_queue
    if info.HasField("priority"):
        opts.priority.CopyFrom(info.priority)
    return opts


def _copy_field(into: object, frm: object, name: str) -> None:
    if frm.HasField(name):  # type: ignore[attr-defined]
        getattr(into, name).CopyFrom(getattr(frm, name))
    else:
        into.ClearField(name)  # type: ignore[attr-defined]


def merge(into: activity_pb2.ActivityOptions, frm: activity_pb2.ActivityOptions, fields: set[str]) -> None:
    """Temporal's MergeActivityOptions: the masked fields of ``frm`` into ``into``; other paths are ignored."""
    if "taskQueue.name" in fields:
        if not frm.HasField("task_queue"):
            raise InvalidArgument("TaskQueue is not provided")
        into.task_queue.name = frm.task_queue.name
    for path, name in zip(_TIMEOUT_PATHS, ("schedule_to_close_timeout", "schedule_to_start_timeout",
                                           "start_to_close_timeout", "heartbeat_timeout"), strict=True):
        if path in fields:
            _copy_field(into, frm, name)
    if "priority" in fields:
        _copy_field(into, frm, "priority")
    for path, name in zip(_PRIORITY_PATHS, ("priority_key", "fairness_key", "fairness_weight"), strict=True):
        if f"priority.{path}" in fields:
            if not frm.HasField("priority"):
                raise InvalidArgument("Priority is not provided")
            setattr(into.priority, name, getattr(frm.priority, name))
    if "retryPolicy" in fields:
        if not frm.HasField("retry_policy"):
            raise InvalidArgument("RetryPolicy is not provided")
        into.retry_policy.CopyFrom(frm.retry_policy)
    for path, name in zip(_RETRY_PATHS, ("initial_interval", "backoff_coefficient", "maximum_interval", "maximum_attempts"),
                          strict=True):
        if f"retryPolicy.{path}" in fields:
            if not frm.HasField("retry_policy"):
                raise InvalidArgument("RetryPolicy is not provided")
            if name in ("initial_interval", "maximum_interval"):
                _copy_field(into.retry_policy, frm.retry_policy, name)
            else:
                setattr(into.retry_policy, name, getattr(frm.retry_policy, name))
    if "startDelay" in fields:
        _copy_field(into, frm, "start_delay")  # accepted, not applied to a pending activity (as in Temporal)


def _timeouts(o: activity_pb2.ActivityOptions | history_pb2.ActivityTaskScheduledEventAttributes) -> list[object]:
    return [getattr(o, n) if o.HasField(n) else None for n in (
        "schedule_to_close_timeout", "schedule_to_start_timeout", "start_to_close_timeout", "heartbeat_timeout")]


def adjust(info: state_pb2.ActivityInfo, opts: activity_pb2.ActivityOptions) -> common_pb2.RetryPolicy:
    """Validate and normalize the merged options in place (ScheduleActivityTask's checks, no run timeout);
    returns the retry policy to store (defaults filled, the activity's non-retryable types kept)."""
    try:
        norm = normalize_activity_options(opts.task_queue.name, _timeouts(opts), opts.retry_policy, ZERO)  # type: ignore[arg-type]
    except ValueError as e:
        raise InvalidArgument(str(e)) from None
    for name, d in zip(("schedule_to_close_timeout", "schedule_to_start_timeout", "start_to_close_timeout", "heartbeat_timeout"),
                       norm[:4], strict=True):
        getattr(opts, name).CopyFrom(to_dur(d))
    stored = common_pb2.RetryPolicy()
    stored.CopyFrom(norm.retry_policy)
    del stored.non_retryable_error_types[:]
    stored.non_retryable_error_types.extend(info.retry_policy.non_retryable_error_types)
    return stored


def next_scheduled_time(info: state_pb2.ActivityInfo) -> datetime:
    """When the pending attempt is due by the (new) retry policy: the first attempt at its schedule time, a
    retry one backoff after the previous attempt ended (Temporal's GetNextScheduledTime)."""
    when = from_ts(info.scheduled_time)
    if info.attempt > 1:
        rp = info.retry_policy
        try:
            interval = min(from_dur(rp.initial_interval) * (rp.backoff_coefficient ** (info.attempt - 1)), _MAX_INTERVAL)
        except OverflowError:
            interval = _MAX_INTERVAL
        max_interval = from_dur(rp.maximum_interval)
        if max_interval > ZERO and (interval <= ZERO or interval > max_interval):
            interval = max_interval
        if interval > ZERO:
            base = info.last_attempt_complete_time if info.HasField("last_attempt_complete_time") else info.current_attempt_scheduled_time
            when = from_ts(base) + interval
    return when


def _store(ms: MutableState, info: state_pb2.ActivityInfo, opts: activity_pb2.ActivityOptions, retry: common_pb2.RetryPolicy) -> None:
    info.task_queue = opts.task_queue.name
    for name in ("schedule_to_close_timeout", "schedule_to_start_timeout", "start_to_close_timeout", "heartbeat_timeout"):
        getattr(info, name).CopyFrom(getattr(opts, name))
    info.priority.CopyFrom(opts.priority)
    info.retry_policy.CopyFrom(retry)
    ms.dirty = True


def _arm_timeouts(ms: MutableState, info: state_pb2.ActivityInfo) -> None:
    """Timers at the deadlines the stored options give (the older timers re-check and step aside)."""
    kinds = [TO.TIMEOUT_TYPE_SCHEDULE_TO_CLOSE]
    if info.started:
        kinds += [TO.TIMEOUT_TYPE_START_TO_CLOSE, TO.TIMEOUT_TYPE_HEARTBEAT]
    for tt in kinds:
        deadline = timeout_deadline(info, tt)
        if deadline is not None:
            arm_timeout(ms, info, tt, deadline)


def apply_options(
    ms: MutableState, info: state_pb2.ActivityInfo, opts: activity_pb2.ActivityOptions, retry: common_pb2.RetryPolicy
) -> None:
    """Store the options and make the pending attempt follow them. A running attempt keeps its stamp (its task
    token carries it); a waiting one is scheduled anew (its schedule-to-start timer comes with the dispatch)."""
    _store(ms, info, opts, retry)
    if not info.started:
        if info.paused:
            info.stamp = ms.next_stamp()  # no attempt until UnpauseActivity schedules one
        else:
            _reschedule(ms, info, ZERO, at=next_scheduled_time(info))
    _arm_timeouts(ms, info)


def apply_original(ms: MutableState, info: state_pb2.ActivityInfo, a: history_pb2.ActivityTaskScheduledEventAttributes) -> None:
    """ResetActivity(restore_original_options): the Scheduled event's options; the reset schedules the attempt."""
    opts = original_options(a)
    _store(ms, info, opts, opts.retry_policy)
    _arm_timeouts(ms, info)


def update(ms: MutableState, req: ws.UpdateActivityOptionsRequest) -> activity_pb2.ActivityOptions:
    """The merge path (no restore_original); all activities are checked before any changes."""
    if not ms.running:
        raise NotFound(WORKFLOW_COMPLETED)
    if not req.HasField("activity_options"):
        raise InvalidArgument("ActivityOptions are not provided")
    by_id = req.WhichOneof("activity") == "id"
    found = [] if by_id else _targets(ms, req)
    if not req.HasField("update_mask"):
        raise InvalidArgument("UpdateMask is not provided")
    if by_id:
        found = _targets(ms, req)
    fields = parse_mask(req.update_mask.paths)
    plans = []
    for info in found:
        opts = current_options(info)
        merge(opts, req.activity_options, fields)
        if any(f.startswith("retryPolicy.") for f in fields):
            check_retry_policy(opts.retry_policy)
        elif "retryPolicy" in fields:  # a whole new policy: its unset fields defaulted first (Temporal skips this check)
            check_retry_policy(_with_defaults(opts.retry_policy))
        plans.append((info, opts, adjust(info, opts)))
    for info, opts, retry in plans:
        apply_options(ms, info, opts, retry)
    return plans[-1][1]


def original_options(a: history_pb2.ActivityTaskScheduledEventAttributes) -> activity_pb2.ActivityOptions:
    opts = activity_pb2.ActivityOptions(
        schedule_to_close_timeout=a.schedule_to_close_timeout,
        schedule_to_start_timeout=a.schedule_to_start_timeout,
        start_to_close_timeout=a.start_to_close_timeout,
        heartbeat_timeout=a.heartbeat_timeout,
        retry_policy=a.retry_policy,
        priority=a.priority,
    )
    opts.task_queue.name = a.task_queue.name
    return opts


def restore(
    ms: MutableState, infos: list[state_pb2.ActivityInfo], scheduled: dict[int, history_pb2.ActivityTaskScheduledEventAttributes]
) -> activity_pb2.ActivityOptions | None:
    """Put the options of each activity's ActivityTaskScheduled event back."""
    out = None
    for info in infos:
        out = original_options(scheduled[info.scheduled_event_id])
        retry = common_pb2.RetryPolicy()
        retry.CopyFrom(out.retry_policy)
        apply_options(ms, info, out, retry)
    return out


async def locked_with_scheduled_events(
    engine: Engine,
    namespace_id: str,
    execution: object,
    targets: Callable[[MutableState], list[state_pb2.ActivityInfo]],
    fn: Callable[[MutableState, dict[int, history_pb2.ActivityTaskScheduledEventAttributes]], object],
) -> object:
    """Under the run's lock: read the ActivityTaskScheduled events of the activities ``targets`` names, then
    one update of the run with ``fn`` (the events cannot change in between)."""
    wf_id = execution.workflow_id  # type: ignore[attr-defined]
    shard = engine.shard(namespace_id, wf_id)
    run_id = await resolve_run_id(engine, shard, namespace_id, execution)  # type: ignore[arg-type]
    async with shard.lock(namespace_id, wf_id):
        ms = await shard.load(namespace_id, wf_id, run_id)
        if ms is None:
            raise NotFound(f"Workflow execution not found: {wf_id}/{run_id}")
        scheduled: dict[int, history_pb2.ActivityTaskScheduledEventAttributes] = {}
        for info in targets(ms):
            sid = info.scheduled_event_id
            events = await engine.read_events(shard, namespace_id, wf_id, run_id, sid, sid + 1)
            if not events or not events[0].HasField("activity_task_scheduled_event_attributes"):
                raise InvalidArgument("ActivityTaskScheduledEvent is invalid")
            scheduled[sid] = events[0].activity_task_scheduled_event_attributes
        result, _ = await shard.update_run(namespace_id, wf_id, run_id, lambda m: fn(m, scheduled), locked=True)
        return result


def _restore_targets(req: ws.UpdateActivityOptionsRequest) -> Callable[[MutableState], list[state_pb2.ActivityInfo]]:
    def targets(ms: MutableState) -> list[state_pb2.ActivityInfo]:
        if not ms.running:
            raise NotFound(ACTIVITY_NOT_FOUND)  # a closed run has no pending activities
        return _targets(ms, req)

    return targets


async def update_activity_options(engine: Engine, namespace_id: str, req: ws.UpdateActivityOptionsRequest) -> ws.UpdateActivityOptionsResponse:
    if req.restore_original and req.HasField("update_mask") and req.update_mask.paths:
        raise InvalidArgument(BOTH_MASK_AND_RESTORE)
    if req.restore_original:
        targets = _restore_targets(req)
        result = await locked_with_scheduled_events(
            engine, namespace_id, req.execution, targets, lambda ms, scheduled: restore(ms, targets(ms), scheduled)
        )
    else:
        shard = engine.shard(namespace_id, req.execution.workflow_id)
        run_id = await resolve_run_id(engine, shard, namespace_id, req.execution)
        result, _ = await shard.update_run(namespace_id, req.execution.workflow_id, run_id, lambda ms: update(ms, req))
    resp = ws.UpdateActivityOptionsResponse()
    if result is not None:
        resp.activity_options.CopyFrom(result)  # type: ignore[arg-type]
    return resp


def describe_options(ms: MutableState, info: state_pb2.ActivityInfo, pa: workflow_pb2.PendingActivityInfo) -> None:
    """Describe: the options the activity runs with, its priority and, while it waits for a retry, when the
    next attempt is due (as Temporal's GetPendingActivityInfo)."""
    opts = current_options(info)
    opts.task_queue.normal_name = info.task_queue
    pa.activity_options.CopyFrom(opts)
    if info.HasField("priority"):
        pa.priority.CopyFrom(info.priority)
    if info.HasField("last_attempt_complete_time"):
        pa.last_attempt_complete_time.CopyFrom(info.last_attempt_complete_time)
    due = from_ts(info.current_attempt_scheduled_time)
    if not info.started and not info.paused and ms.now < due:
        pa.next_attempt_schedule_time.CopyFrom(info.current_attempt_scheduled_time)
        if info.HasField("last_attempt_complete_time"):
            pa.current_retry_interval.CopyFrom(to_dur(due - from_ts(info.last_attempt_complete_time)))
