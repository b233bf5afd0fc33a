"""Task handshakes and worker responses: RecordWorkflowTaskStarted / RecordActivityTaskStarted (called by
Matching), RespondWorkflowTask{Completed,Failed}, activity completions and heartbeats (token and ById)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import cast

from temporalio.api.common.v1 import message_pb2 as common_pb2
from temporalio.api.enums.v1 import command_type_pb2, task_queue_pb2
from temporalio.api.history.v1 import message_pb2 as history_pb2
from temporalio.api.workflowservice.v1 import request_response_pb2 as ws

from server.common.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from server.gen.durata.internal.common.v1 import tokens_pb2
from server.gen.durata.internal.history.v1 import service_pb2 as hs
from server.gen.durata.internal.history.v1 import state_pb2

from . import activities, metrics, search_attributes, updates
from .engine import Engine
from .mutable_state import MutableState
from .shard import ShardContext
from .tokens import KIND_ACTIVITY, KIND_WORKFLOW, decode_task_token
from .workflow_task import (
    WFT_NOT_FOUND,
    CompletionResult,
    complete_workflow_task,
    fail_workflow_task,
    token_matches_wft,
)

ACTIVITY_NOT_FOUND = "Activity task not found."
CT = command_type_pb2.CommandType
# Commands that may start the next run of a chain (they need event 1 of the closing run).
CHAIN_COMMANDS = frozenset(
    {
        CT.COMMAND_TYPE_FAIL_WORKFLOW_EXECUTION,
        CT.COMMAND_TYPE_COMPLETE_WORKFLOW_EXECUTION,
        CT.COMMAND_TYPE_CONTINUE_AS_NEW_WORKFLOW_EXECUTION,
    }
)


# ---------------------------------------------------------------- workflow tasks


async def record_workflow_task_started(engine: Engine, req: hs.RecordWorkflowTaskStartedRequest) -> ws.PollWorkflowTaskQueueResponse:
    ex = req.workflow_execution
    shard = engine.shard(req.namespace_id, ex.workflow_id)
    poll_queue = req.poll_request.task_queue
    sticky_poll = poll_queue.kind == task_queue_pb2.TASK_QUEUE_KIND_STICKY
    if req.query_id:
        ms = await shard.load(req.namespace_id, ex.workflow_id, ex.run_id)
        if ms is None:
            raise NotFound("Workflow execution not found.")
        return await _query_task_response(engine, shard, req, ms, sticky_poll)

    def apply(ms: MutableState) -> bool:
        wt = ms.wft
        if not ms.running or wt.scheduled_event_id != req.scheduled_event_id or (req.stamp and wt.stamp != req.stamp):
            raise NotFound(WFT_NOT_FOUND)
        if wt.started_event_id:
            if req.request_id and wt.request_id == req.request_id:
                return False  # a retried handshake: answer the same task again
            raise AlreadyExists("Workflow task already started.")
        if sticky_poll and ms.record.sticky_task_queue != poll_queue.name:
            raise FailedPrecondition("Workflow task is no longer on this sticky queue.")
        if not sticky_poll:
            ms.clear_sticky()  # a normal poller took it: full history from now on
        ms.start_workflow_task(req.request_id, req.poll_request.identity)
        return True

    _, ms = await shard.update_run(req.namespace_id, ex.workflow_id, ex.run_id, apply)
    return await _workflow_task_response(engine, shard, req.namespace_id, ex, ms, sticky_poll)


async def _workflow_task_response(
    engine: Engine, shard: ShardContext, namespace_id: str, ex: common_pb2.WorkflowExecution, ms: MutableState, partial: bool
) -> ws.PollWorkflowTaskQueueResponse:
    """The poll response of the run's started WFT: history (partial for sticky), buffered queries, updates."""
    wt = ms.wft
    first = ms.record.last_completed_wft_started_event_id + 1 if partial else 1
    events = await engine.read_events(shard, namespace_id, ex.workflow_id, ex.run_id, first, ms.record.next_event_id)
    events += ms.transient_events()
    token = tokens_pb2.TaskToken(
        namespace_id=namespace_id,
        workflow_id=ex.workflow_id,
        run_id=ex.run_id,
        scheduled_event_id=wt.scheduled_event_id,
        started_event_id=wt.started_event_id,
        attempt=wt.attempt,
        stamp=wt.stamp,
        kind=KIND_WORKFLOW,
    )
    resp = ws.PollWorkflowTaskQueueResponse(
        task_token=token.SerializeToString(),
        workflow_execution=common_pb2.WorkflowExecution(workflow_id=ex.workflow_id, run_id=ex.run_id),
        workflow_type=common_pb2.WorkflowType(name=ms.record.workflow_type),
        previous_started_event_id=ms.record.last_completed_wft_started_event_id,
        started_event_id=wt.started_event_id,
        attempt=wt.attempt,
        history=history_pb2.History(events=events),
        workflow_execution_task_queue=ms.normal_task_queue(),
        scheduled_time=wt.scheduled_time,
        started_time=wt.started_time,
    )
    key = (namespace_id, ex.workflow_id, ex.run_id)
    for qid, q in engine.queries.pending(key).items():
        resp.queries[qid].CopyFrom(q)
    resp.messages.extend(updates.request_messages(engine.updates.deliverable(key), wt.started_event_id, wt.stamp))
    return resp


