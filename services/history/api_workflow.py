"""Client-facing run operations: start (+ id reuse/conflict policies), signal-with-start, signal, cancel
request, terminate, delete."""

from __future__ import annotations

from collections.abc import Callable

from temporalio.api.common.v1 import message_pb2 as common_pb2
from temporalio.api.enums.v1 import workflow_pb2 as wf_enums
from temporalio.api.errordetails.v1 import message_pb2 as errordetails
from temporalio.api.history.v1 import message_pb2 as history_pb2
from temporalio.api.workflowservice.v1 import request_response_pb2 as ws

from server.common.errors import AlreadyExists, CurrentRunConflict, InvalidArgument, NotFound, Unavailable
from server.common.ids import new_run_id
from server.gen.durata.internal.history.v1 import state_pb2
from server.persistence.interface import CurrentExecutionRecord, CurrentRunMode, HistoryTask, TaskCategory

from . import workflow_ops
from .engine import Engine
from .mutable_state import STATE_COMPLETED, MutableState
from .shard import ShardContext

CP = wf_enums.WorkflowIdConflictPolicy
RP = wf_enums.WorkflowIdReusePolicy
ST = wf_enums.WorkflowExecutionStatus
FAILED_LIKE = {
    ST.WORKFLOW_EXECUTION_STATUS_FAILED,
    ST.WORKFLOW_EXECUTION_STATUS_CANCELED,
    ST.WORKFLOW_EXECUTION_STATUS_TERMINATED,
    ST.WORKFLOW_EXECUTION_STATUS_TIMED_OUT,
}
StartRequest = ws.StartWorkflowExecutionRequest | ws.SignalWithStartWorkflowExecutionRequest


def resolve_policies(req: StartRequest, default_conflict: int) -> tuple[int, int]:
    conflict = req.workflow_id_conflict_policy or default_conflict
    reuse = req.workflow_id_reuse_policy or RP.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE
    if req.workflow_id_reuse_policy == RP.WORKFLOW_ID_REUSE_POLICY_TERMINATE_IF_RUNNING:
        if req.workflow_id_conflict_policy:
            raise InvalidArgument("Invalid WorkflowIDReusePolicy: TERMINATE_IF_RUNNING cannot be combined with a WorkflowIDConflictPolicy.")
        conflict, reuse = CP.WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING, RP.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE
    if conflict == CP.WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING and reuse == RP.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE:
        raise InvalidArgument("Invalid WorkflowIDConflictPolicy: TERMINATE_EXISTING cannot be used together with WorkflowIDReusePolicy REJECT_DUPLICATE.")
    return conflict, reuse


def _already_started(req: StartRequest, cur: CurrentExecutionRecord, msg: str) -> AlreadyExists:
    return AlreadyExists(
        msg,
        errordetails.WorkflowExecutionAlreadyStartedFailure(start_request_id=cur.create_request_id, run_id=cur.run_id),
    )


async def start_workflow(
    engine: Engine,
    namespace_id: str,
    req: StartRequest,
    *,
    signal_with_start: bool = False,
    parent: state_pb2.ParentInfo | None = None,
    on_new_run: Callable[[MutableState], None] | None = None,
    on_committed: Callable[[MutableState], None] | None = None,
) -> tuple[str, bool]:
    """Returns (run_id, started). Runs the whole decision under the workflow id's lock. ``on_new_run`` may change
    a freshly built run before its commit (eager start); ``on_committed`` runs once a new run is committed, still
    under the lock, so no workflow task of it starts before (update-with-start admits its update there)."""
    committed = on_committed or (lambda ms: None)
    workflow_ops.validate_start(req)
    default_conflict = CP.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING if signal_with_start else CP.WORKFLOW_ID_CONFLICT_POLICY_FAIL
    if signal_with_start and req.workflow_id_conflict_policy == CP.WORKFLOW_ID_CONFLICT_POLICY_FAIL:
        raise InvalidArgument("SignalWithStart does not support WorkflowIDConflictPolicy FAIL.")
    conflict, reuse = resolve_policies(req, default_conflict)
    ns = await engine.namespaces.get(namespace_id)
    shard = engine.shard(namespace_id, req.workflow_id)
    signal = None
    if signal_with_start:
        assert isinstance(req, ws.SignalWithStartWorkflowExecutionRequest)
        signal = history_pb2.WorkflowExecutionSignaledEventAttributes(
            signal_name=req.signal_name,
            input=req.signal_input if req.HasField("signal_input") else None,
            identity=req.identity,
            header=req.header if req.HasField("header") else None,
            request_id=req.request_id,
        )

    def fresh() -> MutableState:
        ms = workflow_ops.new_run(
            req, namespace_id, new_run_id(), engine.clock.now(), engine.config, ns.retention, signal, parent=parent
        )
        if on_new_run is not None:
            on_new_run(ms)
        return ms

    async with shard.lock(namespace_id, req.workflow_id):
        # Most starts are of a new workflow id: try the brand-new create first (it fails with CurrentRunConflict,
        # writing nothing, if a current run exists) and read the current run only then.
        cur: CurrentExecutionRecord | None = None
        for attempt in range(engine.config.condition_retries + 1):
            if attempt:
                cur = await engine.persistence.executions.get_current_execution(shard.shard_id, namespace_id, req.workflow_id)
            try:
                if cur is None:
                    ms = fresh()
                    await shard.commit_new_run(ms, CurrentRunMode.BRAND_NEW)
                    committed(ms)
                    return ms.record.run_id, True
                if req.request_id and cur.create_request_id == req.request_id:
                    return cur.run_id, True
                if cur.state != STATE_COMPLETED:
                    return await _start_on_running(engine, shard, namespace_id, req, cur, conflict, signal, fresh, committed)
                if reuse == RP.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE or (
                    reuse == RP.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY and cur.status not in FAILED_LIKE
                ):
                    raise _already_started(req, cur, f"Workflow execution already finished and reuse policy forbids a new run: {req.workflow_id}")
                ms = fresh()
                await shard.commit_new_run(ms, CurrentRunMode.SWAP, cur.run_id)
                committed(ms)
                return ms.record.run_id, True
            except CurrentRunConflict:
                continue
    raise Unavailable("Concurrent start of the same workflow id; try again.")


