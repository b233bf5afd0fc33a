"""Request validation done before anything is routed (invariant 7: bad input gets INVALID_ARGUMENT naming the field).

Messages follow the real server's wording ("WorkflowId is not set on request.") because people search for them.
Only checks that need no workflow state live here; History validates everything that depends on the run.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterable

from croniter import croniter
from google.protobuf.duration_pb2 import Duration
from temporalio.api.common.v1 import message_pb2 as common
from temporalio.api.enums.v1 import task_queue_pb2 as tq_enums
from temporalio.api.enums.v1 import workflow_pb2 as enums_wf
from temporalio.api.enums.v1 import workflow_pb2 as wf_enums
from temporalio.api.taskqueue.v1 import message_pb2 as taskqueue
from temporalio.api.workflow.v1 import message_pb2 as wfv1
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv1

from server.common.durations import from_duration, validate_and_cap
from server.common.errors import FailedPrecondition, InvalidArgument, shorten
from services.frontend.config import FrontendConfig

RESERVED_TASK_QUEUE_PREFIX = "/_sys/"
# Go duration syntax accepted by "@every <duration>" cron schedules.
_GO_DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")
_CRON_DESCRIPTORS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}


def check_id(value: str, name: str, config: FrontendConfig, *, required: bool = True) -> None:
    """Ids, names and queue names: set (when required) and at most ``max_id_length`` characters."""
    if not value:
        if required:
            raise InvalidArgument(f"{name} is not set on request.")
        return
    if len(value) > config.max_id_length:
        raise InvalidArgument(f"{name} length exceeds limit.")


def check_optional_ids(config: FrontendConfig, **values: str) -> None:
    """Optional free-form ids (identity, request id, ...): only the length limit applies."""
    for name, value in values.items():
        check_id(value, name, config, required=False)


def check_run_id(run_id: str) -> None:
    if run_id:
        try:
            uuid.UUID(run_id)
        except ValueError:
            raise InvalidArgument("Invalid RunId.") from None


def check_execution(
    execution: common.WorkflowExecution | None, config: FrontendConfig, *, present: bool
) -> None:
    """A WorkflowExecution reference: workflow id required, run id optional but a UUID if given."""
    if not present or execution is None:
        raise InvalidArgument("Execution is not set on request.")
    check_id(execution.workflow_id, "WorkflowId", config)
    check_run_id(execution.run_id)


def check_task_queue(task_queue: taskqueue.TaskQueue, present: bool, config: FrontendConfig) -> None:
    if not present or not task_queue.name:
        raise InvalidArgument("TaskQueue is not set on request.")
    check_id(task_queue.name, "TaskQueue", config)
    if (
        task_queue.name.startswith(RESERVED_TASK_QUEUE_PREFIX)
        and task_queue.kind != tq_enums.TASK_QUEUE_KIND_STICKY
    ):
        raise InvalidArgument(
            f"TaskQueue name cannot start with reserved prefix {RESERVED_TASK_QUEUE_PREFIX}."
        )
    if task_queue.kind == tq_enums.TASK_QUEUE_KIND_STICKY:
        check_id(task_queue.normal_name, "TaskQueue.NormalName", config, required=False)
    elif task_queue.normal_name:
        raise InvalidArgument(
            f"only sticky queues can have normal name. tq: {shorten(task_queue.name)}, "
            f"normal name: {shorten(task_queue.normal_name)}"
        )


# A long poll whose caller gives it less than this cannot be served (Temporal's MinLongPollTimeout).
MIN_LONG_POLL_SECONDS = 2.0


def check_poll_deadline(deadline: float | None) -> None:
    """``deadline`` is absolute ``time.monotonic()``; None (in-process callers) means no deadline to respect."""
    if deadline is not None and deadline - time.monotonic() < MIN_LONG_POLL_SECONDS:
        raise FailedPrecondition("Context timeout is too short.")


def check_duration(duration: Duration, name: str) -> None:
    """Temporal's rule: same-signed, not negative; capped in place at 100 years (so nothing downstream overflows)."""
    reason = validate_and_cap(duration)
    if reason is not None:
        raise InvalidArgument(f"An invalid {name}Seconds is set on request. cause: {reason}")


def check_retry_policy(policy: common.RetryPolicy) -> None:
    """Same rules as the real server; unset fields (0) mean "use the default" and are fine."""
    for interval, label in ((policy.initial_interval, "InitialInterval"), (policy.maximum_interval, "MaximumInterval")):
        reason = validate_and_cap(interval)
        if reason is not None:
            raise InvalidArgument(f"invalid {label}: {reason}")
    initial = from_duration(policy.initial_interval)
    maximum = from_duration(policy.maximum_interval)
    if initial.total_seconds() < 0:
        raise InvalidArgument("InitialInterval cannot be negative on retry policy.")
    if policy.backoff_coefficient != 0 and policy.backoff_coefficient < 1:
        raise InvalidArgument("BackoffCoefficient cannot be less than 1 on retry policy.")
    if maximum.total_seconds() < 0:
        raise InvalidArgument("MaximumInterval cannot be negative on retry policy.")
    if maximum.total_seconds() > 0 and maximum < initial:
        raise InvalidArgument("MaximumInterval cannot be less than InitialInterval on retry policy.")
    if policy.maximum_attempts < 0:
        raise InvalidArgument("MaximumAttempts cannot be negative on retry policy.")
    if any(not t.strip() for t in policy.non_retryable_error_types):
        raise InvalidArgument("NonRetryableErrorTypes cannot have blank values.")


