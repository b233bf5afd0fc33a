"""Read paths: GetWorkflowExecutionHistory (pagination + long polls), DescribeWorkflowExecution, QueryWorkflow."""

from __future__ import annotations

import asyncio
import time

from temporalio.api.common.v1 import message_pb2 as common_pb2
from temporalio.api.enums.v1 import query_pb2 as query_enums
from temporalio.api.enums.v1 import workflow_pb2 as wf_enums
from temporalio.api.errordetails.v1 import message_pb2 as errordetails
from temporalio.api.history.v1 import message_pb2 as history_pb2
from temporalio.api.query.v1 import message_pb2 as query_pb2
from temporalio.api.workflowservice.v1 import request_response_pb2 as ws

from server.common.errors import DeadlineExceeded, FailedPrecondition, InvalidArgument, NotFound, ServiceError
from server.gen.durata.internal.common.v1 import tokens_pb2
from server.gen.durata.internal.history.v1 import service_pb2 as hs
from server.gen.durata.internal.matching.v1 import service_pb2 as ms_pb2

from . import children
from .api import activity_options, activity_pause, workflow_pause
from .api_workflow import resolve_run_id
from .engine import Engine
from .mutable_state import MutableState, from_dur, from_ts
from .shard import ShardContext
from .tokens import decode_page_token

ST = wf_enums.WorkflowExecutionStatus
POLL_SLICE = 1.0
DEFAULT_QUERY_SECONDS = 30.0


def _budget(engine: Engine, deadline: float | None) -> float:
    end = time.monotonic() + engine.config.history_long_poll_seconds
    if deadline is not None:
        end = min(end, deadline - 1.0)
    return end


async def _load(shard: ShardContext, namespace_id: str, workflow_id: str, run_id: str) -> MutableState:
    ms = await shard.load(namespace_id, workflow_id, run_id)
    if ms is None:
        raise NotFound(f"Workflow execution not found: {workflow_id}/{run_id}")
    return ms


async def _wait_change(engine: Engine, key: tuple[str, str, str], end: float) -> None:
    await engine.notifier.wait(key, min(POLL_SLICE, end - time.monotonic()))


async def get_history(engine: Engine, req: hs.GetWorkflowExecutionHistoryRequest, deadline: float | None) -> ws.GetWorkflowExecutionHistoryResponse:
    r = req.request
    ns_id = req.namespace_id
    wf_id = r.execution.workflow_id
    shard = engine.shard(ns_id, wf_id)
    page_tok = decode_page_token(r.next_page_token) if r.next_page_token else None
    if page_tok is not None:
        if r.execution.run_id and r.execution.run_id != page_tok.run_id:
            raise InvalidArgument("next_page_token does not belong to the requested run.")
        run_id = page_tok.run_id
    else:
        run_id = await resolve_run_id(engine, shard, ns_id, r.execution)
    key = (ns_id, wf_id, run_id)
    ms = await _load(shard, ns_id, wf_id, run_id)
    end = _budget(engine, deadline)

    if r.history_event_filter_type == wf_enums.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT:
        while ms.running and r.wait_new_event and time.monotonic() < end:
            await _wait_change(engine, key, end)
            ms = await _load(shard, ns_id, wf_id, run_id)
        if ms.paused and not r.wait_new_event:
            # Temporal counts a paused run as not running here and answers its last event (`temporal workflow
            # describe` needs an answer); a long poll still waits for the real close event.
            last = ms.record.next_event_id - 1
            events = await engine.read_events(shard, ns_id, wf_id, run_id, last, last + 1)
            return ws.GetWorkflowExecutionHistoryResponse(history=history_pb2.History(events=events))
        if ms.running:
            tok = b""
            if r.wait_new_event:
                tok = tokens_pb2.HistoryPageToken(run_id=run_id, next_event_id=ms.record.next_event_id, is_running=True).SerializeToString()
            return ws.GetWorkflowExecutionHistoryResponse(history=history_pb2.History(), next_page_token=tok)
        cid = ms.record.completion_event_id
        events = await engine.read_events(shard, ns_id, wf_id, run_id, cid, cid + 1)
        return ws.GetWorkflowExecutionHistoryResponse(history=history_pb2.History(events=events))

    page_size = r.maximum_page_size if r.maximum_page_size > 0 else engine.config.default_history_page_size
    start = page_tok.next_event_id if page_tok is not None else 1
    while True:
        last = ms.record.next_event_id
        if start < last:
            events = await engine.read_events(shard, ns_id, wf_id, run_id, start, min(last, start + page_size))
            nxt = start + len(events)
            more = nxt < last or (ms.running and r.wait_new_event)
            tok = b""
            if more:
                tok = tokens_pb2.HistoryPageToken(run_id=run_id, next_event_id=nxt, is_running=ms.running).SerializeToString()
            return ws.GetWorkflowExecutionHistoryResponse(history=history_pb2.History(events=events), next_page_token=tok)
        if not ms.running or not r.wait_new_event:
            return ws.GetWorkflowExecutionHistoryResponse(history=history_pb2.History())
        if time.monotonic() >= end:
            tok = tokens_pb2.HistoryPageToken(run_id=run_id, next_event_id=start, is_running=True).SerializeToString()
            return ws.GetWorkflowExecutionHistoryResponse(history=history_pb2.History(), next_page_token=tok)
        await _wait_change(engine, key, end)
        ms = await _load(shard, ns_id, wf_id, run_id)


