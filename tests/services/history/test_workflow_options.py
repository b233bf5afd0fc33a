"""UpdateWorkflowExecutionOptions, sans-IO: mask merge, one WorkflowExecutionOptionsUpdated event per change
(none when nothing changes), Temporal's errors, and the frontend's request checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from temporalio.api.common.v1 import message_pb2 as common_pb2
from temporalio.api.deployment.v1 import message_pb2 as deployment_pb2
from temporalio.api.enums.v1 import event_type_pb2
from temporalio.api.taskqueue.v1 import message_pb2 as taskqueue_pb2
from temporalio.api.workflow.v1 import message_pb2 as workflow_pb2
from temporalio.api.workflowservice.v1 import request_response_pb2 as ws

from server.common.errors import FailedPrecondition, InvalidArgument, NotFound, Unimplemented
from services.history import workflow_ops
from services.history.api import workflow_options as wo
from services.history.config import HistoryConfig
from services.history.mutable_state import MutableState

T0 = datetime(2026, 1, 1, tzinfo=UTC)
OPTIONS_UPDATED = event_type_pb2.EVENT_TYPE_WORKFLOW_EXECUTION_OPTIONS_UPDATED
VO = workflow_pb2.VersioningOverride


def _run(**kw: object) -> MutableState:
    req = ws.StartWorkflowExecutionRequest(
        workflow_id="wf", workflow_type=common_pb2.WorkflowType(name="W"),
        task_queue=taskqueue_pb2.TaskQueue(name="tq"), request_id="r", **kw,  # type: ignore[arg-type]
    )
    ms = workflow_ops.new_run(req, "ns", "run-1", T0, HistoryConfig(), timedelta(days=1))
    return MutableState(ms.record, T0 + timedelta(seconds=1))


def _req(paths: list[str], opts: workflow_pb2.WorkflowExecutionOptions | None = None) -> ws.UpdateWorkflowExecutionOptionsRequest:
    return ws.UpdateWorkflowExecutionOptionsRequest(
        namespace="default", workflow_execution=common_pb2.WorkflowExecution(workflow_id="wf"), identity="op",
        workflow_execution_options=opts or workflow_pb2.WorkflowExecutionOptions(), update_mask=FieldMask(paths=paths),
    )


def test_priority_sub_field_then_no_change() -> None:
    ms = _run(priority=common_pb2.Priority(fairness_key="f"))
    assert ms.record.priority.fairness_key == "f"  # kept from the start request
    opts = workflow_pb2.WorkflowExecutionOptions(priority=common_pb2.Priority(priority_key=3, fairness_key="ignored"))
    resp = wo.update(ms, _req(["priority.priority_key"], opts))
    assert resp.workflow_execution_options.priority == common_pb2.Priority(priority_key=3, fairness_key="f")
    assert resp.HasField("update_time")
    ev = ms.new_events[-1]
    assert ev.event_type == OPTIONS_UPDATED
    a = ev.workflow_execution_options_updated_event_attributes
    assert a.priority.priority_key == 3 and a.priority.fairness_key == "f" and a.identity == "op" and a.unset_versioning_override
    assert ms.record.priority.priority_key == 3
    n = len(ms.new_events)
    again = wo.update(ms, _req(["priority.priority_key"], opts))
    assert len(ms.new_events) == n and not again.HasField("update_time")
    assert again.workflow_execution_options.priority.priority_key == 3


def test_versioning_override_set_and_unset() -> None:
    ms = _run()
    opts = workflow_pb2.WorkflowExecutionOptions(versioning_override=VO(auto_upgrade=True))
    wo.update(ms, _req(["versioning_override"], opts))
    a = ms.new_events[-1].workflow_execution_options_updated_event_attributes
    assert a.versioning_override.auto_upgrade and not a.unset_versioning_override
    assert ms.record.versioning_override.auto_upgrade
    resp = wo.update(ms, _req(["versioning_override"]))
    a = ms.new_events[-1].workflow_execution_options_updated_event_attributes
    assert a.unset_versioning_override and not a.HasField("versioning_override")
    assert not ms.record.HasField("versioning_override") and not resp.workflow_execution_options.HasField("versioning_override")


def test_merge_errors() -> None:
    ms = _run()
    with pytest.raises(InvalidArgument) as err:
        wo.update(ms, _req(["versioning_override.behavior"]))
    assert err.value.message == "error applying update_options: versioning_override fields must be updated together"
    with pytest.raises(InvalidArgument) as err:
        wo.update(ms, _req(["versioning_override.pinned"]))
    assert err.value.message == "error applying update_options: versioning_override doesn't support partial updates"
    pinned = workflow_pb2.WorkflowExecutionOptions(versioning_override=VO(pinned=VO.PinnedOverride(
        behavior=VO.PINNED_OVERRIDE_BEHAVIOR_PINNED)))
    with pytest.raises(FailedPrecondition):
        wo.update(ms, _req(["versioning_override"], pinned))
    assert not ms.new_events
    workflow_ops.terminate(ms, "x", None, "op")
    with pytest.raises(NotFound):
        wo.update(ms, _req(["priority"]))


def test_pinned_override_with_version() -> None:
    ms = _run()
    version = deployment_pb2.WorkerDeploymentVersion(deployment_name="d", build_id="b")
    opts = workflow_pb2.WorkflowExecutionOptions(versioning_override=VO(pinned=VO.PinnedOverride(
        behavior=VO.PINNED_OVERRIDE_BEHAVIOR_PINNED, version=version)))
    wo.update(ms, _req(["versioning_override"], opts))
    assert ms.record.versioning_override.pinned.version.build_id == "b"


def test_frontend_checks() -> None:
    no_mask, no_options, no_id = _req(["priority"]), _req(["priority"]), _req(["priority"])
    no_mask.ClearField("update_mask")
    no_options.ClearField("workflow_execution_options")
    no_id.workflow_execution.workflow_id = ""
    cases = [
        (no_mask, "UpdateMask is required"),
        (no_options, "WorkflowExecutionOptions is required"),
        (no_id, "WorkflowId is not set on request."),
    ]
    cases.append((_req(["bogus"]), 'error parsing UpdateMask: proto: invalid path "bogus" for message '
                  '"temporal.api.workflow.v1.WorkflowExecutionOptions"'))
    cases.append((_req(["priority"], workflow_pb2.WorkflowExecutionOptions(priority=common_pb2.Priority(priority_key=-1))),
                  "priority key can't be negative"))
    for req, message in cases:
        with pytest.raises(InvalidArgument) as err:
            wo.validate_request(req)
        assert err.value.message == message
    wo.validate_request(_req(["priority.priority_key", "versioning_override"]))
    with pytest.raises(Unimplemented):
        wo.validate_request(_req(["time_skipping_config"], workflow_pb2.WorkflowExecutionOptions(
            time_skipping_config=common_pb2.TimeSkippingConfig())))
