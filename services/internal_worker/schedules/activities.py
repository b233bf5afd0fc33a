"""The scheduler workflow's side effects, as activities on the internal worker's frontend client: start a
scheduled run (idempotent by its request id), look at runs without waiting (refresh), wait for a run's chain to
close (a long poll on its close event, heartbeating), cancel or terminate a run for CANCEL_OTHER /
TERMINATE_OTHER. Errors that retrying cannot fix come back non-retryable, so the workflow hears of them at once."""

from __future__ import annotations

import time
from typing import Any

import durata.activity as activity
from durata.exceptions import ApplicationError
from temporalio.api.common.v1 import message_pb2 as common
from temporalio.api.enums.v1 import event_type_pb2
from temporalio.api.enums.v1 import workflow_pb2 as wf_enums
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv

from server.common.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, ServiceError
from server.gen.durata.internal.schedule.v1 import schedule_pb2

ET = event_type_pb2.EventType
WS = wf_enums.WorkflowExecutionStatus
_CLOSE_STATUS = {
    ET.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED: WS.WORKFLOW_EXECUTION_STATUS_COMPLETED,
    ET.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED: WS.WORKFLOW_EXECUTION_STATUS_FAILED,
    ET.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED: WS.WORKFLOW_EXECUTION_STATUS_CANCELED,
    ET.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED: WS.WORKFLOW_EXECUTION_STATUS_TERMINATED,
    ET.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW: WS.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW,
    ET.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT: WS.WORKFLOW_EXECUTION_STATUS_TIMED_OUT,
}
_FINAL = (AlreadyExists, InvalidArgument, FailedPrecondition, NotFound)


def _final(err: ServiceError) -> ApplicationError:
    return ApplicationError(err.message, type=type(err).__name__, non_retryable=True)


class SchedulerActivities:
    def __init__(self, client: Any, rpc_timeout_seconds: float = 10.0, long_poll_seconds: float = 20.0) -> None:
        self.client = client
        self.rpc_timeout_seconds = rpc_timeout_seconds
        self.long_poll_seconds = long_poll_seconds

    def _deadline(self, seconds: float | None = None) -> float:
        return time.monotonic() + (seconds or self.rpc_timeout_seconds)

    @activity.defn(name="SchedulerStartWorkflow")
    async def start_workflow(self, request: wsv.StartWorkflowExecutionRequest) -> wsv.StartWorkflowExecutionResponse:
        try:
            resp: wsv.StartWorkflowExecutionResponse = await self.client.StartWorkflowExecution(
                request, deadline=self._deadline()
            )
        except _FINAL as err:
            raise _final(err) from None
        return resp

    async def _close_of(self, namespace: str, execution: common.WorkflowExecution,
                        wait: bool) -> schedule_pb2.WatchWorkflowResult | None:
        """The close of the chain that ``execution`` began, following continue-as-new; None while it runs."""
        current = common.WorkflowExecution()
        current.CopyFrom(execution)
        while True:
            if wait:
                activity.heartbeat()
            try:
                page = await self.client.GetWorkflowExecutionHistory(
                    wsv.GetWorkflowExecutionHistoryRequest(
                        namespace=namespace, execution=current, wait_new_event=wait,
                        history_event_filter_type=wf_enums.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT,
                    ),
                    deadline=self._deadline(self.long_poll_seconds + 5 if wait else None),
                )  # fmt: skip
            except NotFound:  # deleted meanwhile: it is not running, and nothing more is known
                gone: Any = WS.WORKFLOW_EXECUTION_STATUS_TERMINATED
                return schedule_pb2.WatchWorkflowResult(status=gone)
            closed = [e for e in page.history.events if e.event_type in _CLOSE_STATUS]
            if not closed:
                if not wait:
                    return None
                continue
            event = closed[-1]
            if event.event_type == ET.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
                current.run_id = event.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
                continue
            status: Any = _CLOSE_STATUS[event.event_type]
            out = schedule_pb2.WatchWorkflowResult(status=status, close_time=event.event_time)
            if event.event_type == ET.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
                attrs = event.workflow_execution_completed_event_attributes
                if attrs.new_execution_run_id:  # a cron/retry chain goes on
                    current.run_id = attrs.new_execution_run_id
                    continue
                out.result.CopyFrom(attrs.result)
            elif event.event_type == ET.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
                attrs_f = event.workflow_execution_failed_event_attributes
                if attrs_f.new_execution_run_id:
                    current.run_id = attrs_f.new_execution_run_id
                    continue
                out.failure.CopyFrom(attrs_f.failure)
            return out

    @activity.defn(name="SchedulerWatchWorkflow")
    async def watch_workflow(self, execution: common.WorkflowExecution) -> schedule_pb2.WatchWorkflowResult:
        result = await self._close_of(activity.info().workflow_namespace, execution, wait=True)
        assert result is not None
        return result

    @activity.defn(name="SchedulerRefreshWorkflows")
    async def refresh_workflows(self, executions: schedule_pb2.WorkflowExecutions) -> schedule_pb2.WatchWorkflowResults:
        out = schedule_pb2.WatchWorkflowResults()
        for execution in executions.executions:
            result = await self._close_of(activity.info().workflow_namespace, execution, wait=False)
            if result is not None:
                item = out.results.add()
                item.CopyFrom(result)
                item.workflow_id = execution.workflow_id
        return out

    @activity.defn(name="SchedulerCancelWorkflow")
    async def cancel_workflow(self, request: wsv.RequestCancelWorkflowExecutionRequest) -> None:
        try:
            await self.client.RequestCancelWorkflowExecution(request, deadline=self._deadline())
        except _FINAL:
            pass  # gone or already closed: nothing to cancel

    @activity.defn(name="SchedulerTerminateWorkflow")
    async def terminate_workflow(self, request: wsv.TerminateWorkflowExecutionRequest) -> None:
        try:
            await self.client.TerminateWorkflowExecution(request, deadline=self._deadline())
        except _FINAL:
            pass
