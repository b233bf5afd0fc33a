"""What the scheduler core asks its workflow wrapper to do. The core never performs I/O: it returns these, the
wrapper executes them (local activities, timers) and reports the outcome back to the core.

- StartWorkflow: start one run; report ``Scheduler.started`` or ``Scheduler.start_failed`` (by request id).
- RefreshWorkflows: look (without waiting) at each run; report each one that has closed with
  ``Scheduler.closed``, then call ``Scheduler.refreshed``. No start is taken until then, so an overlap policy
  decides on up-to-date facts.
- WatchWorkflow: wait (long poll) until the run closes; report it with ``Scheduler.closed``.
- CancelWorkflow / TerminateWorkflow: fire and forget (the close shows up through the watcher); a failure may be
  ignored, the core asks again on its next pass.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from temporalio.api.common.v1 import message_pb2 as common
from temporalio.api.enums.v1 import workflow_pb2 as wf_enums
from temporalio.api.failure.v1 import message_pb2 as failure_pb
from temporalio.api.workflow.v1 import message_pb2 as workflow_pb
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv

from server.common.payloads import json_payload

SCHEDULED_BY_ID = "TemporalScheduledById"
SCHEDULED_START_TIME = "TemporalScheduledStartTime"
CANCEL_REASON = "cancelled by schedule overlap policy"
TERMINATE_REASON = "terminated by schedule overlap policy"
# Temporal's bounds on how long a scheduled start may keep being retried (a manual one gets a minute).
MANUAL_START_TIMEOUT = timedelta(seconds=60)
MIN_START_TIMEOUT = timedelta(seconds=5)
MAX_START_TIMEOUT = timedelta(hours=1)
_REQUEST_ID_NAMESPACE = uuid.UUID("6b1f6c55-0c43-4f5e-9a53-5d7c4b0a2d19")


def rfc3339_seconds(t: datetime) -> str:
    """Go's ``time.RFC3339`` of a UTC time truncated to the second: ``2006-01-02T15:04:05Z``."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def scheduled_workflow_id(base: str, nominal: datetime) -> str:
    """The id of a scheduled run: the action's workflow id, a dash and the nominal time (Temporal always
    appends it, so one nominal time can only ever start one run with REJECT_DUPLICATE)."""
    return f"{base}-{rfc3339_seconds(nominal)}"


def derived_request_id(*parts: str) -> str:
    """A request id that is the same on every replay of the same decision, so a retried start is a no-op."""
    return str(uuid.uuid5(_REQUEST_ID_NAMESPACE, "\x1f".join(parts)))


def identity(namespace: str, schedule_id: str) -> str:
    return f"temporal-scheduler-{namespace}-{schedule_id}"


@dataclass(frozen=True)
class StartWorkflow:
    request_id: str
    workflow_id: str
    nominal_time: datetime
    actual_time: datetime
    overlap_policy: int  # resolved: never UNSPECIFIED
    manual: bool
    last_completion_result: common.Payloads | None
    continued_failure: failure_pb.Failure | None
    # how long the wrapper may keep retrying the start before reporting start_failed
    timeout: timedelta
    # the complete request (namespace, identity, reuse policy, TemporalScheduledById/StartTime included)
    request: wsv.StartWorkflowExecutionRequest

    __hash__ = None  # type: ignore[assignment]  # holds protos


@dataclass(frozen=True)
class RefreshWorkflows:
    executions: tuple[common.WorkflowExecution, ...]

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True)
class WatchWorkflow:
    # workflow id plus the first run id of its chain: follow it through continue-as-new/retries
    workflow_id: str
    first_execution_run_id: str


@dataclass(frozen=True)
class CancelWorkflow:
    workflow_id: str
    first_execution_run_id: str
    request_id: str
    identity: str
    reason: str = CANCEL_REASON

    def request(self, namespace: str) -> wsv.RequestCancelWorkflowExecutionRequest:
        """Cancels the latest run of the chain that ``first_execution_run_id`` began, as Temporal does."""
        return wsv.RequestCancelWorkflowExecutionRequest(
            namespace=namespace, workflow_execution=common.WorkflowExecution(workflow_id=self.workflow_id),
            first_execution_run_id=self.first_execution_run_id, request_id=self.request_id,
            identity=self.identity, reason=self.reason,
        )  # fmt: skip


@dataclass(frozen=True)
class TerminateWorkflow:
    workflow_id: str
    first_execution_run_id: str
    identity: str
    reason: str = TERMINATE_REASON

    def request(self, namespace: str) -> wsv.TerminateWorkflowExecutionRequest:
        return wsv.TerminateWorkflowExecutionRequest(
            namespace=namespace, workflow_execution=common.WorkflowExecution(workflow_id=self.workflow_id),
            first_execution_run_id=self.first_execution_run_id, identity=self.identity, reason=self.reason,
        )  # fmt: skip


Action = StartWorkflow | RefreshWorkflows | WatchWorkflow | CancelWorkflow | TerminateWorkflow


def build_start_request(
    namespace: str,
    schedule_id: str,
    new_workflow: workflow_pb.NewWorkflowExecutionInfo,
    *,
    workflow_id: str,
    request_id: str,
    nominal: datetime,
    manual: bool,
    last_completion_result: common.Payloads | None,
    continued_failure: failure_pb.Failure | None,
) -> wsv.StartWorkflowExecutionRequest:
    """The StartWorkflowExecution request for one action, field for field what Temporal's scheduler sends."""
    req = wsv.StartWorkflowExecutionRequest(
        namespace=namespace, workflow_id=workflow_id, identity=identity(namespace, schedule_id),
        request_id=request_id,
        # a scheduled time may start one run at most; a manual one may repeat a closed run's id
        workflow_id_reuse_policy=(
            wf_enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE if manual
            else wf_enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE
        ),
    )  # fmt: skip
    for name in ("workflow_type", "task_queue", "input", "workflow_execution_timeout", "workflow_run_timeout",
                 "workflow_task_timeout", "retry_policy", "memo", "header", "user_metadata", "priority"):  # fmt: skip
        if new_workflow.HasField(name):
            getattr(req, name).CopyFrom(getattr(new_workflow, name))
    req.search_attributes.CopyFrom(new_workflow.search_attributes)
    req.search_attributes.indexed_fields[SCHEDULED_START_TIME].CopyFrom(json_payload(rfc3339_seconds(nominal)))
    req.search_attributes.indexed_fields[SCHEDULED_BY_ID].CopyFrom(json_payload(schedule_id))
    if last_completion_result is not None:
        req.last_completion_result.CopyFrom(last_completion_result)
    if continued_failure is not None:
        req.continued_failure.CopyFrom(continued_failure)
    return req
