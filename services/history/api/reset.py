"""ResetWorkflowExecution: a new run of the same workflow id whose history is the base run's history up to a
workflow task, then that task failed with RESET_WORKFLOW, the signals received after the cut re-applied and a
new workflow task. The current run (if still open) is terminated in the same transaction, so the new run and
the termination commit together (same workflow id, same shard)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio.api.enums.v1 import event_type_pb2, failed_cause_pb2
from temporalio.api.enums.v1 import reset_pb2 as reset_enums
from temporalio.api.enums.v1 import update_pb2 as update_enums
from temporalio.api.enums.v1 import workflow_pb2 as wf_enums
from temporalio.api.failure.v1 import message_pb2 as failure_pb2
from temporalio.api.history.v1 import message_pb2 as history_pb2
from temporalio.api.workflowservice.v1 import request_response_pb2 as ws

from server.common.errors import ConditionFailed, CurrentRunConflict, InvalidArgument, NotFound, Unavailable
from server.common.ids import new_run_id
from server.gen.durata.internal.history.v1 import state_pb2
from server.persistence.interface import CurrentRunMode, TaskCategory

from .. import activities, commands, reset_points, workflow_ops
from ..engine import Engine
from ..mutable_state import STATE_RUNNING, MutableState, T, from_dur, from_ts, to_dur, to_ts
from ..shard import ShardContext
from . import reset_children, workflow_options

E = event_type_pb2.EventType
RESETTER_IDENTITY = "history-resetter"  # identity on the terminated event, as Temporal's resetter
HISTORY_IDENTITY = "history-service"  # identity on the synthetic WFT started/failed events
ZERO = timedelta(0)

_ACTIVITY_CLOSE = {
    E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: "activity_task_completed_event_attributes",
    E.EVENT_TYPE_ACTIVITY_TASK_FAILED: "activity_task_failed_event_attributes",
    E.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: "activity_task_timed_out_event_attributes",
    E.EVENT_TYPE_ACTIVITY_TASK_CANCELED: "activity_task_canceled_event_attributes",
}
_TIMER_CLOSE = {
    E.EVENT_TYPE_TIMER_FIRED: "timer_fired_event_attributes",
    E.EVENT_TYPE_TIMER_CANCELED: "timer_canceled_event_attributes",
}
# The events that close a child (reset_children's re-applied child events, but Started).
_CHILD_CLOSE = {
    t: a for t, a in reset_children.CHILD_EVENTS.items() if t != E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED
}
_EXTERNAL_CLOSE = {
    E.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED: "signal_external_workflow_execution_failed_event_attributes",
    E.EVENT_TYPE_EXTERNAL_WORKFLOW_EXECUTION_SIGNALED: "external_workflow_execution_signaled_event_attributes",
    E.EVENT_TYPE_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED:
        "request_cancel_external_workflow_execution_failed_event_attributes",
    E.EVENT_TYPE_EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED: "external_workflow_execution_cancel_requested_event_attributes",
}
_EXTERNAL_OPEN = {
    E.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED,
    E.EVENT_TYPE_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED,
}


@dataclass
class _Scan:
    """What the copied prefix of the base history leaves open at the cut."""

    activities: set[int] = field(default_factory=set)
    timers: set[int] = field(default_factory=set)
    children: set[int] = field(default_factory=set)
    externals: set[int] = field(default_factory=set)
    # Every update the prefix knows (admitted from history, accepted, completed): its ids stay deduplicated, and
    # one accepted but not completed at the cut lives on (the worker's replay resumes its handler).
    update_infos: dict[str, state_pb2.UpdateInfo] = field(default_factory=dict)
    last_completed_started_id: int = 0
    cancel_requested: bool = False
    signal_request_ids: list[str] = field(default_factory=list)


def _scan(events: list[history_pb2.HistoryEvent]) -> _Scan:
    s = _Scan()
    for ev in events:
        t = ev.event_type
        if t == E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            s.activities.add(ev.event_id)
        elif t in _ACTIVITY_CLOSE:
            s.activities.discard(getattr(ev, _ACTIVITY_CLOSE[t]).scheduled_event_id)
        elif t == E.EVENT_TYPE_TIMER_STARTED:
            s.timers.add(ev.event_id)
        elif t in _TIMER_CLOSE:
            s.timers.discard(getattr(ev, _TIMER_CLOSE[t]).started_event_id)
        elif t == E.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
            s.children.add(ev.event_id)
        elif t in _CHILD_CLOSE:
            s.children.discard(getattr(ev, _CHILD_CLOSE[t]).initiated_event_id)
        elif t in _EXTERNAL_OPEN:
            s.externals.add(ev.event_id)
        elif t in _EXTERNAL_CLOSE:
            s.externals.discard(getattr(ev, _EXTERNAL_CLOSE[t]).initiated_event_id)
        elif t == E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ADMITTED:
            uid = ev.workflow_execution_update_admitted_event_attributes.request.meta.update_id
            s.update_infos.setdefault(uid, state_pb2.UpdateInfo()).admitted_event_id = ev.event_id
        elif t == E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            uid = ev.workflow_execution_update_accepted_event_attributes.protocol_instance_id
            s.update_infos.setdefault(uid, state_pb2.UpdateInfo()).accepted_event_id = ev.event_id
        elif t == E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
            uid = ev.workflow_execution_update_completed_event_attributes.meta.update_id
            s.update_infos.setdefault(uid, state_pb2.UpdateInfo()).completed_event_id = ev.event_id
        elif t == E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            s.last_completed_started_id = ev.workflow_task_completed_event_attributes.started_event_id
        elif t == E.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED:
            s.cancel_requested = True
        elif t == E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            rid = ev.workflow_execution_signaled_event_attributes.request_id
            if rid:
                s.signal_request_ids.append(rid)
    return s


def excluded_types(req: ws.ResetWorkflowExecutionRequest) -> set[int]:
    """Event kinds not re-applied (the frontend validated the enums): RESET_REAPPLY_TYPE_NONE excludes all."""
    excluded: set[int] = {int(x) for x in req.reset_reapply_exclude_types}
    if req.reset_reapply_type == reset_enums.RESET_REAPPLY_TYPE_NONE:
        excluded |= {reset_enums.RESET_REAPPLY_EXCLUDE_TYPE_SIGNAL, reset_enums.RESET_REAPPLY_EXCLUDE_TYPE_UPDATE}
    return excluded


def _copy(ev: history_pb2.HistoryEvent) -> history_pb2.HistoryEvent:
    out = history_pb2.HistoryEvent()
    out.CopyFrom(ev)
    return out


def build_reset_run(
    base: MutableState, prefix: list[history_pb2.HistoryEvent], new_run_id: str, request_id: str, reason: str,
    reapply: list[history_pb2.HistoryEvent],
) -> MutableState:
    """Sans-IO: the new run's record, events and tasks from the copied prefix (events 1 .. finish-1)."""
    last = prefix[-1]
    if last.event_type not in (E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, E.EVENT_TYPE_WORKFLOW_TASK_STARTED):
        raise InvalidArgument(
            f"Can only reset workflow to event ID in range [WorkflowTaskScheduled +1, WorkflowTaskStarted + 1]: {last.event_id + 1}"
        )
    scan = _scan(prefix)
    b = base.record
    started = prefix[0].workflow_execution_started_event_attributes
    r = state_pb2.MutableState(
        namespace_id=b.namespace_id, workflow_id=b.workflow_id, run_id=new_run_id,
        first_execution_run_id=b.first_execution_run_id, workflow_type=b.workflow_type, task_queue=b.task_queue,
        workflow_execution_timeout=b.workflow_execution_timeout, workflow_run_timeout=b.workflow_run_timeout,
        workflow_task_timeout=b.workflow_task_timeout, has_retry_policy=b.has_retry_policy,
        memo=started.memo, search_attributes=started.search_attributes,
        state=STATE_RUNNING, status=wf_enums.WORKFLOW_EXECUTION_STATUS_RUNNING, next_event_id=1,
        start_time=b.start_time, execution_time=to_ts(base.now), attempt=b.attempt,
        first_workflow_task_backoff=to_dur(ZERO), create_request_id=request_id, cron_schedule=b.cron_schedule,
        last_completed_wft_started_event_id=scan.last_completed_started_id, cancel_requested=scan.cancel_requested,
    )
    for name in ("retry_policy", "execution_expiration_time", "user_metadata", "parent", "last_completion_result"):
        if b.HasField(name):
            getattr(r, name).CopyFrom(getattr(b, name))
    if started.HasField("priority"):  # as of the cut: the start request's, then options updates
        r.priority.CopyFrom(started.priority)
    if started.HasField("versioning_override"):
        r.versioning_override.CopyFrom(started.versioning_override)
    r.start_request_ids.append(request_id)
    r.signal_request_ids.extend(scan.signal_request_ids)
    for uid, info in scan.update_infos.items():
        r.updates[uid].CopyFrom(info)
    reset_points.carry_into_reset(b, r, last.event_id + 1)
    ms = MutableState(
        r, base.now, retention=base.retention, namespace_name=base.namespace_name,
        suggest_can_events=base.suggest_can_events, suggest_can_bytes=base.suggest_can_bytes,
    )
    for ev in prefix:
        _apply_upsert(r, ev)
        ev = _copy(ev)
        r.next_event_id = ev.event_id + 1
        r.history_size_bytes += ev.ByteSize()
        ms.new_events.append(ev)
    if last.event_type == E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
        scheduled_id = last.event_id
        started_ev = ms.append(history_pb2.WorkflowTaskStartedEventAttributes(
            scheduled_event_id=scheduled_id, identity=HISTORY_IDENTITY, request_id=str(uuid.uuid4()),
            history_size_bytes=r.history_size_bytes,
        ))
        started_id = started_ev.event_id
    else:
        scheduled_id = last.workflow_task_started_event_attributes.scheduled_event_id
        started_id = last.event_id
    failure = failure_pb2.Failure(message=reason)
    failure.reset_workflow_failure_info.SetInParent()
    ms.append(history_pb2.WorkflowTaskFailedEventAttributes(
        scheduled_event_id=scheduled_id, started_event_id=started_id,
        cause=failed_cause_pb2.WORKFLOW_TASK_FAILED_CAUSE_RESET_WORKFLOW, failure=failure, identity=HISTORY_IDENTITY,
        base_run_id=b.run_id, new_run_id=new_run_id,
    ))
    reset_children.restore_children(ms, prefix, scan.children, b)
    for ev in reapply:
        _reapply(ms, ev)
    _restore_pending(ms, prefix, scan)
    reset_children.dispatch_unstarted_children(ms)
    reset_children.restore_externals(ms, prefix, scan.externals, b)
    ms.schedule_workflow_task(1)
    run_timeout = from_dur(r.workflow_run_timeout)
    if run_timeout > ZERO:
        deadline = base.now + run_timeout
        if r.HasField("execution_expiration_time"):
            deadline = min(deadline, from_ts(r.execution_expiration_time))
        ms.add_timer_task(T.HISTORY_TASK_TYPE_WORKFLOW_RUN_TIMEOUT, deadline)
    ms.add_task(TaskCategory.VISIBILITY, T.HISTORY_TASK_TYPE_VISIBILITY_UPSERT)
    return ms