async def describe(engine: Engine, req: hs.DescribeWorkflowExecutionRequest) -> ws.DescribeWorkflowExecutionResponse:
    ns_id = req.namespace_id
    ex = req.request.execution
    shard = engine.shard(ns_id, ex.workflow_id)
    run_id = await resolve_run_id(engine, shard, ns_id, ex)
    ms = await _load(shard, ns_id, ex.workflow_id, run_id)
    r = ms.record
    resp = ws.DescribeWorkflowExecutionResponse()
    cfg = resp.execution_config
    cfg.task_queue.CopyFrom(ms.normal_task_queue())
    cfg.workflow_execution_timeout.CopyFrom(r.workflow_execution_timeout)
    cfg.workflow_run_timeout.CopyFrom(r.workflow_run_timeout)
    cfg.default_workflow_task_timeout.CopyFrom(r.workflow_task_timeout)
    if r.HasField("user_metadata"):
        cfg.user_metadata.CopyFrom(r.user_metadata)
    info = resp.workflow_execution_info
    info.execution.CopyFrom(common_pb2.WorkflowExecution(workflow_id=r.workflow_id, run_id=r.run_id))
    info.type.name = r.workflow_type
    info.start_time.CopyFrom(r.start_time)
    info.execution_time.CopyFrom(r.execution_time)
    info.status = r.status  # type: ignore[assignment]
    info.history_length = r.next_event_id - 1
    info.memo.CopyFrom(r.memo)
    info.search_attributes.CopyFrom(r.search_attributes)
    info.task_queue = r.task_queue
    info.state_transition_count = r.state_transition_count
    info.history_size_bytes = r.history_size_bytes
    info.first_run_id = r.first_execution_run_id
    if r.auto_reset_points.points:
        info.auto_reset_points.CopyFrom(r.auto_reset_points)
    if r.HasField("priority"):
        info.priority.CopyFrom(r.priority)
    if r.HasField("versioning_override"):
        info.versioning_info.versioning_override.CopyFrom(r.versioning_override)
    if r.HasField("parent"):
        info.parent_namespace_id = r.parent.namespace_id
        info.parent_execution.workflow_id = r.parent.workflow_id
        info.parent_execution.run_id = r.parent.run_id
        info.root_execution.workflow_id = r.parent.root_workflow_id
        info.root_execution.run_id = r.parent.root_run_id
    else:
        info.root_execution.CopyFrom(info.execution)
    children.describe_pending_children(ms, resp)
    if r.reset_run_id:
        resp.workflow_extended_info.reset_run_id = r.reset_run_id
    workflow_pause.describe_pause(ms, resp)
    if not ms.running:
        info.close_time.CopyFrom(r.close_time)
        info.execution_duration.FromTimedelta(from_ts(r.close_time) - from_ts(r.execution_time))
    PA = wf_enums.PendingActivityState
    for a in sorted(r.activities.values(), key=lambda x: x.scheduled_event_id):
        pa = resp.pending_activities.add(
            activity_id=a.activity_id,
            activity_type=common_pb2.ActivityType(name=a.activity_type),
            attempt=a.attempt,
            maximum_attempts=a.retry_policy.maximum_attempts,
            scheduled_time=a.current_attempt_scheduled_time,
            last_worker_identity=a.last_worker_identity,
        )
        pa.state = (
            PA.PENDING_ACTIVITY_STATE_CANCEL_REQUESTED if a.cancel_requested
            else PA.PENDING_ACTIVITY_STATE_STARTED if a.started
            else PA.PENDING_ACTIVITY_STATE_SCHEDULED
        )
        activity_pause.describe_pause(a, pa)
        activity_options.describe_options(ms, a, pa)
        if a.HasField("heartbeat_details"):
            pa.heartbeat_details.CopyFrom(a.heartbeat_details)
        if a.HasField("last_heartbeat_time"):
            pa.last_heartbeat_time.CopyFrom(a.last_heartbeat_time)
        if a.started:
            pa.last_started_time.CopyFrom(a.started_time)
        if a.HasField("last_failure"):
            pa.last_failure.CopyFrom(a.last_failure)
        s2c = from_dur(a.schedule_to_close_timeout)
        if s2c.total_seconds() > 0:
            pa.expiration_time.FromDatetime(from_ts(a.scheduled_time) + s2c)
    wt = r.workflow_task
    if ms.running and wt.scheduled_event_id:
        pw = resp.pending_workflow_task
        pw.state = (
            wf_enums.PENDING_WORKFLOW_TASK_STATE_STARTED if wt.started_event_id else wf_enums.PENDING_WORKFLOW_TASK_STATE_SCHEDULED
        )
        pw.scheduled_time.CopyFrom(wt.scheduled_time)
        pw.original_scheduled_time.CopyFrom(wt.original_scheduled_time)
        if wt.started_event_id:
            pw.started_time.CopyFrom(wt.started_time)
        pw.attempt = wt.attempt
    return resp


