"""Auto-reset points: the first workflow task each worker build completed in a run, kept (newest 20) in mutable
state and shown in DescribeWorkflowExecution, so an operator can reset to where a bad build took over."""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio.api.enums.v1 import deployment_pb2 as deployment_enums
from temporalio.api.workflow.v1 import message_pb2 as workflow_pb2
from temporalio.api.workflowservice.v1 import request_response_pb2 as ws

from server.gen.durata.internal.history.v1 import state_pb2

from .mutable_state import MutableState, to_ts

MAX_RESET_POINTS = 20  # Temporal's history.maxAutoResetPoints


def completing_build_id(req: ws.RespondWorkflowTaskCompletedRequest) -> str:
    """The build that completed the task: a versioned deployment's, else the stamp's (as Temporal reads it)."""
    opts = req.deployment_options
    if opts.worker_versioning_mode == deployment_enums.WORKER_VERSIONING_MODE_VERSIONED and opts.build_id:
        return opts.build_id
    if req.deployment.build_id:
        return req.deployment.build_id
    # Without build-id versioning advertised, core sends its build id as the binary checksum.
    return req.worker_version_stamp.build_id or req.binary_checksum


def add_from_completion(ms: MutableState, req: ws.RespondWorkflowTaskCompletedRequest, completed_event_id: int) -> None:
    """A point for this completion unless the (binary checksum, build id) pair already has one."""
    build_id = completing_build_id(req)
    points = ms.record.auto_reset_points.points
    if any(p.binary_checksum == req.binary_checksum and p.build_id == build_id for p in points):
        return
    r = ms.record
    point = workflow_pb2.ResetPointInfo(
        binary_checksum=req.binary_checksum,
        build_id=build_id,
        run_id=r.run_id,
        first_workflow_task_completed_id=completed_event_id,
        create_time=to_ts(ms.now),
        # Temporal's CheckResettable: a reset cannot rebuild children or requests to other workflows in flight.
        resettable=not (r.children or r.pending_signals or r.pending_cancels),
    )
    kept = [*points, point][-MAX_RESET_POINTS:]
    r.auto_reset_points.ClearField("points")
    r.auto_reset_points.points.extend(kept)
    ms.dirty = True


def roll_over(previous: state_pb2.MutableState, into: state_pb2.MutableState, now: datetime, retention: timedelta) -> None:
    """A new run of a chain (continue-as-new, retry, cron) inherits the points of the one before; the old run's
    points expire with its retention, as Temporal marks them."""
    for p in previous.auto_reset_points.points:
        copy = into.auto_reset_points.points.add()
        copy.CopyFrom(p)
        if not copy.HasField("expire_time"):
            copy.expire_time.CopyFrom(to_ts(now + retention))


def carry_into_reset(base: state_pb2.MutableState, into: state_pb2.MutableState, cut_event_id: int) -> None:
    """A reset run keeps the points rolled over from earlier runs and those of the base run before the cut
    (now naming the new run, whose history holds those events), as rebuilding its state from history gives."""
    for p in base.auto_reset_points.points:
        if p.run_id == base.run_id and p.first_workflow_task_completed_id >= cut_event_id:
            continue
        copy = into.auto_reset_points.points.add()
        copy.CopyFrom(p)
        if p.run_id == base.run_id:
            copy.run_id = into.run_id
