"""ExecuteMultiOperation (update-with-start): validate [Start, Update] as Temporal's frontend does and run them.

Temporal's rules (service/history/api/multioperation): if the current run already knows the update id (running, or
closed with the update completed) the call attaches to it; a running workflow is also used when the start carries
the run's own request id (a retry) or the conflict policy is USE_EXISTING. Otherwise the start runs with its
conflict / reuse policies (FAIL -> already-started, TERMINATE_EXISTING -> new run) and the update is admitted on
the run it produced. Failures come back as INVALID_ARGUMENT with a ``MultiOperationExecutionFailure`` detail: one
status per operation, the failed one with its real code and detail, the other ``Aborted``.

The operations are composed from History's start and update RPCs: an update is admitted in memory and delivered
by the workflow task the start already scheduled, so no second write is needed for a fresh start.
"""

from __future__ import annotations

import uuid

import grpc
from google.protobuf import any_pb2
from temporalio.api.common.v1 import message_pb2 as common_pb2
from temporalio.api.enums.v1 import update_pb2 as update_enums
from temporalio.api.enums.v1 import workflow_pb2 as wf_enums
from temporalio.api.errordetails.v1 import message_pb2 as errordetails
from temporalio.api.failure.v1 import message_pb2 as failure_pb2
from temporalio.api.update.v1 import message_pb2 as update_pb2
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv1

from server.common.errors import AlreadyExists, InvalidArgument, NotFound, ServiceError
from server.gen.durata.internal.history.v1 import service_pb2 as hs
from services.frontend.base import HandlerBase, log_context
from services.frontend.config import FrontendConfig
from services.frontend.search_attributes import check_search_attributes
from services.frontend.validation import (
    validate_start,
    validate_update,
)

CP = wf_enums.WorkflowIdConflictPolicy
STAGE = update_enums.UpdateWorkflowExecutionLifecycleStage
_UPDATE_STAGES = set(STAGE.values())
NOT_START_AND_UPDATE = "Operations have to be exactly [Start, Update]."
FRONTEND_MESSAGE = "Update-with-Start could not be executed."
_ABORTED = object()  # marker: this operation was not attempted because the other one failed


