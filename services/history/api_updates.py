"""UpdateWorkflowExecution / PollWorkflowExecutionUpdate (reference 2.11): admit an update (idempotent by
update id), make sure a workflow task delivers it, and long-poll (~20 s) for the requested stage."""

from __future__ import annotations

import time
from collections.abc import Callable

from temporalio.api.common.v1 import message_pb2 as common_pb2
from temporalio.api.failure.v1 import message_pb2 as failure_pb2
from temporalio.api.update.v1 import message_pb2 as update_pb2
from temporalio.api.workflowservice.v1 import request_response_pb2 as ws

from server.common.errors import InvalidArgument, NotFound
from server.gen.durata.internal.history.v1 import service_pb2 as hs

from .api import workflow_pause
from .api_workflow import resolve_run_id
from .engine import Engine
from .mutable_state import MutableState
from .shard import ShardContext
from .updates import ACCEPTED, ADMITTED, COMPLETED, UpdateEntry

POLL_SLICE = 1.0
RunKey = tuple[str, str, str]


def _budget(engine: Engine, deadline: float | None) -> float:
    end = time.monotonic() + engine.config.history_long_poll_seconds
    if deadline is not None and deadline - 1.0 < end:
        # The caller's deadline comes first: wait it out (it sees DEADLINE_EXCEEDED, as with Temporal) rather than
        # hand back an early, stage-only answer that the SDK re-polls at once.
        end = deadline
    return end


async def _load(shard: ShardContext, key: RunKey) -> MutableState:
    ms = await shard.load(*key)
    if ms is None:
        raise NotFound(f"Workflow execution not found: {key[1]}/{key[2]}")
    return ms


async def _completed_outcome(engine: Engine, shard: ShardContext, key: RunKey, ms: MutableState, update_id: str) -> update_pb2.Outcome | None:
    info = ms.record.updates.get(update_id)
    if info is None or not info.completed_event_id:
        return None
    cid = info.completed_event_id
    events = await engine.read_events(shard, *key, cid, cid + 1)
    if not events or not events[0].HasField("workflow_execution_update_completed_event_attributes"):
        return None
    return events[0].workflow_execution_update_completed_event_attributes.outcome


async def _wait(
    engine: Engine, shard: ShardContext, key: RunKey, update_id: str, entry: UpdateEntry | None, stage: int, end: float
) -> tuple[int, update_pb2.Outcome | None]:
    """(reached stage, outcome) once ``stage`` is reached or the budget is spent (then the current stage)."""
    while True:
        if entry is not None and entry.outcome is not None:
            return COMPLETED, entry.outcome
        ms = await _load(shard, key)
        outcome = await _completed_outcome(engine, shard, key, ms, update_id)
        if outcome is not None:
            return COMPLETED, outcome
        current = entry.stage if entry is not None else 0
        info = ms.record.updates.get(update_id)
        if info is not None and info.accepted_event_id:
            current = max(current, ACCEPTED)
        elif info is not None and info.admitted_event_id:
            current = max(current, ADMITTED)  # a durable request (re-applied by a reset)
        if current == 0:
            raise NotFound(f"Update {update_id!r} not found.")
        if current >= stage:
            return current, None
        if not ms.running:
            engine.updates.remove(key, update_id)
            if current >= ACCEPTED:  # accepted, never completed: the run closed under it (Temporal's abort)
                return COMPLETED, accepted_update_completed_workflow()
            raise NotFound("workflow execution already completed")
        left = end - time.monotonic()
        if left <= 0:
            return current, None
        await engine.notifier.wait(key, min(POLL_SLICE, left))


def admit_with_start(engine: Engine, req: ws.UpdateWorkflowExecutionRequest) -> Callable[[MutableState], None]:
    """Update-with-start: admit the update to the run just committed (the caller still holds its lock), so its
    first workflow task delivers it; UpdateWorkflowExecution then finds it admitted and only waits."""

    def admit(ms: MutableState) -> None:
        r = ms.record
        if not req.request.meta.update_id or not req.request.input.name:
            return  # UpdateWorkflowExecution reports what is missing
        engine.updates.admit((r.namespace_id, r.workflow_id, r.run_id), req.request)

    return admit