def _restore_pending(ms: MutableState, prefix: list[history_pb2.HistoryEvent], scan: _Scan) -> None:
    """What the copied history leaves open lives on in the new run, as Temporal's rebuilt mutable state: each
    pending activity is dispatched again (first attempt, scheduled now), each timer fires when it was due."""
    by_id = {ev.event_id: ev for ev in prefix}
    cancels = {
        ev.activity_task_cancel_requested_event_attributes.scheduled_event_id: ev.event_id
        for ev in prefix if ev.event_type == E.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED
    }
    for eid in sorted(scan.activities):
        activities.restore_scheduled_activity(ms, by_id[eid], cancels.get(eid, 0))
    for eid in sorted(scan.timers):
        commands.restore_timer(ms, by_id[eid])


def _apply_upsert(r: state_pb2.MutableState, ev: history_pb2.HistoryEvent) -> None:
    """Search attributes, memo, priority and versioning override as they were at the cut."""
    if ev.event_type == E.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
        for k, v in ev.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields.items():
            r.search_attributes.indexed_fields[k].CopyFrom(v)
    elif ev.event_type == E.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED:
        for k, v in ev.workflow_properties_modified_event_attributes.upserted_memo.fields.items():
            r.memo.fields[k].CopyFrom(v)
    elif ev.event_type == E.EVENT_TYPE_WORKFLOW_EXECUTION_OPTIONS_UPDATED:
        workflow_options.apply_to_record(r, ev.workflow_execution_options_updated_event_attributes)