class MultiOperationError(ServiceError):
    """INVALID_ARGUMENT carrying one status per operation (what the SDKs unpack)."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, message: str, errors: list[ServiceError | object | None]) -> None:
        statuses = [_status(e) for e in errors]
        super().__init__(message, errordetails.MultiOperationExecutionFailure(statuses=statuses))


def _status(err: ServiceError | object | None) -> errordetails.MultiOperationExecutionFailure.OperationStatus:
    st = errordetails.MultiOperationExecutionFailure.OperationStatus
    if err is None:
        return st(code=grpc.StatusCode.OK.value[0])
    if err is _ABORTED:
        detail = any_pb2.Any()
        detail.Pack(failure_pb2.MultiOperationExecutionAborted())
        return st(code=grpc.StatusCode.ABORTED.value[0], message="Operation was aborted.", details=[detail])
    assert isinstance(err, ServiceError)
    details = []
    if err.detail is not None:
        packed = any_pb2.Any()
        packed.Pack(err.detail)
        details.append(packed)
    return st(code=err.code.value[0], message=err.message, details=details)


def _history_message(start_err: ServiceError | object | None, update_err: ServiceError | object | None) -> str:
    if isinstance(start_err, ServiceError):
        return f"MultiOperation could not be executed: Start failed: {start_err.message}"
    if isinstance(update_err, ServiceError):
        return f"MultiOperation could not be executed: Update failed: {update_err.message}"
    return "MultiOperation could not be executed: Reason unknown"


def validate_multi_operation(
    request: wsv1.ExecuteMultiOperationRequest, config: FrontendConfig
) -> tuple[wsv1.StartWorkflowExecutionRequest, wsv1.UpdateWorkflowExecutionRequest]:
    """Temporal's frontend checks: exactly [Start, Update], then per-operation checks reported per operation."""
    ops = request.operations
    if len(ops) != 2 or not ops[0].HasField("start_workflow") or not ops[1].HasField("update_workflow"):
        raise InvalidArgument(NOT_START_AND_UPDATE)
    start, update = ops[0].start_workflow, ops[1].update_workflow
    errors: list[ServiceError | object | None] = [_ABORTED, _ABORTED]
    failed = False
    try:
        if start.namespace and start.namespace != request.namespace:
            raise InvalidArgument("Operation namespace did not match request's namespace.")
        validate_start(start, config)
        if start.cron_schedule:
            raise InvalidArgument("CronSchedule is not allowed.")
        if start.request_eager_execution:
            raise InvalidArgument("RequestEagerExecution is not supported.")
        if start.workflow_start_delay.ToTimedelta().total_seconds() > 0:
            raise InvalidArgument("WorkflowStartDelay is not supported.")
    except InvalidArgument as e:
        errors[0], failed = e, True
    try:
        if update.namespace and update.namespace != request.namespace:
            raise InvalidArgument("Operation namespace did not match request's namespace.")
        validate_update(update, config)
        if update.first_execution_run_id:
            raise InvalidArgument("FirstExecutionRunId is not allowed.")
        if update.workflow_execution.run_id:
            raise InvalidArgument("RunId is not allowed.")
        if not failed and update.workflow_execution.workflow_id != start.workflow_id:
            raise InvalidArgument("WorkflowId is not consistent with previous operation(s).")
    except InvalidArgument as e:
        errors[1], failed = e, True
    if failed:
        raise MultiOperationError(FRONTEND_MESSAGE, errors)
    return start, update


    if update.wait_policy.lifecycle_stage not in _UPDATE_STAGES:
        raise InvalidArgument(f"Unknown UpdateWorkflowExecutionLifecycleStage {update.wait_policy.lifecycle_stage}.")


