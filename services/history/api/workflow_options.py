"""UpdateWorkflowExecutionOptions: change a running workflow's versioning override or priority.

The masked fields of the request are merged into the run's current options; if the result differs, one
WorkflowExecutionOptionsUpdated event records it (the whole merged override, or ``unset_versioning_override``
when none is left, and the merged priority) and the run's state takes it; nothing is written otherwise.
Durata has no worker deployments, so an override is kept and described but routes nothing, and a pinned
override must name its version. Time skipping is not served (the frontend answers UNIMPLEMENTED for it).
"""

from __future__ import annotations

from google.protobuf import field_mask_pb2
from temporalio.api.history.v1 import message_pb2 as history_pb2
from temporalio.api.workflow.v1 import message_pb2 as workflow_pb2
from temporalio.api.workflowservice.v1 import request_response_pb2 as ws

from server.common.errors import FailedPrecondition, InvalidArgument, NotFound, Unimplemented
from server.gen.durata.internal.history.v1 import state_pb2

from ..api_workflow import resolve_run_id
from ..engine import Engine
from ..mutable_state import MutableState, to_ts
from .activity_options import check_priority, parse_mask

WORKFLOW_COMPLETED = "workflow execution already completed"
TIME_SKIPPING_NOT_ENABLED = "The Time-Skipping feature is not enabled for namespace."
_OPTIONS = workflow_pb2.WorkflowExecutionOptions


def validate_request(req: ws.UpdateWorkflowExecutionOptionsRequest) -> None:
    """The frontend's checks (versioning override structure is checked by the caller)."""
    if not req.workflow_execution.workflow_id:
        raise InvalidArgument("WorkflowId is not set on request.")
    if not req.HasField("update_mask"):
        raise InvalidArgument("UpdateMask is required")
    if not req.HasField("workflow_execution_options"):
        raise InvalidArgument("WorkflowExecutionOptions is required")
    for path in req.update_mask.paths:
        if not field_mask_pb2.FieldMask(paths=[path]).IsValidForDescriptor(_OPTIONS.DESCRIPTOR):
            raise InvalidArgument(
                f'error parsing UpdateMask: proto: invalid path "{path}" for message "{_OPTIONS.DESCRIPTOR.full_name}"'
            )
    check_priority(req.workflow_execution_options.priority)
    if req.workflow_execution_options.HasField("time_skipping_config"):
        raise Unimplemented(TIME_SKIPPING_NOT_ENABLED)


def current_options(ms: MutableState) -> workflow_pb2.WorkflowExecutionOptions:
    r = ms.record
    opts = workflow_pb2.WorkflowExecutionOptions()
    if r.HasField("versioning_override"):
        opts.versioning_override.CopyFrom(r.versioning_override)
    if r.HasField("priority"):
        opts.priority.CopyFrom(r.priority)
    return opts


def merge(
    into: workflow_pb2.WorkflowExecutionOptions, frm: workflow_pb2.WorkflowExecutionOptions, paths: list[str]
) -> None:
    """Temporal's mergeWorkflowExecutionOptions (errors are wrapped by the caller)."""
    fields = parse_mask(paths)

    def override() -> None:
        if frm.HasField("versioning_override"):
            into.versioning_override.CopyFrom(frm.versioning_override)
        else:
            into.ClearField("versioning_override")

    if "versioningOverride" in fields:
        override()
    deployment, behavior = "versioningOverride.deployment" in fields, "versioningOverride.behavior" in fields
    if deployment != behavior:
        raise InvalidArgument("versioning_override fields must be updated together")
    if deployment:
        override()
    for f in fields:
        if f.startswith("versioningOverride.") and f not in ("versioningOverride.deployment", "versioningOverride.behavior"):
            raise InvalidArgument("versioning_override doesn't support partial updates")
    if "priority" in fields:
        if frm.HasField("priority"):
            into.priority.CopyFrom(frm.priority)
        else:
            into.ClearField("priority")
    for path, name in (("priorityKey", "priority_key"), ("fairnessKey", "fairness_key"), ("fairnessWeight", "fairness_weight")):
        if f"priority.{path}" in fields:
            setattr(into.priority, name, getattr(frm.priority, name))
    for f in fields:
        if f.startswith("timeSkippingConfig.") or f == "timeSkippingConfig":
            if f != "timeSkippingConfig":
                raise InvalidArgument("time_skipping_config doesn't support partial update")
            if frm.HasField("time_skipping_config"):
                raise Unimplemented(TIME_SKIPPING_NOT_ENABLED)


def update(ms: MutableState, req: ws.UpdateWorkflowExecutionOptionsRequest) -> ws.UpdateWorkflowExecutionOptionsResponse:
    if not ms.running:
        raise NotFound(WORKFLOW_COMPLETED)
    requested = req.workflow_execution_options
    pinned = requested.versioning_override.pinned
    if requested.versioning_override.HasField("pinned") and pinned.behavior and not pinned.HasField("version"):
        raise FailedPrecondition(
            f"must specify a specific pinned override version because workflow with id {ms.record.workflow_id} "
            "has behavior VERSIONING_BEHAVIOR_UNSPECIFIED and is not yet pinned to any version"
        )
    before = current_options(ms)
    merged = current_options(ms)
    try:
        merge(merged, requested, list(req.update_mask.paths))
    except InvalidArgument as e:
        raise InvalidArgument(f"error applying update_options: {e.message}") from None
    resp = ws.UpdateWorkflowExecutionOptionsResponse(workflow_execution_options=merged)
    if merged == before:
        return resp
    attrs = history_pb2.WorkflowExecutionOptionsUpdatedEventAttributes(
        unset_versioning_override=not merged.HasField("versioning_override"), identity=req.identity
    )
    if merged.HasField("versioning_override"):
        attrs.versioning_override.CopyFrom(merged.versioning_override)
    if merged.HasField("priority"):
        attrs.priority.CopyFrom(merged.priority)
    ms.append_or_buffer(attrs)  # while a workflow task runs it waits in the buffer, as external events do
    apply_event(ms, attrs)
    resp.update_time.CopyFrom(to_ts(ms.now))
    return resp


def apply_event(ms: MutableState, attrs: history_pb2.WorkflowExecutionOptionsUpdatedEventAttributes) -> None:
    """The run's state after a WorkflowExecutionOptionsUpdated event."""
    apply_to_record(ms.record, attrs)
    ms.dirty = True


def apply_to_record(
    r: state_pb2.MutableState, attrs: history_pb2.WorkflowExecutionOptionsUpdatedEventAttributes
) -> None:
    """Also for a reset run's copied events, which are replayed onto a bare record."""
    if attrs.unset_versioning_override:
        r.ClearField("versioning_override")
    elif attrs.HasField("versioning_override"):
        r.versioning_override.CopyFrom(attrs.versioning_override)
    if attrs.HasField("priority"):
        r.priority.CopyFrom(attrs.priority)
    else:
        r.ClearField("priority")


async def update_workflow_options(
    engine: Engine, namespace_id: str, req: ws.UpdateWorkflowExecutionOptionsRequest
) -> ws.UpdateWorkflowExecutionOptionsResponse:
    ex = req.workflow_execution
    shard = engine.shard(namespace_id, ex.workflow_id)
    run_id = await resolve_run_id(engine, shard, namespace_id, ex)
    resp, _ = await shard.update_run(namespace_id, ex.workflow_id, run_id, lambda ms: update(ms, req))
    return resp