async def query(engine: Engine, req: hs.QueryWorkflowRequest, deadline: float | None) -> ws.QueryWorkflowResponse:
    ns_id = req.namespace_id
    r = req.request
    if not r.query.query_type:
        raise InvalidArgument("QueryType is not set on request.")
    shard = engine.shard(ns_id, r.execution.workflow_id)
    run_id = await resolve_run_id(engine, shard, ns_id, r.execution)
    ms = await _load(shard, ns_id, r.execution.workflow_id, run_id)
    rec = ms.record
    cond = r.query_reject_condition
    if not ms.running and (
        cond == query_enums.QUERY_REJECT_CONDITION_NOT_OPEN
        or (cond == query_enums.QUERY_REJECT_CONDITION_NOT_COMPLETED_CLEANLY and rec.status != ST.WORKFLOW_EXECUTION_STATUS_COMPLETED)
    ):
        return ws.QueryWorkflowResponse(query_rejected=query_pb2.QueryRejected(status=rec.status))  # type: ignore[arg-type]
    if ms.paused:  # PauseWorkflowExecution: every query is rejected with status PAUSED, as Temporal does
        return ws.QueryWorkflowResponse(query_rejected=query_pb2.QueryRejected(status=ST.WORKFLOW_EXECUTION_STATUS_PAUSED))
    if rec.last_completed_wft_started_event_id == 0 and not ms.running:
        raise FailedPrecondition("Workflow closed before its first workflow task completed.", errordetails.WorkflowNotReadyFailure())
    if ms.running and rec.wft_backoff_pending:
        raise FailedPrecondition(
            "The workflow has not had a workflow task yet (start delay or retry backoff).", errordetails.WorkflowNotReadyFailure()
        )
    if ms.running and rec.workflow_task.attempt >= 3:
        raise FailedPrecondition("Workflow task is failing repeatedly; the workflow is not ready for queries.", errordetails.WorkflowNotReadyFailure())
    end = deadline if deadline is not None else time.monotonic() + DEFAULT_QUERY_SECONDS
    execution = common_pb2.WorkflowExecution(workflow_id=r.execution.workflow_id, run_id=run_id)
    if ms.running and rec.workflow_task.scheduled_event_id:
        key = (ns_id, r.execution.workflow_id, run_id)
        qid, fut = engine.queries.add(key, r.query)
        try:
            result = await asyncio.wait_for(fut, timeout=max(end - time.monotonic(), 0))
        except TimeoutError:
            raise DeadlineExceeded("Query timed out waiting for a workflow task.") from None
        finally:
            engine.queries.remove(key, qid)
        if result is not None:
            return _answer(result.result_type, result.answer, result.error_message, result.failure if result.HasField("failure") else None)
        ms = await _load(shard, ns_id, r.execution.workflow_id, run_id)
    return await _legacy_query(engine, ns_id, execution, ms, r.query, end)


async def _legacy_query(
    engine: Engine, ns_id: str, execution: common_pb2.WorkflowExecution, ms: MutableState, q: query_pb2.WorkflowQuery, end: float
) -> ws.QueryWorkflowResponse:
    """Delivery path A: a query task through Matching, sticky queue first."""
    queues = [tq for tq in (ms.sticky_task_queue(), ms.normal_task_queue()) if tq is not None]
    last_err: ServiceError | None = None
    for tq in queues:
        mreq = ms_pb2.QueryWorkflowRequest(namespace_id=ns_id, execution=execution, task_queue=tq, query=q)
        try:
            resp = await engine.matching.QueryWorkflow(mreq, deadline=end)
        except FailedPrecondition as e:  # sticky worker gone: fall back to the normal queue
            last_err = e
            continue
        return _answer(resp.completed_type, resp.query_result, resp.error_message, resp.failure if resp.HasField("failure") else None)
    assert last_err is not None
    raise last_err


def _answer(result_type: int, answer: common_pb2.Payloads, error_message: str, failure: object) -> ws.QueryWorkflowResponse:
    if result_type == query_enums.QUERY_RESULT_TYPE_FAILED:
        detail = errordetails.QueryFailedFailure()
        if failure is not None:
            detail.failure.CopyFrom(failure)  # type: ignore[arg-type]
        raise InvalidArgument(error_message or "query failed", detail)
    return ws.QueryWorkflowResponse(query_result=answer)