class MultiOperationHandlers(HandlerBase):
    async def ExecuteMultiOperation(
        self, request: wsv1.ExecuteMultiOperationRequest, *, deadline: float | None = None
    ) -> wsv1.ExecuteMultiOperationResponse:
        entry = await self._namespace(request.namespace)
        validate_multi_operation(request, self._ctx.config)
        start = wsv1.StartWorkflowExecutionRequest()
        start.CopyFrom(request.operations[0].start_workflow)
        start.namespace = request.namespace
        try:
            await check_search_attributes(self._ctx.namespaces, entry, start.search_attributes)
        except InvalidArgument as e:
            raise MultiOperationError(FRONTEND_MESSAGE, [e, _ABORTED]) from None
        if not start.request_id:
            start.request_id = str(uuid.uuid4())
        if not start.workflow_id_conflict_policy:
            start.workflow_id_conflict_policy = CP.WORKFLOW_ID_CONFLICT_POLICY_FAIL
        update = wsv1.UpdateWorkflowExecutionRequest()
        update.CopyFrom(request.operations[1].update_workflow)
        update.namespace = request.namespace
        with log_context(namespace=entry.name, workflow_id=start.workflow_id):
            try:
                return await self._run(entry.id, start, update, deadline)
            except MultiOperationError as e:
                e.message = FRONTEND_MESSAGE
                raise

    async def _run(
        self, ns_id: str, start: wsv1.StartWorkflowExecutionRequest, update: wsv1.UpdateWorkflowExecutionRequest, deadline: float | None
    ) -> wsv1.ExecuteMultiOperationResponse:
        existing = await self._attach_existing(ns_id, start, update, deadline)
        if existing is not None:
            return existing
        try:
            # The update rides with the start: admitted to the new run before any workflow task of it can start.
            started = await self._ctx.history.StartWorkflowExecution(
                hs.StartWorkflowExecutionRequest(namespace_id=ns_id, request=start, update_with_start=update),
                deadline=deadline,
            )
        except ServiceError as e:
            if isinstance(e, AlreadyExists) and isinstance(e.detail, errordetails.WorkflowExecutionAlreadyStartedFailure):
                # A concurrent caller may have admitted the same update in between: attach to it, as Temporal does.
                again = await self._attach_existing(ns_id, start, update, deadline)
                if again is not None:
                    return again
            raise MultiOperationError(_history_message(e, _ABORTED), [e, _ABORTED]) from e
        update.workflow_execution.run_id = started.run_id
        try:
            upd = await self._update(ns_id, update, deadline)
        except ServiceError as e:
            raise MultiOperationError(_history_message(None if started.started else _ABORTED, e), [None if started.started else _ABORTED, e]) from e
        return _response(started, upd)

    async def _update(self, ns_id: str, update: wsv1.UpdateWorkflowExecutionRequest, deadline: float | None) -> wsv1.UpdateWorkflowExecutionResponse:
        return await self._ctx.history.UpdateWorkflowExecution(
            hs.UpdateWorkflowExecutionRequest(namespace_id=ns_id, request=update), deadline=deadline
        )

    async def _attach_existing(
        self, ns_id: str, start: wsv1.StartWorkflowExecutionRequest, update: wsv1.UpdateWorkflowExecutionRequest, deadline: float | None
    ) -> wsv1.ExecuteMultiOperationResponse | None:
        """The current run already knows this update id: answer from it (completed) or wait on it (in flight)."""
        execution = common_pb2.WorkflowExecution(workflow_id=start.workflow_id)
        poll = wsv1.PollWorkflowExecutionUpdateRequest(
            namespace=start.namespace,
            update_ref=update_pb2.UpdateRef(workflow_execution=execution, update_id=update.request.meta.update_id),
            wait_policy=update_pb2.WaitPolicy(lifecycle_stage=STAGE.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ADMITTED),
        )
        try:
            found = await self._ctx.history.PollWorkflowExecutionUpdate(
                hs.PollWorkflowExecutionUpdateRequest(namespace_id=ns_id, request=poll), deadline=deadline
            )
        except NotFound:
            return None
        except ServiceError as e:  # could not read the current run: reported on the start, as Temporal does
            raise MultiOperationError(_history_message(e, _ABORTED), [e, _ABORTED]) from e
        run_id = found.update_ref.workflow_execution.run_id
        desc = await self._ctx.history.DescribeWorkflowExecution(
            hs.DescribeWorkflowExecutionRequest(
                namespace_id=ns_id,
                request=wsv1.DescribeWorkflowExecutionRequest(
                    namespace=start.namespace, execution=common_pb2.WorkflowExecution(workflow_id=start.workflow_id, run_id=run_id)
                ),
            ),
            deadline=deadline,
        )
        status = desc.workflow_execution_info.status
        started = wsv1.StartWorkflowExecutionResponse(run_id=run_id, started=False, status=status)
        if found.stage == STAGE.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_COMPLETED:
            upd = wsv1.UpdateWorkflowExecutionResponse(update_ref=found.update_ref, outcome=found.outcome, stage=found.stage)
            return _response(started, upd)
        if status != wf_enums.WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING:
            return None  # closed with the update unfinished: the start decides (new run or already-started)
        update.workflow_execution.run_id = run_id
        try:
            return _response(started, await self._update(ns_id, update, deadline))
        except ServiceError as e:
            raise MultiOperationError(_history_message(_ABORTED, e), [_ABORTED, e]) from e


def _response(started: wsv1.StartWorkflowExecutionResponse, upd: wsv1.UpdateWorkflowExecutionResponse) -> wsv1.ExecuteMultiOperationResponse:
    resp = wsv1.ExecuteMultiOperationResponse()
    resp.responses.add().start_workflow.CopyFrom(started)
    resp.responses.add().update_workflow.CopyFrom(upd)
    return resp