async def _query_task_response(
    engine: Engine, shard: object, req: hs.RecordWorkflowTaskStartedRequest, ms: MutableState, sticky_poll: bool
) -> ws.PollWorkflowTaskQueueResponse:
    """A legacy query task: no state change; full history unless the poller is the run's sticky worker."""
    ex = req.workflow_execution
    events: list[history_pb2.HistoryEvent] = []
    if not sticky_poll:
        events = await engine.read_events(shard, req.namespace_id, ex.workflow_id, ex.run_id, 1, ms.record.next_event_id)  # type: ignore[arg-type]
    token = tokens_pb2.QueryTaskToken(
        namespace_id=req.namespace_id, task_queue=req.poll_request.task_queue.name, query_id=req.query_id
    )
    now = engine.clock.now()
    resp = ws.PollWorkflowTaskQueueResponse(
        task_token=token.SerializeToString(),
        workflow_execution=common_pb2.WorkflowExecution(workflow_id=ex.workflow_id, run_id=ex.run_id),
        workflow_type=common_pb2.WorkflowType(name=ms.record.workflow_type),
        previous_started_event_id=ms.record.last_completed_wft_started_event_id,
        started_event_id=0,
        attempt=1,
        history=history_pb2.History(events=events),
        query=req.query,
        workflow_execution_task_queue=ms.normal_task_queue(),
    )
    resp.scheduled_time.FromDatetime(now)
    resp.started_time.FromDatetime(now)
    return resp


def _check_namespace(tok: tokens_pb2.TaskToken, namespace_id: str) -> None:
    if tok.namespace_id and namespace_id and tok.namespace_id != namespace_id:
        raise InvalidArgument("invalid task token: it belongs to another namespace")


def _wft_token(req_token: bytes, namespace_id: str) -> tokens_pb2.TaskToken:
    tok = decode_task_token(req_token)
    if tok.kind != KIND_WORKFLOW:
        raise InvalidArgument("invalid task token: not a workflow task token")
    _check_namespace(tok, namespace_id)
    return tok


