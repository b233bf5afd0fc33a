"""Auto-reset points: one per (binary checksum, build id) pair, the newest 20, not resettable with children in
flight, rolled over to the next run of a chain with an expiry, and relabelled for a reset run."""

from __future__ import annotations

from datetime import timedelta

from temporalio.api.common.v1 import message_pb2 as common_pb2
from temporalio.api.workflowservice.v1 import request_response_pb2 as ws

from server.gen.durata.internal.history.v1 import state_pb2
from services.history import reset_points
from services.history.mutable_state import MutableState, from_ts

from .test_state_machine import T0, Run


def completion(build: str) -> ws.RespondWorkflowTaskCompletedRequest:
    return ws.RespondWorkflowTaskCompletedRequest(
        binary_checksum=build, worker_version_stamp=common_pb2.WorkerVersionStamp(build_id=f"v-{build}")
    )


def test_one_point_per_build_newest_twenty() -> None:
    run = Run()
    for i, build in enumerate(["a", "a", "b", *[f"x{n}" for n in range(25)]]):
        run.tx(lambda ms, b=build, e=i + 4: reset_points.add_from_completion(ms, completion(b), e))
    points = run.record.auto_reset_points.points
    assert len(points) == reset_points.MAX_RESET_POINTS
    assert [p.binary_checksum for p in points][-1] == "x24" and "a" not in [p.binary_checksum for p in points]
    assert points[-1].build_id == "v-x24" and points[-1].run_id == "run-1" and points[-1].resettable


def test_not_resettable_with_a_child_in_flight() -> None:
    run = Run()
    run.record.children[9].CopyFrom(state_pb2.ChildInfo())
    run.tx(lambda ms: reset_points.add_from_completion(ms, completion("a"), 4))
    assert not run.record.auto_reset_points.points[0].resettable


def test_roll_over_and_reset_relabel() -> None:
    run = Run()
    run.tx(lambda ms: reset_points.add_from_completion(ms, completion("a"), 4))
    nxt = state_pb2.MutableState(run_id="run-2")
    reset_points.roll_over(run.record, nxt, T0, timedelta(days=3))
    assert from_ts(nxt.auto_reset_points.points[0].expire_time) == T0 + timedelta(days=3)
    MutableState(nxt, T0)  # still a valid record
    nxt.auto_reset_points.points.add(run_id="run-2", first_workflow_task_completed_id=4, binary_checksum="b")
    nxt.auto_reset_points.points.add(run_id="run-2", first_workflow_task_completed_id=9, binary_checksum="c")
    reset = state_pb2.MutableState(run_id="run-3")
    reset_points.carry_into_reset(nxt, reset, 9)
    assert [(p.run_id, p.binary_checksum) for p in reset.auto_reset_points.points] == [("run-1", "a"), ("run-3", "b")]
