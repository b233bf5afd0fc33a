"""Transfer tasks that reach other workflows: start a child, signal / cancel an external workflow, and the
CLOSE_EXECUTION work of a closed run (notify its parent, apply parent close policies). Everything goes
through ``engine.history`` (a HistoryService client), so the other workflow may live on any shard or host.
Every step is idempotent: tasks are delivered at least once."""

from __future__ import annotations

import structlog
from temporalio.api.common.v1 import message_pb2 as common_pb2
from temporalio.api.enums.v1 import event_type_pb2 as et
from temporalio.api.enums.v1 import failed_cause_pb2 as fc
from temporalio.api.enums.v1 import workflow_pb2 as wf_enums
from temporalio.api.history.v1 import message_pb2 as history_pb2
from temporalio.api.workflowservice.v1 import request_response_pb2 as ws

from server.common.errors import AlreadyExists, InvalidArgument, NamespaceNotFound, NotFound
from server.gen.durata.internal.history.v1 import service_pb2 as hs
from server.gen.durata.internal.history.v1 import state_pb2
from server.persistence.interface import HistoryTask

from . import children, external
from .engine import Engine
from .mutable_state import MutableState
from .shard import ShardContext

T = state_pb2.HistoryTaskType
log = structlog.get_logger("durata.history.outbound")
IDENTITY = "history-service"
RESETTER_IDENTITY = "history-resetter"  # api/reset.py terminates the run it resets with this identity


def _source(task: HistoryTask) -> common_pb2.WorkflowExecution:
    return common_pb2.WorkflowExecution(workflow_id=task.workflow_id, run_id=task.run_id)


async def _namespace_id(engine: Engine, namespace_id: str, namespace: str) -> str:
    return namespace_id or (await engine.namespaces.get_by_name(namespace)).id


async def _initiated(engine: Engine, shard: ShardContext, task: HistoryTask, event_id: int) -> object:
    events = await engine.read_events(shard, task.namespace_id, task.workflow_id, task.run_id, event_id, event_id + 1)
    if not events:
        raise NotFound("initiated event missing")
    ev = events[0]
    return getattr(ev, ev.WhichOneof("attributes") or "")


async def _update(shard: ShardContext, task: HistoryTask, fn: object) -> None:
    try:
        await shard.update_run(task.namespace_id, task.workflow_id, task.run_id, fn)  # type: ignore[arg-type]
    except NotFound:
        pass


