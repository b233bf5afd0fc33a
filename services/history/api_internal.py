"""History -> History RPCs for child workflows: schedule a child's first workflow task once its parent
recorded ChildWorkflowExecutionStarted, and report a child chain's final close to the parent (5.2)."""

from __future__ import annotations

from server.common.errors import Internal, NotFound, Unavailable
from server.gen.durata.internal.history.v1 import service_pb2 as hs

from . import children
from .engine import Engine
from .mutable_state import MutableState

MAX_RESET_REDIRECTS = 100  # a child's close follows at most this many resets of its parent


async def schedule_workflow_task(engine: Engine, req: hs.ScheduleWorkflowTaskRequest) -> None:
    ex = req.workflow_execution
    shard = engine.shard(req.namespace_id, ex.workflow_id)

    def apply(ms: MutableState) -> None:
        r = ms.record
        p = r.parent
        if not r.HasField("parent") or p.workflow_id != req.parent_execution.workflow_id or p.run_id != req.parent_execution.run_id:
            raise NotFound("Workflow execution is not a child of the given parent.")
        if ms.running and r.awaiting_parent_started:
            r.awaiting_parent_started = False
            ms.dirty = True
            ms.ensure_workflow_task()

    await shard.update_run(req.namespace_id, ex.workflow_id, ex.run_id, apply)


async def record_child_completed(engine: Engine, req: hs.RecordChildExecutionCompletedRequest) -> None:
    pe = req.parent_execution
    shard = engine.shard(req.namespace_id, pe.workflow_id)

    def apply(ms: MutableState) -> str:
        if not ms.running:
            return ms.record.reset_run_id  # a parent run closed by a reset: its reset run carries the child
        children.child_closed(ms, req.parent_initiated_event_id, req.child_execution, req.completion_event)
        return ""

    run_id = pe.run_id
    for _ in range(MAX_RESET_REDIRECTS + 1):  # as Temporal, follow a chain of resets (bounded: no loops)
        try:
            run_id, _ms = await shard.update_run(req.namespace_id, pe.workflow_id, run_id, apply)
        except children.ChildNotStarted as e:
            raise Unavailable(str(e)) from None
        if not run_id:
            return
    raise Internal("The chain of resets is too long to iterate.")