def check_cron_schedule(schedule: str) -> None:
    """Standard cron (5 fields), descriptors like ``@hourly``, ``@every <go duration>``, optional CRON_TZ prefix."""
    if not schedule:
        return
    expr = schedule.strip()
    if expr.startswith(("CRON_TZ=", "TZ=")):
        _, _, expr = expr.partition(" ")
        expr = expr.strip()
    if expr.startswith("@every"):
        ok = bool(_GO_DURATION.match(expr[len("@every") :].strip()))
    elif expr.startswith("@"):
        ok = expr in _CRON_DESCRIPTORS
    else:
        ok = len(expr.split()) == 5 and croniter.is_valid(expr)
    if not ok:
        raise InvalidArgument(f"Invalid CronSchedule: {schedule!r} is not a valid cron expression.")


def payloads_size(payloads: Iterable[common.Payload]) -> int:
    return sum(p.ByteSize() for p in payloads)


def check_blob_size(size: int, name: str, config: FrontendConfig) -> None:
    if size > config.blob_size_limit_bytes:
        raise InvalidArgument(
            f"{name} size ({size} bytes) exceeds the limit of {config.blob_size_limit_bytes} bytes."
        )


def check_search_attribute_names(attributes: common.SearchAttributes) -> None:
    for name in attributes.indexed_fields:
        if not name.strip():
            raise InvalidArgument("SearchAttributes cannot contain an empty attribute name.")


# Temporal's defaults for frontend.maxLinksPerRequest and frontend.linkMaxSize.
MAX_LINKS_PER_REQUEST = 10
MAX_LINK_BYTES = 4000
# Link variants and the fields each must carry (Temporal rejects a link of no known variant).
_LINK_REQUIRED = {
    "workflow_event": (("namespace", "namespace"), ("workflow_id", "workflow ID"), ("run_id", "run ID")),
    "batch_job": (("job_id", "job ID"),),
    "nexus_operation": (("namespace", "namespace"), ("operation_id", "operation ID"), ("run_id", "run ID")),
    "activity": (("namespace", "namespace"), ("activity_id", "activity ID"), ("run_id", "run ID")),
    "workflow": (("namespace", "namespace"), ("workflow_id", "workflow ID"), ("run_id", "run ID")),
}
_LINK_LABEL = {"workflow_event": "workflow event", "batch_job": "batch job", "nexus_operation": "nexus operation"}


def check_links(links: Iterable[common.Link], callbacks: Iterable[common.Callback] = ()) -> None:
    """Links of the request and of its completion callbacks; callbacks must be of the Nexus variant."""
    callbacks = list(callbacks)
    for cb in callbacks:
        variant = cb.WhichOneof("variant")
        if variant != "nexus":
            raise InvalidArgument(f"unsupported callback variant: {variant or 'none'}")
    every = [*links, *(link for cb in callbacks for link in cb.links)]
    if len(every) > MAX_LINKS_PER_REQUEST:
        raise InvalidArgument(f"cannot attach more than {MAX_LINKS_PER_REQUEST} links per request, got {len(every)}")
    for link in every:
        size = link.ByteSize()
        if size > MAX_LINK_BYTES:
            raise InvalidArgument(f"link exceeds allowed size of {MAX_LINK_BYTES}, got {size}")
        link_variant = link.WhichOneof("variant")
        if link_variant not in _LINK_REQUIRED:
            raise InvalidArgument("unsupported link variant")
        body = getattr(link, link_variant)
        label = _LINK_LABEL.get(link_variant, link_variant)
        for field, what in _LINK_REQUIRED[link_variant]:
            if not getattr(body, field):
                raise InvalidArgument(f"{label} link must not have an empty {what} field")