def accepted_update_completed_workflow() -> update_pb2.Outcome:
    """The outcome of an update accepted by a run that then closed without completing it."""
    return update_pb2.Outcome(failure=failure_pb2.Failure(
        message="Workflow Update failed because the Workflow completed before the Update completed.",
        source="Server",
        application_failure_info=failure_pb2.ApplicationFailureInfo(
            type="AcceptedUpdateCompletedWorkflow", non_retryable=True
        ),
    ))


def _response(key: RunKey, update_id: str, stage: int, outcome: update_pb2.Outcome | None) -> ws.UpdateWorkflowExecutionResponse:
    ref = update_pb2.UpdateRef(
        workflow_execution=common_pb2.WorkflowExecution(workflow_id=key[1], run_id=key[2]), update_id=update_id
    )
    return ws.UpdateWorkflowExecutionResponse(update_ref=ref, outcome=outcome, stage=stage)  # type: ignore[arg-type]


async def update_workflow(engine: Engine, req: hs.UpdateWorkflowExecutionRequest, deadline: float | None) -> ws.UpdateWorkflowExecutionResponse:
    r = req.request
    update_id = r.request.meta.update_id
    if not update_id:
        raise InvalidArgument("UpdateId is not set on request.")
    if not r.request.input.name:
        raise InvalidArgument("Update name is not set on request.")
    ns_id = req.namespace_id
    wf_id = r.workflow_execution.workflow_id
    shard = engine.shard(ns_id, wf_id)
    run_id = await resolve_run_id(engine, shard, ns_id, r.workflow_execution)
    key = (ns_id, wf_id, run_id)
    ms = await _load(shard, key)
    if r.first_execution_run_id and ms.record.first_execution_run_id != r.first_execution_run_id:
        raise NotFound("workflow execution not found")  # Temporal's text for a first_execution_run_id mismatch
    workflow_pause.check_update_allowed(ms)  # a paused run takes no updates (FAILED_PRECONDITION)
    stage = r.wait_policy.lifecycle_stage or ADMITTED
    end = _budget(engine, deadline)
    entry = engine.updates.get(key, update_id)
    info = ms.record.updates.get(update_id)
    if entry is None and info is None:
        if not ms.running:
            raise NotFound("workflow execution already completed")
        entry = engine.updates.admit(key, r.request)

        def ensure_delivery(m: MutableState) -> None:
            if not m.running:
                raise NotFound("workflow execution already completed")
            workflow_pause.check_update_allowed(m)
            m.ensure_workflow_task(speculative=True)

        try:
            await shard.update_run(ns_id, wf_id, run_id, ensure_delivery)
        except BaseException:
            engine.updates.remove(key, update_id)
            raise
    reached, outcome = await _wait(engine, shard, key, update_id, entry, stage, end)
    return _response(key, update_id, reached, outcome)


async def poll_update(engine: Engine, req: hs.PollWorkflowExecutionUpdateRequest, deadline: float | None) -> ws.PollWorkflowExecutionUpdateResponse:
    r = req.request
    ref = r.update_ref
    if not ref.update_id:
        raise InvalidArgument("UpdateId is not set on request.")
    ns_id = req.namespace_id
    wf_id = ref.workflow_execution.workflow_id
    shard = engine.shard(ns_id, wf_id)
    run_id = await resolve_run_id(engine, shard, ns_id, ref.workflow_execution)
    key = (ns_id, wf_id, run_id)
    # No wait policy: answer at once with the current stage (Temporal treats UNSPECIFIED as ADMITTED).
    stage = r.wait_policy.lifecycle_stage or ADMITTED
    reached, outcome = await _wait(engine, shard, key, ref.update_id, engine.updates.get(key, ref.update_id), stage, _budget(engine, deadline))
    resp = _response(key, ref.update_id, reached, outcome)
    return ws.PollWorkflowExecutionUpdateResponse(outcome=resp.outcome if outcome is not None else None, stage=resp.stage, update_ref=resp.update_ref)