async def respond_workflow_task_completed(
    engine: Engine, namespace_id: str, req: ws.RespondWorkflowTaskCompletedRequest
) -> ws.RespondWorkflowTaskCompletedResponse:
    tok = _wft_token(req.task_token, namespace_id)
    shard = engine.shard(namespace_id, tok.workflow_id)
    started_attrs = None
    if any(c.command_type in CHAIN_COMMANDS for c in req.commands):
        current = await shard.load(namespace_id, tok.workflow_id, tok.run_id)
        if current is not None and (current.record.has_retry_policy or current.record.cron_schedule or any(
            c.command_type == CT.COMMAND_TYPE_CONTINUE_AS_NEW_WORKFLOW_EXECUTION for c in req.commands
        )):
            started_attrs = await engine.started_attributes(shard, namespace_id, tok.workflow_id, tok.run_id)
    key = (namespace_id, tok.workflow_id, tok.run_id)
    upserts = search_attributes.upserted_attributes(list(req.commands))
    sa_aliases = await search_attributes.namespace_aliases(engine, namespace_id, upserts) if upserts else None

    def apply(ms: MutableState) -> CompletionResult:
        if not token_matches_wft(ms, tok):
            raise NotFound(WFT_NOT_FOUND)
        ms.started_attributes = started_attrs
        ms.search_attribute_aliases = sa_aliases
        return complete_workflow_task(
            ms, req, engine.config, engine.updates.requests(key), engine.updates.has_undelivered(key)
        )

    result, ms = await shard.update_run(namespace_id, tok.workflow_id, tok.run_id, apply)
    if result.error is None:
        engine.updates.apply(key, result.update_effects, tok.stamp)
    if not ms.running:
        engine.updates.drop_run(key)
    engine.notifier.notify(key)
    engine.queries.resolve(key, dict(req.query_results))
    if not result.new_wft_scheduled:
        engine.queries.redispatch_all(key)
    err = result.error
    metrics.workflow_task_outcome("failed" if err else "completed")
    if err is not None:
        raise InvalidArgument(err.message)
    resp = ws.RespondWorkflowTaskCompletedResponse(reset_history_event_id=result.reset_history_event_id)
    if result.eager_activities:
        ns = await engine.namespaces.get(namespace_id)
        resp.activity_tasks.extend(
            _activity_task(namespace_id, ns.name, ms.record, info, a) for info, a in result.eager_activities
        )
    if req.return_new_workflow_task and result.new_wft_scheduled and ms.running:
        task = await _start_inline(engine, shard, namespace_id, ms, req.identity)
        if task is not None:
            resp.workflow_task.CopyFrom(task)
    return resp


async def _start_inline(
    engine: Engine, shard: ShardContext, namespace_id: str, ms: MutableState, identity: str
) -> ws.PollWorkflowTaskQueueResponse | None:
    """return_new_workflow_task (2.5): start the WFT this completion created and hand it back directly. Its
    transfer task still exists; when Matching dispatches it, History answers "already started" and the stale
    task is dropped. None if something else started or replaced it first."""
    r = ms.record
    scheduled_id, stamp = ms.wft.scheduled_event_id, ms.wft.stamp
    request_id = str(uuid.uuid4())

    def apply(m: MutableState) -> bool:
        wt = m.wft
        if not m.running or wt.scheduled_event_id != scheduled_id or wt.stamp != stamp or wt.started_event_id:
            return False
        m.start_workflow_task(request_id, identity)
        return True

    ex = common_pb2.WorkflowExecution(workflow_id=r.workflow_id, run_id=r.run_id)
    started, m = await shard.update_run(namespace_id, r.workflow_id, r.run_id, apply)
    if not started:
        return None
    return await _workflow_task_response(engine, shard, namespace_id, ex, m, bool(m.record.sticky_task_queue))


async def respond_workflow_task_failed(
    engine: Engine, namespace_id: str, req: ws.RespondWorkflowTaskFailedRequest
) -> ws.RespondWorkflowTaskFailedResponse:
    tok = _wft_token(req.task_token, namespace_id)
    shard = engine.shard(namespace_id, tok.workflow_id)

    def apply(ms: MutableState) -> None:
        if not token_matches_wft(ms, tok):
            raise NotFound(WFT_NOT_FOUND)
        fail_workflow_task(ms, req)

    await shard.update_run(namespace_id, tok.workflow_id, tok.run_id, apply)
    metrics.workflow_task_outcome("failed")
    return ws.RespondWorkflowTaskFailedResponse()