_REAPPLIED = {
    E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED: reset_enums.RESET_REAPPLY_EXCLUDE_TYPE_SIGNAL,
    E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ADMITTED: reset_enums.RESET_REAPPLY_EXCLUDE_TYPE_UPDATE,
    E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED: reset_enums.RESET_REAPPLY_EXCLUDE_TYPE_UPDATE,
}


def reapplicable(
    events: list[history_pb2.HistoryEvent], excluded: set[int], *, children: bool = False
) -> list[history_pb2.HistoryEvent]:
    """Signals and update requests after the cut, in order, minus the excluded kinds; with ``children`` (the base
    run's own events) also its child events, for the children the reset run carries."""
    return [
        e for e in events
        if (e.event_type in _REAPPLIED and _REAPPLIED[e.event_type] not in excluded)
        or (children and e.event_type in reset_children.CHILD_EVENTS)
    ]


def _reapply(ms: MutableState, ev: history_pb2.HistoryEvent) -> None:
    """As Temporal's reapply: a signal again (once per request id); an update as a durable request, an
    UpdateAdmitted event with origin REAPPLY the worker reads from history (once per update id; an UpdateAccepted
    without its request follows an UpdateAdmitted that carries it)."""
    r = ms.record
    if ev.event_type in reset_children.CHILD_EVENTS:
        reset_children.reapply_child_event(ms, ev)
        return
    if ev.event_type == E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
        a = ev.workflow_execution_signaled_event_attributes
        if a.request_id and a.request_id in r.signal_request_ids:
            return
        ms.append(a)
        if a.request_id:
            r.signal_request_ids.append(a.request_id)
        return
    if ev.event_type == E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ADMITTED:
        request = ev.workflow_execution_update_admitted_event_attributes.request
    elif ev.workflow_execution_update_accepted_event_attributes.HasField("accepted_request"):
        request = ev.workflow_execution_update_accepted_event_attributes.accepted_request
    else:
        return
    uid = request.meta.update_id
    if uid in r.updates:
        return
    admitted = ms.append(history_pb2.WorkflowExecutionUpdateAdmittedEventAttributes(
        request=request, origin=update_enums.UPDATE_ADMITTED_EVENT_ORIGIN_REAPPLY,
    ))
    r.updates[uid].CopyFrom(state_pb2.UpdateInfo(admitted_event_id=admitted.event_id))