async def start_child(engine: Engine, shard: ShardContext, task: HistoryTask, info: state_pb2.HistoryTaskInfo, ms: MutableState) -> None:
    child = ms.record.children.get(info.event_id)
    if child is None:
        return
    try:
        child_ns_id = await _namespace_id(engine, child.namespace_id, child.namespace)
    except NamespaceNotFound:
        return
    run_id = child.run_id
    if child.started_event_id == 0:
        a = await _initiated(engine, shard, task, info.event_id)
        req = ws.StartWorkflowExecutionRequest(
            namespace=child.namespace,
            workflow_id=child.workflow_id,
            workflow_type=a.workflow_type,  # type: ignore[attr-defined]
            task_queue=a.task_queue,  # type: ignore[attr-defined]
            input=a.input if a.HasField("input") else None,  # type: ignore[attr-defined]
            workflow_execution_timeout=a.workflow_execution_timeout,  # type: ignore[attr-defined]
            workflow_run_timeout=a.workflow_run_timeout,  # type: ignore[attr-defined]
            workflow_task_timeout=a.workflow_task_timeout,  # type: ignore[attr-defined]
            identity=IDENTITY,
            request_id=child.create_request_id,
            workflow_id_reuse_policy=a.workflow_id_reuse_policy,  # type: ignore[attr-defined]
            retry_policy=a.retry_policy if a.HasField("retry_policy") else None,  # type: ignore[attr-defined]
            cron_schedule=a.cron_schedule,  # type: ignore[attr-defined]
            memo=a.memo if a.HasField("memo") else None,  # type: ignore[attr-defined]
            search_attributes=a.search_attributes if a.HasField("search_attributes") else None,  # type: ignore[attr-defined]
            header=a.header if a.HasField("header") else None,  # type: ignore[attr-defined]
            priority=a.priority if a.HasField("priority") else None,  # type: ignore[attr-defined]
        )
        r = ms.record
        root = (r.parent.root_workflow_id, r.parent.root_run_id) if r.HasField("parent") else (r.workflow_id, r.run_id)
        parent = state_pb2.ParentInfo(
            namespace_id=r.namespace_id, namespace=ms.namespace_name, workflow_id=r.workflow_id, run_id=r.run_id,
            initiated_event_id=info.event_id, root_workflow_id=root[0], root_run_id=root[1],
        )
        try:
            resp = await engine.history.StartWorkflowExecution(
                hs.StartWorkflowExecutionRequest(namespace_id=child_ns_id, request=req, parent=parent)
            )
        except AlreadyExists:
            cause = fc.START_CHILD_WORKFLOW_EXECUTION_FAILED_CAUSE_WORKFLOW_ALREADY_EXISTS
            await _update(shard, task, lambda m: children.child_start_failed(m, info.event_id, cause))
            return
        except InvalidArgument as e:  # validated at command time; only a changed server could get here
            log.error("child start refused; dropping the task", child_workflow_id=child.workflow_id, error=e.message)
            return
        run_id = resp.run_id
        header = a.header if a.HasField("header") else None  # type: ignore[attr-defined]
        await _update(shard, task, lambda m: children.child_started(m, info.event_id, run_id, header))
    # The parent has recorded ChildWorkflowExecutionStarted: now the child may run (5.2).
    try:
        await engine.history.ScheduleWorkflowTask(
            hs.ScheduleWorkflowTaskRequest(
                namespace_id=child_ns_id,
                workflow_execution=common_pb2.WorkflowExecution(workflow_id=child.workflow_id, run_id=run_id),
                parent_execution=_source(task),
            )
        )
    except NotFound:
        pass


async def signal_external(engine: Engine, shard: ShardContext, task: HistoryTask, info: state_pb2.HistoryTaskInfo, ms: MutableState) -> None:
    target = ms.record.pending_signals.get(info.event_id)
    if target is None:
        return
    a = await _initiated(engine, shard, task, info.event_id)
    delivered = True
    try:
        ns_id = await _namespace_id(engine, target.namespace_id, target.namespace)
        await engine.history.SignalWorkflowExecution(
            hs.SignalWorkflowExecutionRequest(
                namespace_id=ns_id,
                request=ws.SignalWorkflowExecutionRequest(
                    namespace=target.namespace,
                    workflow_execution=common_pb2.WorkflowExecution(workflow_id=target.workflow_id, run_id=target.run_id),
                    signal_name=a.signal_name,  # type: ignore[attr-defined]
                    input=a.input if a.HasField("input") else None,  # type: ignore[attr-defined]
                    identity=IDENTITY,
                    request_id=target.request_id,
                    header=a.header if a.HasField("header") else None,  # type: ignore[attr-defined]
                ),
                external_workflow_execution=_source(task),
                child_workflow_only=target.child_workflow_only,
            )
        )
    except (NotFound, NamespaceNotFound):
        delivered = False
    await _update(shard, task, lambda m: external.signal_result(m, info.event_id, delivered))


async def cancel_external(engine: Engine, shard: ShardContext, task: HistoryTask, info: state_pb2.HistoryTaskInfo, ms: MutableState) -> None:
    target = ms.record.pending_cancels.get(info.event_id)
    if target is None:
        return
    a = await _initiated(engine, shard, task, info.event_id)
    delivered = True
    try:
        ns_id = await _namespace_id(engine, target.namespace_id, target.namespace)
        await engine.history.RequestCancelWorkflowExecution(
            hs.RequestCancelWorkflowExecutionRequest(
                namespace_id=ns_id,
                request=ws.RequestCancelWorkflowExecutionRequest(
                    namespace=target.namespace,
                    workflow_execution=common_pb2.WorkflowExecution(workflow_id=target.workflow_id, run_id=target.run_id),
                    identity=IDENTITY,
                    request_id=target.request_id,
                    reason=a.reason,  # type: ignore[attr-defined]
                ),
                external_workflow_execution=_source(task),
                external_initiated_event_id=info.event_id,
                child_workflow_only=target.child_workflow_only,
            )
        )
    except (NotFound, NamespaceNotFound):
        delivered = False
    await _update(shard, task, lambda m: external.cancel_result(m, info.event_id, delivered))