# ---------------------------------------------------------------- activity tasks


async def record_activity_task_started(engine: Engine, req: hs.RecordActivityTaskStartedRequest) -> ws.PollActivityTaskQueueResponse:
    ex = req.workflow_execution
    shard = engine.shard(req.namespace_id, ex.workflow_id)

    def apply(ms: MutableState) -> state_pb2.ActivityInfo:
        info = ms.record.activities.get(req.scheduled_event_id)
        if not ms.running or info is None or info.attempt != req.attempt or (req.stamp and info.stamp != req.stamp):
            raise NotFound(ACTIVITY_NOT_FOUND)
        if info.started:
            if req.request_id and info.started_request_id == req.request_id:
                return info
            raise AlreadyExists("Activity task already started.")
        activities.start_activity(ms, info, req.request_id, req.poll_request.identity)
        return info

    info, ms = await shard.update_run(req.namespace_id, ex.workflow_id, ex.run_id, apply)
    sched = await engine.read_events(shard, req.namespace_id, ex.workflow_id, ex.run_id, info.scheduled_event_id, info.scheduled_event_id + 1)
    if not sched or not sched[0].HasField("activity_task_scheduled_event_attributes"):
        raise NotFound(ACTIVITY_NOT_FOUND)
    a = sched[0].activity_task_scheduled_event_attributes
    ns = await engine.namespaces.get(req.namespace_id)
    return _activity_task(req.namespace_id, ns.name, ms.record, info, a)


def _activity_task(
    namespace_id: str,
    namespace: str,
    record: state_pb2.MutableState,
    info: state_pb2.ActivityInfo,
    a: history_pb2.ActivityTaskScheduledEventAttributes,
) -> ws.PollActivityTaskQueueResponse:
    """The task a worker runs for a started attempt (from a poll, or handed back eagerly)."""
    token = tokens_pb2.TaskToken(
        namespace_id=namespace_id,
        workflow_id=record.workflow_id,
        run_id=record.run_id,
        scheduled_event_id=info.scheduled_event_id,
        attempt=info.attempt,
        activity_id=info.activity_id,
        activity_type=info.activity_type,
        stamp=info.stamp,
        kind=KIND_ACTIVITY,
    )
    return ws.PollActivityTaskQueueResponse(
        task_token=token.SerializeToString(),
        workflow_namespace=namespace,
        workflow_type=common_pb2.WorkflowType(name=record.workflow_type),
        workflow_execution=common_pb2.WorkflowExecution(workflow_id=record.workflow_id, run_id=record.run_id),
        activity_type=a.activity_type,
        activity_id=a.activity_id,
        header=a.header,
        input=a.input,
        heartbeat_details=info.heartbeat_details if info.HasField("heartbeat_details") else None,
        scheduled_time=info.scheduled_time,
        current_attempt_scheduled_time=info.current_attempt_scheduled_time,
        started_time=info.started_time,
        attempt=info.attempt,
        schedule_to_close_timeout=info.schedule_to_close_timeout,
        start_to_close_timeout=info.start_to_close_timeout,
        heartbeat_timeout=info.heartbeat_timeout,
        retry_policy=info.retry_policy,
        priority=info.priority if info.HasField("priority") else a.priority,  # UpdateActivityOptions may change it
    )


ActivityFn = Callable[[MutableState, state_pb2.ActivityInfo], object]