async def _start_on_running(
    engine: Engine,
    shard: ShardContext,
    namespace_id: str,
    req: StartRequest,
    cur: CurrentExecutionRecord,
    conflict: int,
    signal: history_pb2.WorkflowExecutionSignaledEventAttributes | None,
    fresh: object,
    committed: Callable[[MutableState], None],
) -> tuple[str, bool]:
    old = await shard.load(namespace_id, req.workflow_id, cur.run_id)
    if old is None:
        raise CurrentRunConflict("current run vanished", cur.run_id, "", 0, 0)
    if req.request_id and req.request_id in old.record.start_request_ids:
        return cur.run_id, signal is None
    if conflict == CP.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING:
        if signal is not None:
            sreq = ws.SignalWorkflowExecutionRequest(
                signal_name=signal.signal_name, input=signal.input, identity=signal.identity,
                header=signal.header, request_id=signal.request_id,
            )
            await shard.update_run(namespace_id, req.workflow_id, cur.run_id, lambda ms: workflow_ops.signal(ms, sreq), locked=True)
        elif req.request_id:
            # Remember the request id so a retried start with USE_EXISTING stays idempotent.
            def attach(ms: MutableState) -> None:
                ms.record.start_request_ids.append(req.request_id)
                ms.dirty = True

            await shard.update_run(namespace_id, req.workflow_id, cur.run_id, attach, locked=True)
        return cur.run_id, False
    if conflict == CP.WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING:
        new_ms: MutableState = fresh()  # type: ignore[operator]
        workflow_ops.terminate(old, f"terminated by new run {new_ms.record.run_id} (TERMINATE_EXISTING)", None, req.identity)
        try:
            await shard.commit_update(old, new_run=new_ms)
        except Exception:
            shard.evict((namespace_id, req.workflow_id, cur.run_id))
            raise
        committed(new_ms)
        return new_ms.record.run_id, True
    raise _already_started(req, cur, f"Workflow execution is already running. WorkflowId: {req.workflow_id}, RunId: {cur.run_id}.")


async def resolve_run_id(engine: Engine, shard: ShardContext, namespace_id: str, execution: common_pb2.WorkflowExecution) -> str:
    if execution.run_id:
        return execution.run_id
    if not execution.workflow_id:
        raise InvalidArgument("WorkflowId is not set on request.")
    run_id = await shard.current_run_id(namespace_id, execution.workflow_id)
    if run_id is None:
        raise NotFound(f"Workflow execution not found: {execution.workflow_id}")
    return run_id


def _require_running(ms: MutableState) -> None:
    if not ms.running:
        raise NotFound("workflow execution already completed")


def _check_first_run(ms: MutableState, first_execution_run_id: str) -> None:
    if first_execution_run_id and ms.record.first_execution_run_id != first_execution_run_id:
        raise NotFound("Workflow execution not found (first_execution_run_id does not match).")