def check_versioning_override(override: wfv1.VersioningOverride) -> None:
    """The structure Temporal requires of an override, whatever the worker-deployment state."""
    kind = override.WhichOneof("override")
    if kind == "auto_upgrade":
        if not override.auto_upgrade:
            raise InvalidArgument("auto-upgrade override must be true")
    elif kind == "pinned":
        if not override.pinned.HasField("version"):
            raise InvalidArgument("must provide version if override is pinned.")
        if override.pinned.behavior == wfv1.VersioningOverride.PINNED_OVERRIDE_BEHAVIOR_UNSPECIFIED:
            raise InvalidArgument("must specify pinned override behavior if override is pinned.")
    elif kind == "one_time":
        if not override.one_time.HasField("target_deployment_version"):
            raise InvalidArgument("must provide target deployment version if override is one-time.")
    elif override.behavior == enums_wf.VERSIONING_BEHAVIOR_PINNED:
        if not override.HasField("deployment") and not override.pinned_version:
            raise InvalidArgument("must provide deployment (deprecated) or pinned version if behavior is 'PINNED'")
    elif override.behavior == enums_wf.VERSIONING_BEHAVIOR_AUTO_UPGRADE:
        if override.HasField("deployment"):
            raise InvalidArgument("only provide deployment if behavior is 'PINNED'")
        if override.pinned_version:
            raise InvalidArgument("only provide pinned version if behavior is 'PINNED'")


def check_id_policies(reuse: int, conflict: int, *, signal_with_start: bool) -> None:
    """Combinations the real server refuses up front."""
    if reuse == wf_enums.WORKFLOW_ID_REUSE_POLICY_TERMINATE_IF_RUNNING and conflict not in (
        wf_enums.WORKFLOW_ID_CONFLICT_POLICY_UNSPECIFIED,
    ):
        raise InvalidArgument(
            "Invalid WorkflowIdReusePolicy: WORKFLOW_ID_REUSE_POLICY_TERMINATE_IF_RUNNING cannot be used together "
            "with a WorkflowIdConflictPolicy."
        )
    if (
        reuse == wf_enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE
        and conflict == wf_enums.WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING
    ):
        raise InvalidArgument(
            "Invalid WorkflowIdReusePolicy: WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE cannot be used together with "
            "WorkflowIdConflictPolicy WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING."
        )
    if signal_with_start and conflict == wf_enums.WORKFLOW_ID_CONFLICT_POLICY_FAIL:
        raise InvalidArgument(
            "SignalWithStartWorkflowExecution does not support WorkflowIdConflictPolicy WORKFLOW_ID_CONFLICT_POLICY_FAIL."
        )


def validate_start(
    request: wsv1.StartWorkflowExecutionRequest | wsv1.SignalWithStartWorkflowExecutionRequest,
    config: FrontendConfig,
) -> None:
    """Everything about a new run that can be checked without its state (Start and SignalWithStart)."""
    signal_with_start = isinstance(request, wsv1.SignalWithStartWorkflowExecutionRequest)
    check_id(request.workflow_id, "WorkflowId", config)
    if not request.HasField("workflow_type") or not request.workflow_type.name:
        raise InvalidArgument("WorkflowType is not set on request.")
    check_id(request.workflow_type.name, "WorkflowType", config)
    check_task_queue(request.task_queue, request.HasField("task_queue"), config)
    check_optional_ids(config, RequestId=request.request_id, Identity=request.identity)
    if signal_with_start:
        assert isinstance(request, wsv1.SignalWithStartWorkflowExecutionRequest)
        check_id(request.signal_name, "SignalName", config)
        check_blob_size(payloads_size(request.signal_input.payloads), "SignalInput", config)
    check_duration(request.workflow_execution_timeout, "WorkflowExecutionTimeout")
    check_duration(request.workflow_run_timeout, "WorkflowRunTimeout")
    check_duration(request.workflow_task_timeout, "WorkflowTaskTimeout")
    check_duration(request.workflow_start_delay, "WorkflowStartDelay")
    if (
        request.cron_schedule
        and request.HasField("workflow_start_delay")
        and (request.workflow_start_delay.seconds or request.workflow_start_delay.nanos)
    ):
        raise InvalidArgument("CronSchedule and WorkflowStartDelay may not be used together.")
    check_cron_schedule(request.cron_schedule)
    if request.HasField("retry_policy"):
        check_retry_policy(request.retry_policy)
    check_id_policies(
        request.workflow_id_reuse_policy,
        request.workflow_id_conflict_policy,
        signal_with_start=signal_with_start,
    )
    check_search_attribute_names(request.search_attributes)
    check_links(request.links, getattr(request, "completion_callbacks", ()))
    if request.HasField("versioning_override"):
        check_versioning_override(request.versioning_override)
    check_blob_size(payloads_size(request.input.payloads), "Input", config)
    check_blob_size(payloads_size(request.memo.fields.values()), "Memo", config)


def validate_update(request: wsv1.UpdateWorkflowExecutionRequest, config: FrontendConfig) -> None:
    """An update request, alone or as the second operation of update-with-start."""
    check_execution(request.workflow_execution, config, present=request.HasField("workflow_execution"))
    if not request.HasField("request"):
        raise InvalidArgument("Update request is not set on request.")
    check_id(request.request.meta.update_id, "UpdateId", config)
    check_id(request.request.input.name, "Update name", config)
    check_optional_ids(config, Identity=request.request.meta.identity)
    check_run_id(request.first_execution_run_id)
    check_blob_size(payloads_size(request.request.input.args.payloads), "Input", config)