async def close_execution(engine: Engine, shard: ShardContext, task: HistoryTask, info: state_pb2.HistoryTaskInfo, ms: MutableState) -> None:
    """A closed run: report the chain's final close to the parent, then apply parent close policies."""
    r = ms.record
    cid = r.completion_event_id
    events = []
    if (info.event_id == 1 and r.HasField("parent")) or (r.reset_run_id and r.children):
        events = await engine.read_events(shard, task.namespace_id, task.workflow_id, task.run_id, cid, cid + 1)
    if info.event_id == 1 and r.HasField("parent"):
        if events:
            p = r.parent
            try:
                await engine.history.RecordChildExecutionCompleted(
                    hs.RecordChildExecutionCompletedRequest(
                        namespace_id=p.namespace_id,
                        parent_execution=common_pb2.WorkflowExecution(workflow_id=p.workflow_id, run_id=p.run_id),
                        parent_initiated_event_id=p.initiated_event_id,
                        child_execution=_source(task),
                        completion_event=events[0],
                    )
                )
            except (NotFound, NamespaceNotFound):
                pass  # the parent is gone
    if r.reset_run_id and events and _terminated_by_reset(events[0]):
        return  # as Temporal: the reset run carries the children open at its cut; they keep running
    for child in list(r.children.values()):
        if child.started_event_id == 0 or not child.run_id:
            continue  # never started: its START_CHILD task sees the closed parent and does nothing
        execution = common_pb2.WorkflowExecution(workflow_id=child.workflow_id)
        try:
            ns_id = await _namespace_id(engine, child.namespace_id, child.namespace)
            if child.parent_close_policy == wf_enums.PARENT_CLOSE_POLICY_TERMINATE:
                await engine.history.TerminateWorkflowExecution(
                    hs.TerminateWorkflowExecutionRequest(
                        namespace_id=ns_id,
                        request=ws.TerminateWorkflowExecutionRequest(
                            namespace=child.namespace, workflow_execution=execution, first_execution_run_id=child.run_id,
                            reason="by parent close policy", identity=IDENTITY,
                        ),
                    )
                )
            elif child.parent_close_policy == wf_enums.PARENT_CLOSE_POLICY_REQUEST_CANCEL:
                await engine.history.RequestCancelWorkflowExecution(
                    hs.RequestCancelWorkflowExecutionRequest(
                        namespace_id=ns_id,
                        request=ws.RequestCancelWorkflowExecutionRequest(
                            namespace=child.namespace, workflow_execution=execution, first_execution_run_id=child.run_id,
                            identity=IDENTITY, request_id=f"{r.run_id}/close/{child.initiated_event_id}",
                            reason="by parent close policy",
                        ),
                    )
                )
        except (NotFound, NamespaceNotFound):
            pass  # already closed or deleted


def _terminated_by_reset(close: history_pb2.HistoryEvent) -> bool:
    """The run closed because ResetWorkflowExecution terminated it (not a close that merely preceded a reset)."""
    return (
        close.event_type == et.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED
        and close.workflow_execution_terminated_event_attributes.identity == RESETTER_IDENTITY
    )


HANDLERS = {
    T.HISTORY_TASK_TYPE_START_CHILD_EXECUTION: start_child,
    T.HISTORY_TASK_TYPE_SIGNAL_EXECUTION: signal_external,
    T.HISTORY_TASK_TYPE_CANCEL_EXECUTION: cancel_external,
}
