"""The HistoryService handler: one coroutine per RPC of history/v1/service.proto, delegating to the api_*
modules. Logging context is bound here."""

from __future__ import annotations

from temporalio.api.workflowservice.v1 import request_response_pb2 as ws

from server.gen.durata.internal.history.v1 import service_pb2 as hs

from . import api_internal, api_read, api_tasks, api_updates, api_workflow
from .api import activity_options, activity_pause, reset, sticky, workflow_options, workflow_pause
from .api.eager_start import EagerStart
from .engine import Engine


class HistoryHandler:
    def __init__(self, engine: Engine) -> None:
        self._e = engine

    async def StartWorkflowExecution(
        self, request: hs.StartWorkflowExecutionRequest, *, deadline: float | None = None
    ) -> ws.StartWorkflowExecutionResponse:
        eager = EagerStart(request.request)
        run_id, started = await api_workflow.start_workflow(
            self._e, request.namespace_id, request.request, parent=request.parent if request.HasField("parent") else None,
            on_new_run=eager.apply if eager.requested else None,
            on_committed=api_updates.admit_with_start(self._e, request.update_with_start)
            if request.HasField("update_with_start") else None,
        )
        resp = ws.StartWorkflowExecutionResponse(
            run_id=run_id, first_execution_run_id=run_id, started=started, status=_running() if started else 0  # type: ignore[arg-type]
        )
        task = await eager.response(self._e, request.namespace_id, run_id) if started else None
        if task is not None:
            resp.eager_workflow_task.CopyFrom(task)
        return resp

    async def SignalWithStartWorkflowExecution(
        self, request: hs.SignalWithStartWorkflowExecutionRequest, *, deadline: float | None = None
    ) -> ws.SignalWithStartWorkflowExecutionResponse:
        run_id, started = await api_workflow.start_workflow(
            self._e, request.namespace_id, request.request, signal_with_start=True
        )
        return ws.SignalWithStartWorkflowExecutionResponse(run_id=run_id, started=started)

    async def SignalWorkflowExecution(
        self, request: hs.SignalWorkflowExecutionRequest, *, deadline: float | None = None
    ) -> ws.SignalWorkflowExecutionResponse:
        await api_workflow.signal_workflow(
            self._e, request.namespace_id, request.request,
            request.external_workflow_execution if request.HasField("external_workflow_execution") else None,
            request.child_workflow_only,
        )
        return ws.SignalWorkflowExecutionResponse()

    async def RequestCancelWorkflowExecution(
        self, request: hs.RequestCancelWorkflowExecutionRequest, *, deadline: float | None = None
    ) -> ws.RequestCancelWorkflowExecutionResponse:
        await api_workflow.request_cancel(
            self._e, request.namespace_id, request.request,
            request.external_workflow_execution if request.HasField("external_workflow_execution") else None,
            request.external_initiated_event_id,
            request.child_workflow_only,
        )
        return ws.RequestCancelWorkflowExecutionResponse()

    async def TerminateWorkflowExecution(
        self, request: hs.TerminateWorkflowExecutionRequest, *, deadline: float | None = None
    ) -> ws.TerminateWorkflowExecutionResponse:
        await api_workflow.terminate(self._e, request.namespace_id, request.request)
        return ws.TerminateWorkflowExecutionResponse()

    async def PauseActivity(self, request: hs.PauseActivityRequest, *, deadline: float | None = None) -> ws.PauseActivityResponse:
        await activity_pause.pause_activity(self._e, request.namespace_id, request.request)
        return ws.PauseActivityResponse()

    async def UnpauseActivity(self, request: hs.UnpauseActivityRequest, *, deadline: float | None = None) -> ws.UnpauseActivityResponse:
        await activity_pause.unpause_activity(self._e, request.namespace_id, request.request)
        return ws.UnpauseActivityResponse()

    async def ResetActivity(self, request: hs.ResetActivityRequest, *, deadline: float | None = None) -> ws.ResetActivityResponse:
        await activity_pause.reset_activity(self._e, request.namespace_id, request.request)
        return ws.ResetActivityResponse()

    async def UpdateActivityOptions(
        self, request: hs.UpdateActivityOptionsRequest, *, deadline: float | None = None
    ) -> ws.UpdateActivityOptionsResponse:
        return await activity_options.update_activity_options(self._e, request.namespace_id, request.request)

    async def UpdateWorkflowExecutionOptions(
        self, request: hs.UpdateWorkflowExecutionOptionsRequest, *, deadline: float | None = None
    ) -> ws.UpdateWorkflowExecutionOptionsResponse:
        return await workflow_options.update_workflow_options(self._e, request.namespace_id, request.request)

    async def PauseWorkflowExecution(
        self, request: hs.PauseWorkflowExecutionRequest, *, deadline: float | None = None
    ) -> ws.PauseWorkflowExecutionResponse:
        await workflow_pause.pause_workflow(self._e, request.namespace_id, request.request)
        return ws.PauseWorkflowExecutionResponse()

    async def UnpauseWorkflowExecution(
        self, request: hs.UnpauseWorkflowExecutionRequest, *, deadline: float | None = None
    ) -> ws.UnpauseWorkflowExecutionResponse:
        await workflow_pause.unpause_workflow(self._e, request.namespace_id, request.request)
        return ws.UnpauseWorkflowExecutionResponse()

    async def DeleteWorkflowExecution(
        self, request: hs.DeleteWorkflowExecutionRequest, *, deadline: float | None = None
    ) -> ws.DeleteWorkflowExecutionResponse:
        await api_workflow.delete_workflow(self._e, request.namespace_id, request.request.workflow_execution)
        return ws.DeleteWorkflowExecutionResponse()

    async def DescribeWorkflowExecution(
        self, request: hs.DescribeWorkflowExecutionRequest, *, deadline: float | None = None
    ) -> ws.DescribeWorkflowExecutionResponse:
        return await api_read.describe(self._e, request)

    async def GetWorkflowExecutionHistory(
        self, request: hs.GetWorkflowExecutionHistoryRequest, *, deadline: float | None = None
    ) -> ws.GetWorkflowExecutionHistoryResponse:
        return await api_read.get_history(self._e, request, deadline)

    async def QueryWorkflow(
        self, request: hs.QueryWorkflowRequest, *, deadline: float | None = None
    ) -> ws.QueryWorkflowResponse:
        return await api_read.query(self._e, request, deadline)

    async def ResetStickyTaskQueue(
        self, request: hs.ResetStickyTaskQueueRequest, *, deadline: float | None = None
    ) -> ws.ResetStickyTaskQueueResponse:
        await sticky.reset_sticky(self._e, request.namespace_id, request.request.execution)
        return ws.ResetStickyTaskQueueResponse()

    async def ResetWorkflowExecution(
        self, request: hs.ResetWorkflowExecutionRequest, *, deadline: float | None = None
    ) -> ws.ResetWorkflowExecutionResponse:
        return ws.ResetWorkflowExecutionResponse(run_id=await reset.reset_workflow(self._e, request.namespace_id, request.request))

    async def RecordWorkflowTaskStarted(
        self, request: hs.RecordWorkflowTaskStartedRequest, *, deadline: float | None = None
    ) -> ws.PollWorkflowTaskQueueResponse:
        return await api_tasks.record_workflow_task_started(self._e, request)

    async def RecordActivityTaskStarted(
        self, request: hs.RecordActivityTaskStartedRequest, *, deadline: float | None = None
    ) -> ws.PollActivityTaskQueueResponse:
        return await api_tasks.record_activity_task_started(self._e, request)

    async def RespondWorkflowTaskCompleted(
        self, request: hs.RespondWorkflowTaskCompletedRequest, *, deadline: float | None = None
    ) -> ws.RespondWorkflowTaskCompletedResponse:
        return await api_tasks.respond_workflow_task_completed(self._e, request.namespace_id, request.request)

    async def RespondWorkflowTaskFailed(
        self, request: hs.RespondWorkflowTaskFailedRequest, *, deadline: float | None = None
    ) -> ws.RespondWorkflowTaskFailedResponse:
        return await api_tasks.respond_workflow_task_failed(self._e, request.namespace_id, request.request)

    async def RespondActivityTaskCompleted(
        self, request: hs.RespondActivityTaskCompletedRequest, *, deadline: float | None = None
    ) -> ws.RespondActivityTaskCompletedResponse:
        await api_tasks.respond_activity_completed(self._e, request)
        return ws.RespondActivityTaskCompletedResponse()

    async def RespondActivityTaskFailed(
        self, request: hs.RespondActivityTaskFailedRequest, *, deadline: float | None = None
    ) -> ws.RespondActivityTaskFailedResponse:
        await api_tasks.respond_activity_failed(self._e, request)
        return ws.RespondActivityTaskFailedResponse()

    async def RespondActivityTaskCanceled(
        self, request: hs.RespondActivityTaskCanceledRequest, *, deadline: float | None = None
    ) -> ws.RespondActivityTaskCanceledResponse:
        await api_tasks.respond_activity_canceled(self._e, request)
        return ws.RespondActivityTaskCanceledResponse()

    async def RecordActivityTaskHeartbeat(
        self, request: hs.RecordActivityTaskHeartbeatRequest, *, deadline: float | None = None
    ) -> ws.RecordActivityTaskHeartbeatResponse:
        return await api_tasks.record_heartbeat(self._e, request)

    async def UpdateWorkflowExecution(
        self, request: hs.UpdateWorkflowExecutionRequest, *, deadline: float | None = None
    ) -> ws.UpdateWorkflowExecutionResponse:
        return await api_updates.update_workflow(self._e, request, deadline)

    async def PollWorkflowExecutionUpdate(
        self, request: hs.PollWorkflowExecutionUpdateRequest, *, deadline: float | None = None
    ) -> ws.PollWorkflowExecutionUpdateResponse:
        return await api_updates.poll_update(self._e, request, deadline)

    async def ScheduleWorkflowTask(
        self, request: hs.ScheduleWorkflowTaskRequest, *, deadline: float | None = None
    ) -> hs.ScheduleWorkflowTaskResponse:
        await api_internal.schedule_workflow_task(self._e, request)
        return hs.ScheduleWorkflowTaskResponse()

    async def RecordChildExecutionCompleted(
        self, request: hs.RecordChildExecutionCompletedRequest, *, deadline: float | None = None
    ) -> hs.RecordChildExecutionCompletedResponse:
        await api_internal.record_child_completed(self._e, request)
        return hs.RecordChildExecutionCompletedResponse()


def _running() -> int:
    from temporalio.api.enums.v1 import workflow_pb2 as wf_enums

    return wf_enums.WORKFLOW_EXECUTION_STATUS_RUNNING