async def _after_cut(
    engine: Engine, shard: ShardContext, base: MutableState, finish_id: int, current: MutableState | None,
    excluded: set[int],
) -> list[history_pb2.HistoryEvent]:
    """What is re-applied (signals, update requests) of the base run after the cut and of every later run of its
    continue-as-new chain (as Temporal follows new_execution_run_id), plus signals still buffered in the current
    run."""
    b = base.record
    out = reapplicable(
        await engine.read_events(shard, b.namespace_id, b.workflow_id, b.run_id, finish_id, b.next_event_id), excluded,
        children=True,
    )
    run = base
    seen = {b.run_id}
    while run.record.status == wf_enums.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW:
        rr = run.record
        close = await engine.read_events(shard, rr.namespace_id, rr.workflow_id, rr.run_id, rr.completion_event_id,
                                         rr.completion_event_id + 1)
        nxt_id = close[0].workflow_execution_continued_as_new_event_attributes.new_execution_run_id if close else ""
        if not nxt_id or nxt_id in seen:
            break
        seen.add(nxt_id)
        nxt = await shard.load(rr.namespace_id, rr.workflow_id, nxt_id)
        if nxt is None:
            break
        out += reapplicable(
            await engine.read_events(shard, rr.namespace_id, rr.workflow_id, nxt_id, 1, nxt.record.next_event_id), excluded
        )
        run = nxt
    if current is not None and current.running and run.record.run_id == current.record.run_id:
        out += reapplicable(list(current.record.buffered_events), excluded, children=run is base)
    return out