async def _with_activity(engine: Engine, namespace_id: str, r: object, by_id: bool, fn: ActivityFn) -> object:
    """Locate the activity by task token (attempt-checked) or by id (no attempt check) and apply ``fn``."""
    if not by_id:
        tok = decode_task_token(r.task_token)  # type: ignore[attr-defined]
        if tok.kind != KIND_ACTIVITY:
            raise InvalidArgument("invalid task token: not an activity task token")
        _check_namespace(tok, namespace_id)
        workflow_id, run_id = tok.workflow_id, tok.run_id
        shard = engine.shard(namespace_id, workflow_id)

        def find(ms: MutableState) -> state_pb2.ActivityInfo:
            info = ms.record.activities.get(tok.scheduled_event_id)
            if info is None or info.attempt != tok.attempt or info.stamp != tok.stamp or not info.started:
                raise NotFound(ACTIVITY_NOT_FOUND)
            return info
    else:
        workflow_id, run_id, activity_id = r.workflow_id, r.run_id, r.activity_id  # type: ignore[attr-defined]
        if not workflow_id or not activity_id:
            raise InvalidArgument("WorkflowId and ActivityId are required.")
        shard = engine.shard(namespace_id, workflow_id)
        if not run_id:
            cur = await shard.current_run_id(namespace_id, workflow_id)
            if cur is None:
                raise NotFound("Workflow execution not found.")
            run_id = cur

        def find(ms: MutableState) -> state_pb2.ActivityInfo:
            for info in ms.record.activities.values():
                if info.activity_id == activity_id:
                    return info
            raise NotFound(ACTIVITY_NOT_FOUND)

    def apply(ms: MutableState) -> object:
        if not ms.running:
            raise NotFound("workflow execution already completed")
        return fn(ms, find(ms))

    result, _ = await shard.update_run(namespace_id, workflow_id, run_id, apply)
    return result


def _opt(msg: object, name: str) -> object:
    return getattr(msg, name) if msg.HasField(name) else None  # type: ignore[attr-defined]


def _split(req: object) -> tuple[object, bool]:
    """(the public request, is_by_id) from a history request with ``request`` / ``by_id_request``."""
    if req.HasField("by_id_request"):  # type: ignore[attr-defined]
        return req.by_id_request, True  # type: ignore[attr-defined]
    return req.request, False  # type: ignore[attr-defined]


async def respond_activity_completed(engine: Engine, req: hs.RespondActivityTaskCompletedRequest) -> None:
    r, by_id = _split(req)
    await _with_activity(
        engine, req.namespace_id, r, by_id,
        lambda ms, info: activities.complete_activity(ms, info, _opt(r, "result"), r.identity),  # type: ignore[arg-type, attr-defined]
    )


async def respond_activity_failed(engine: Engine, req: hs.RespondActivityTaskFailedRequest) -> None:
    r, by_id = _split(req)
    await _with_activity(
        engine, req.namespace_id, r, by_id,
        lambda ms, info: activities.fail_activity(ms, info, r.failure, r.identity, _opt(r, "last_heartbeat_details")),  # type: ignore[arg-type, attr-defined]
    )


async def respond_activity_canceled(engine: Engine, req: hs.RespondActivityTaskCanceledRequest) -> None:
    r, by_id = _split(req)

    def apply(ms: MutableState, info: state_pb2.ActivityInfo) -> None:
        if not info.cancel_requested:
            raise InvalidArgument("Activity was not requested to be cancelled.")
        activities.cancel_activity_completed(ms, info, _opt(r, "details"), r.identity)  # type: ignore[arg-type, attr-defined]

    await _with_activity(engine, req.namespace_id, r, by_id, apply)


async def record_heartbeat(engine: Engine, req: hs.RecordActivityTaskHeartbeatRequest) -> ws.RecordActivityTaskHeartbeatResponse:
    r, by_id = _split(req)
    flags = await _with_activity(
        engine, req.namespace_id, r, by_id,
        lambda ms, info: (
            activities.heartbeat(ms, info, _opt(r, "details"), r.identity),  # type: ignore[arg-type, attr-defined]
            info.paused,
            info.activity_reset,
        ),
    )
    cancel, paused, was_reset = cast(tuple[bool, bool, bool], flags)
    return ws.RecordActivityTaskHeartbeatResponse(cancel_requested=cancel, activity_paused=paused, activity_reset=was_reset)