def _check_child_of(ms: MutableState, source: common_pb2.WorkflowExecution) -> None:
    """child_workflow_only: the target must be a child of the source run."""
    p = ms.record.parent
    if not ms.record.HasField("parent") or p.workflow_id != source.workflow_id or p.run_id != source.run_id:
        raise NotFound("Workflow execution is not a child of the requesting workflow.")


async def signal_workflow(
    engine: Engine,
    namespace_id: str,
    req: ws.SignalWorkflowExecutionRequest,
    external: common_pb2.WorkflowExecution | None = None,
    child_workflow_only: bool = False,
) -> None:
    if not req.signal_name:
        raise InvalidArgument("SignalName is not set on request.")
    shard = engine.shard(namespace_id, req.workflow_execution.workflow_id)
    run_id = await resolve_run_id(engine, shard, namespace_id, req.workflow_execution)

    def apply(ms: MutableState) -> None:
        _require_running(ms)
        if child_workflow_only and external is not None:
            _check_child_of(ms, external)
        workflow_ops.signal(ms, req, external)

    await shard.update_run(namespace_id, req.workflow_execution.workflow_id, run_id, apply)


async def request_cancel(
    engine: Engine,
    namespace_id: str,
    req: ws.RequestCancelWorkflowExecutionRequest,
    external: common_pb2.WorkflowExecution | None = None,
    external_initiated_event_id: int = 0,
    child_workflow_only: bool = False,
) -> None:
    """Closed target: a no-op for clients, NOT_FOUND for another workflow (external cancel, 5.3)."""
    shard = engine.shard(namespace_id, req.workflow_execution.workflow_id)
    run_id = await resolve_run_id(engine, shard, namespace_id, req.workflow_execution)

    def apply(ms: MutableState) -> None:
        _check_first_run(ms, req.first_execution_run_id)
        if external is not None and external.workflow_id:
            _require_running(ms)
            if child_workflow_only:
                _check_child_of(ms, external)
        if ms.running:
            workflow_ops.request_cancel(ms, req, external, external_initiated_event_id)

    await shard.update_run(namespace_id, req.workflow_execution.workflow_id, run_id, apply)


async def terminate(engine: Engine, namespace_id: str, req: ws.TerminateWorkflowExecutionRequest) -> None:
    shard = engine.shard(namespace_id, req.workflow_execution.workflow_id)
    run_id = await resolve_run_id(engine, shard, namespace_id, req.workflow_execution)

    def apply(ms: MutableState) -> None:
        _check_first_run(ms, req.first_execution_run_id)
        _require_running(ms)
        workflow_ops.terminate(ms, req.reason, req.details if req.HasField("details") else None, req.identity)

    await shard.update_run(namespace_id, req.workflow_execution.workflow_id, run_id, apply)
    key = (namespace_id, req.workflow_execution.workflow_id, run_id)
    engine.queries.redispatch_all(key)
    engine.updates.drop_run(key)  # waiters see the closed run and fail


async def delete_workflow(engine: Engine, namespace_id: str, execution: common_pb2.WorkflowExecution) -> None:
    """Terminates the run if it is still open, then removes its rows and its visibility record."""
    shard = engine.shard(namespace_id, execution.workflow_id)
    run_id = await resolve_run_id(engine, shard, namespace_id, execution)

    def apply(ms: MutableState) -> bool:
        if ms.running:
            workflow_ops.terminate(ms, "Delete workflow execution", None, "history-service")
            return True
        return False

    terminated, ms = await shard.update_run(namespace_id, execution.workflow_id, run_id, apply)
    if terminated and (ms.record.HasField("parent") or ms.record.children):
        # The close work (parent notification, parent close policies) needs this run's rows: do it now.
        from . import outbound_tasks

        task = HistoryTask(TaskCategory.TRANSFER, 0, engine.clock.now(), namespace_id, execution.workflow_id, run_id, b"")
        info = state_pb2.HistoryTaskInfo(type=state_pb2.HISTORY_TASK_TYPE_CLOSE_EXECUTION, event_id=int(ms.record.HasField("parent")))
        await outbound_tasks.close_execution(engine, shard, task, info, ms)
    key = (namespace_id, execution.workflow_id, run_id)
    engine.queries.redispatch_all(key)
    engine.updates.drop_run(key)
    await delete_run_rows(engine, shard, namespace_id, execution.workflow_id, run_id)


async def delete_run_rows(engine: Engine, shard: ShardContext, namespace_id: str, workflow_id: str, run_id: str) -> None:
    async with shard.lock(namespace_id, workflow_id):
        await engine.persistence.executions.delete_workflow_execution(shard.shard_id, shard.range_id, namespace_id, workflow_id, run_id)
        shard.evict((namespace_id, workflow_id, run_id))
    await engine.persistence.visibility.delete_execution(namespace_id, run_id)