async def _link_base(shard: ShardContext, base: MutableState, new_run_id: str) -> None:
    """A closed base run (not the run this reset terminated) learns its reset run afterwards: persistence commits
    one run update plus one new run, so this is a second write (Temporal commits the three runs together). Until
    it lands, a child's close reported to the base run is dropped as before."""
    b = base.record

    def link(ms: MutableState) -> None:
        if ms.record.reset_run_id != new_run_id:
            ms.record.reset_run_id = new_run_id
            ms.dirty = True

    try:
        await shard.update_run(b.namespace_id, b.workflow_id, b.run_id, link, locked=True)
    except NotFound:
        pass


async def reset_workflow(engine: Engine, namespace_id: str, req: ws.ResetWorkflowExecutionRequest) -> str:
    """Returns the new run id; a repeated request id returns the run it created."""
    excluded = excluded_types(req)
    wf_id = req.workflow_execution.workflow_id
    shard = engine.shard(namespace_id, wf_id)
    async with shard.lock(namespace_id, wf_id):
        for _ in range(engine.config.condition_retries):
            cur_id = await shard.current_run_id(namespace_id, wf_id)
            base_id = req.workflow_execution.run_id or cur_id
            if not base_id:
                raise NotFound(f"Workflow execution not found: {wf_id}")
            base = await shard.load(namespace_id, wf_id, base_id)
            if base is None:
                raise NotFound(f"Workflow execution not found: {wf_id}/{base_id}")
            finish = req.workflow_task_finish_event_id
            if finish <= 1 or finish >= base.record.next_event_id:
                raise InvalidArgument("Workflow task finish ID must be > 1 && <= workflow last event ID.")
            current = base if cur_id == base_id else (await shard.load(namespace_id, wf_id, cur_id) if cur_id else None)
            if current is not None and current.record.create_request_id == req.request_id:
                return current.record.run_id
            prefix = [_copy(e) for e in await engine.read_events(shard, namespace_id, wf_id, base_id, 1, finish)]
            reapply: list[history_pb2.HistoryEvent] = []
            if set(_REAPPLIED.values()) - excluded:
                reapply = await _after_cut(engine, shard, base, finish, current, excluded)
            new = build_reset_run(base, prefix, new_run_id(), req.request_id, req.reason, reapply)
            try:
                linked = current is not None and current.running and current.record.run_id == base_id
                if current is not None and current.running:
                    if linked:  # same transaction: the terminated base leaves its children to the new run
                        current.record.reset_run_id = new.record.run_id
                    workflow_ops.terminate(current, req.reason, None, RESETTER_IDENTITY)
                    try:
                        await shard.commit_update(current, new_run=new)
                    except BaseException:
                        shard.evict((namespace_id, wf_id, current.record.run_id))
                        raise
                    key = (namespace_id, wf_id, current.record.run_id)
                    engine.queries.redispatch_all(key)
                    engine.updates.drop_run(key)
                else:
                    await shard.commit_new_run(new, CurrentRunMode.SWAP, cur_id or "")
            except (ConditionFailed, CurrentRunConflict):
                continue
            if not linked:
                await _link_base(shard, base, new.record.run_id)
            return new.record.run_id
    raise Unavailable("Too many concurrent updates of the workflow; try again.")
