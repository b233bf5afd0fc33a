"""Client: start and manage workflows (same public names as temporalio.client)."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime, timedelta
from enum import IntEnum
from typing import Any

from temporalio.api.common.v1 import message_pb2 as common_pb
from temporalio.api.enums.v1 import event_type_pb2 as et
from temporalio.api.enums.v1 import query_pb2 as query_enums
from temporalio.api.enums.v1 import update_pb2 as update_enums
from temporalio.api.enums.v1 import workflow_pb2 as wf_enums
from temporalio.api.errordetails.v1 import message_pb2 as errordetails_pb
from temporalio.api.history.v1 import message_pb2 as history_pb
from temporalio.api.query.v1 import message_pb2 as query_pb
from temporalio.api.update.v1 import message_pb2 as update_pb
from temporalio.api.workflow.v1 import message_pb2 as workflow_pb
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv

from . import exceptions as exc
from ._async_activity import (
    AsyncActivityCancelledError,
    AsyncActivityHandle,
    AsyncActivityIDReference,
    async_activity_handle,
)
from ._history import WorkflowHistory
from ._service import ServiceClient, TLSConfig
from .common import (
    QueryRejectCondition,
    RetryPolicy,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
    decode_search_attributes,
    encode_search_attributes,
)
from .converter import DataConverter
from .exceptions import RPCStatusCode
from .failure import from_failure
from .workflow import handler_name, workflow_name, workflow_result_type

E = et.EventType
_MISSING: Any = object()

__all__ = [
    "Client", "WorkflowHandle", "WorkflowUpdateHandle", "WorkflowHistory", "TLSConfig", "WorkflowExecutionStatus",
    "WorkflowUpdateStage", "WorkflowFailureError", "WorkflowQueryFailedError", "WorkflowQueryRejectedError",
    "WorkflowUpdateFailedError", "WorkflowContinuedAsNewError", "WorkflowExecution", "WorkflowExecutionDescription",
    "WorkflowExecutionCount", "RetryPolicy", "WorkflowIDReusePolicy", "WorkflowIDConflictPolicy",
    "AsyncActivityHandle", "AsyncActivityIDReference", "AsyncActivityCancelledError",
]


class WorkflowFailureError(exc.TemporalError):
    """Workflow ended unsuccessfully; ``cause`` holds the reason."""

    def __init__(self, *, cause: BaseException) -> None:
        super().__init__("Workflow execution failed")
        self.__cause__ = cause


class WorkflowContinuedAsNewError(exc.TemporalError):
    def __init__(self, new_execution_run_id: str) -> None:
        super().__init__("Workflow continued as new")
        self.new_execution_run_id = new_execution_run_id


class WorkflowQueryRejectedError(exc.TemporalError):
    def __init__(self, status: WorkflowExecutionStatus | None) -> None:
        super().__init__(f"Query rejected, status: {status}")
        self.status = status


class WorkflowQueryFailedError(exc.TemporalError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class WorkflowUpdateFailedError(exc.TemporalError):
    def __init__(self, cause: BaseException) -> None:
        super().__init__("Workflow update failed")
        self.__cause__ = cause


class WorkflowExecutionStatus(IntEnum):
    RUNNING = 1
    COMPLETED = 2
    FAILED = 3
    CANCELED = 4
    TERMINATED = 5
    CONTINUED_AS_NEW = 6
    TIMED_OUT = 7


class WorkflowUpdateStage(IntEnum):
    ADMITTED = update_enums.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ADMITTED
    ACCEPTED = update_enums.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ACCEPTED
    COMPLETED = update_enums.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_COMPLETED


def _stage(stage: WorkflowUpdateStage) -> update_enums.UpdateWorkflowExecutionLifecycleStage.ValueType:
    return update_enums.UpdateWorkflowExecutionLifecycleStage.ValueType(stage)


@dataclasses.dataclass
class WorkflowExecution:
    """A row of list_workflows (and the base of describe())."""

    id: str
    run_id: str
    workflow_type: str
    task_queue: str
    status: WorkflowExecutionStatus | None
    start_time: datetime
    close_time: datetime | None
    history_length: int
    raw_info: workflow_pb.WorkflowExecutionInfo
    data_converter: DataConverter = dataclasses.field(repr=False, default_factory=lambda: DataConverter.default)

    @staticmethod
    def _from_info(i: workflow_pb.WorkflowExecutionInfo, conv: DataConverter) -> WorkflowExecution:
        return WorkflowExecution(
            id=i.execution.workflow_id, run_id=i.execution.run_id, workflow_type=i.type.name,
            task_queue=i.task_queue, status=WorkflowExecutionStatus(i.status) if i.status else None,
            start_time=i.start_time.ToDatetime(), close_time=i.close_time.ToDatetime() if i.HasField("close_time") else None,
            history_length=i.history_length, raw_info=i, data_converter=conv,
        )

    async def memo(self) -> dict[str, Any]:
        return {k: self.data_converter.payload_converter.from_payload(v) for k, v in self.raw_info.memo.fields.items()}

    @property
    def typed_search_attributes(self) -> TypedSearchAttributes:
        return decode_search_attributes(self.raw_info.search_attributes.indexed_fields)

    @property
    def search_attributes(self) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {}
        for k, p in self.raw_info.search_attributes.indexed_fields.items():
            v = self.data_converter.payload_converter.from_payload(p)
            out[k] = v if isinstance(v, list) else [v]
        return out


@dataclasses.dataclass
class WorkflowExecutionDescription(WorkflowExecution):
    raw_description: wsv.DescribeWorkflowExecutionResponse | None = None


@dataclasses.dataclass
class WorkflowExecutionCountAggregationGroup:
    count: int
    group_values: list[Any]


@dataclasses.dataclass
class WorkflowExecutionCount:
    count: int
    groups: list[WorkflowExecutionCountAggregationGroup]


def _rpc_to_query_error(err: exc.RPCError) -> BaseException:
    if err.status == RPCStatusCode.INVALID_ARGUMENT:
        return WorkflowQueryFailedError(err.message)
    return err


def _already_started(err: exc.RPCError, workflow_id: str, wtype: str) -> BaseException:
    if err.status == RPCStatusCode.ALREADY_EXISTS:
        run_id = None
        try:
            from google.rpc import status_pb2

            st = status_pb2.Status.FromString(err.raw_details)
            for d in st.details:
                f = errordetails_pb.WorkflowExecutionAlreadyStartedFailure()
                if d.Unpack(f):
                    run_id = f.run_id
        except Exception:
            pass
        return exc.WorkflowAlreadyStartedError(workflow_id, wtype, run_id=run_id)
    return err


class Client:
    """Connection to one namespace of a Temporal-API server."""

    def __init__(self, service: ServiceClient, *, namespace: str = "default", identity: str | None = None,
                 data_converter: DataConverter | None = None) -> None:
        import os
        import socket

        self.service = service
        self.namespace = namespace
        self.identity = identity or f"{os.getpid()}@{socket.gethostname()}"
        self.data_converter = data_converter or DataConverter.default

    @staticmethod
    async def connect(target_host: str, *, namespace: str = "default", api_key: str | None = None,
                      tls: bool | TLSConfig = False, rpc_metadata: Mapping[str, str] | None = None,
                      identity: str | None = None, data_converter: DataConverter | None = None,
                      **_ignored: Any) -> Client:
        """Open a channel and verify the server with GetSystemInfo."""
        service = ServiceClient(target_host, tls=tls, api_key=api_key, rpc_metadata=rpc_metadata)
        await service.check()
        return Client(service, namespace=namespace, identity=identity, data_converter=data_converter)

    @property
    def workflow_service(self) -> Any:
        return self.service.stub

    async def _call(self, method: str, req: Any, timeout: timedelta | float | None = None) -> Any:  # noqa: ASYNC109
        return await self.service.call(method, req, timeout=timeout)

    # ------------------------------------------------------------------ start

    async def start_workflow(
        self, workflow: Any, arg: Any = _MISSING, *, id: str, task_queue: str, args: Sequence[Any] = (),
        result_type: Any = None, execution_timeout: timedelta | None = None, run_timeout: timedelta | None = None,
        task_timeout: timedelta | None = None, id_reuse_policy: WorkflowIDReusePolicy = WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        id_conflict_policy: WorkflowIDConflictPolicy = WorkflowIDConflictPolicy.UNSPECIFIED,
        retry_policy: RetryPolicy | None = None, cron_schedule: str = "", memo: Mapping[str, Any] | None = None,
        search_attributes: Any = None, start_delay: timedelta | None = None, start_signal: Any = None,
        start_signal_args: Sequence[Any] = (), rpc_timeout: timedelta | None = None, **_ignored: Any,
    ) -> WorkflowHandle:
        wtype = workflow_name(workflow)
        if result_type is None and not isinstance(workflow, str):
            result_type = workflow_result_type(workflow)
        all_args = [arg] if arg is not _MISSING else list(args)
        conv = self.data_converter
        fields: dict[str, Any] = dict(
            namespace=self.namespace, workflow_id=id, workflow_type=common_pb.WorkflowType(name=wtype),
            task_queue={"name": task_queue}, input=conv.encode_payloads(all_args), identity=self.identity,
            request_id=str(uuid.uuid4()), workflow_id_reuse_policy=int(id_reuse_policy),
            workflow_id_conflict_policy=int(id_conflict_policy), cron_schedule=cron_schedule,
        )
        if retry_policy:
            fields["retry_policy"] = retry_policy.to_proto()
        if memo:
            fields["memo"] = common_pb.Memo(fields={k: conv.payload_converter.to_payload(v) for k, v in memo.items()})
        if search_attributes:
            fields["search_attributes"] = encode_search_attributes(search_attributes)
        if start_signal is not None:
            req: Any = wsv.SignalWithStartWorkflowExecutionRequest(
                signal_name=handler_name(start_signal), signal_input=conv.encode_payloads(list(start_signal_args)),
                **fields)
            method = "SignalWithStartWorkflowExecution"
        else:
            req = wsv.StartWorkflowExecutionRequest(**fields)
            method = "StartWorkflowExecution"
        for name, td in (("workflow_execution_timeout", execution_timeout), ("workflow_run_timeout", run_timeout),
                         ("workflow_task_timeout", task_timeout), ("workflow_start_delay", start_delay)):
            if td is not None:
                getattr(req, name).FromTimedelta(td)
        try:
            resp = await self._call(method, req, rpc_timeout)
        except exc.RPCError as err:
            raise _already_started(err, id, wtype) from None
        return WorkflowHandle(self, id, run_id=None, result_run_id=resp.run_id, first_execution_run_id=resp.run_id,
                              result_type=result_type)

    async def execute_workflow(self, workflow: Any, arg: Any = _MISSING, **kwargs: Any) -> Any:
        handle = await self.start_workflow(workflow, arg, **kwargs)
        return await handle.result()

    def get_workflow_handle(self, workflow_id: str, *, run_id: str | None = None,
                            first_execution_run_id: str | None = None, result_type: Any = None) -> WorkflowHandle:
        return WorkflowHandle(self, workflow_id, run_id=run_id, result_run_id=run_id,
                              first_execution_run_id=first_execution_run_id, result_type=result_type)

    def get_workflow_handle_for(self, workflow: Any, workflow_id: str, *, run_id: str | None = None,
                                first_execution_run_id: str | None = None) -> WorkflowHandle:
        return self.get_workflow_handle(workflow_id, run_id=run_id, first_execution_run_id=first_execution_run_id,
                                        result_type=workflow_result_type(workflow))

    def get_async_activity_handle(self, *, workflow_id: str | None = None, run_id: str | None = None,
                                  activity_id: str | None = None, task_token: bytes | None = None
                                  ) -> AsyncActivityHandle:
        """Handle to an activity that called ``activity.raise_complete_async()``: give its ``task_token`` alone,
        or ``workflow_id`` + ``run_id`` + ``activity_id``."""
        return async_activity_handle(self, workflow_id=workflow_id, run_id=run_id, activity_id=activity_id,
                                     task_token=task_token)

    # ------------------------------------------------------------------ visibility

    async def list_workflows(self, query: str | None = None, *, page_size: int = 1000,
                             limit: int | None = None) -> AsyncIterator[WorkflowExecution]:
        token = b""
        n = 0
        while True:
            resp = await self._call("ListWorkflowExecutions", wsv.ListWorkflowExecutionsRequest(
                namespace=self.namespace, page_size=page_size, next_page_token=token, query=query or ""))
            for info in resp.executions:
                yield WorkflowExecution._from_info(info, self.data_converter)
                n += 1
                if limit is not None and n >= limit:
                    return
            token = resp.next_page_token
            if not token:
                return

    async def count_workflows(self, query: str | None = None) -> WorkflowExecutionCount:
        resp = await self._call("CountWorkflowExecutions", wsv.CountWorkflowExecutionsRequest(
            namespace=self.namespace, query=query or ""))
        conv = self.data_converter.payload_converter
        return WorkflowExecutionCount(resp.count, [WorkflowExecutionCountAggregationGroup(
            g.count, [conv.from_payload(v) for v in g.group_values]) for g in resp.groups])


class WorkflowHandle:
    """Handle to a workflow id (optionally pinned to a run)."""

    def __init__(self, client: Client, id: str, *, run_id: str | None, result_run_id: str | None,
                 first_execution_run_id: str | None, result_type: Any = None) -> None:
        self._client = client
        self.id = id
        self.run_id = run_id
        self.result_run_id = result_run_id
        self.first_execution_run_id = first_execution_run_id
        self._result_type = result_type

    def _execution(self) -> common_pb.WorkflowExecution:
        return common_pb.WorkflowExecution(workflow_id=self.id, run_id=self.run_id or "")

    async def result(self, *, follow_runs: bool = True, rpc_timeout: timedelta | None = None) -> Any:
        """Wait for the close event; follows continue-as-new, retry and cron runs when ``follow_runs``."""
        conv = self._client.data_converter
        run_id = self.result_run_id or ""
        while True:
            ev = await self._close_event(run_id, rpc_timeout)
            t = ev.event_type
            if t == E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
                a = ev.workflow_execution_completed_event_attributes
                if a.new_execution_run_id and follow_runs:
                    run_id = a.new_execution_run_id
                    continue
                return conv.decode_one(a.result, self._result_type)
            if t == E.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
                fa = ev.workflow_execution_failed_event_attributes
                if fa.new_execution_run_id and follow_runs:
                    run_id = fa.new_execution_run_id
                    continue
                raise WorkflowFailureError(cause=from_failure(fa.failure, conv))
            if t == E.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED:
                details = conv.decode(ev.workflow_execution_canceled_event_attributes.details.payloads)
                raise WorkflowFailureError(cause=exc.CancelledError("Workflow cancelled", *details))
            if t == E.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
                ta = ev.workflow_execution_terminated_event_attributes
                raise WorkflowFailureError(cause=exc.TerminatedError(ta.reason or "Workflow terminated"))
            if t == E.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT:
                to = ev.workflow_execution_timed_out_event_attributes
                if to.new_execution_run_id and follow_runs:
                    run_id = to.new_execution_run_id
                    continue
                raise WorkflowFailureError(cause=exc.TimeoutError(
                    "Workflow timed out", type=exc.TimeoutType.START_TO_CLOSE, last_heartbeat_details=[]))
            if t == E.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
                new_run = ev.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
                if not follow_runs:
                    raise WorkflowContinuedAsNewError(new_run)
                run_id = new_run
                continue
            raise RuntimeError(f"Unexpected close event {E.Name(t)}")

    async def _close_event(self, run_id: str, rpc_timeout: timedelta | None) -> history_pb.HistoryEvent:
        token = b""
        while True:
            req = wsv.GetWorkflowExecutionHistoryRequest(
                namespace=self._client.namespace, execution=common_pb.WorkflowExecution(workflow_id=self.id, run_id=run_id),
                wait_new_event=True, next_page_token=token,
                history_event_filter_type=wf_enums.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT)
            try:
                resp = await self._client._call("GetWorkflowExecutionHistory", req, rpc_timeout or 60)
            except exc.RPCError as err:
                if err.status == RPCStatusCode.DEADLINE_EXCEEDED and rpc_timeout is None:
                    continue
                raise
            if resp.history.events:
                return resp.history.events[-1]
            token = resp.next_page_token

    async def signal(self, signal: Any, arg: Any = _MISSING, *, args: Sequence[Any] = (), **_: Any) -> None:
        all_args = [arg] if arg is not _MISSING else list(args)
        await self._client._call("SignalWorkflowExecution", wsv.SignalWorkflowExecutionRequest(
            namespace=self._client.namespace, workflow_execution=self._execution(), signal_name=handler_name(signal),
            input=self._client.data_converter.encode_payloads(all_args), identity=self._client.identity,
            request_id=str(uuid.uuid4())))

    async def query(self, query: Any, arg: Any = _MISSING, *, args: Sequence[Any] = (), result_type: Any = None,
                    reject_condition: QueryRejectCondition | None = None, rpc_timeout: timedelta | None = None) -> Any:
        from .workflow import _types_of

        all_args = [arg] if arg is not _MISSING else list(args)
        if result_type is None and callable(query):
            result_type = _types_of(query)[1]
        req = wsv.QueryWorkflowRequest(
            namespace=self._client.namespace, execution=self._execution(),
            query=query_pb.WorkflowQuery(query_type=handler_name(query),
                                         query_args=self._client.data_converter.encode_payloads(all_args)),
            query_reject_condition=query_enums.QueryRejectCondition.ValueType(
                int(reject_condition or 0) or query_enums.QUERY_REJECT_CONDITION_NONE))
        try:
            resp = await self._client._call("QueryWorkflow", req, rpc_timeout)
        except exc.RPCError as err:
            raise _rpc_to_query_error(err) from None
        if resp.HasField("query_rejected"):
            s = resp.query_rejected.status
            raise WorkflowQueryRejectedError(WorkflowExecutionStatus(s) if s else None)
        return self._client.data_converter.decode_one(resp.query_result, result_type)

    async def start_update(self, update: Any, arg: Any = _MISSING, *, args: Sequence[Any] = (), id: str | None = None,
                           wait_for_stage: WorkflowUpdateStage = WorkflowUpdateStage.ACCEPTED, result_type: Any = None,
                           rpc_timeout: timedelta | None = None) -> WorkflowUpdateHandle:
        from .workflow import _types_of

        all_args = [arg] if arg is not _MISSING else list(args)
        if result_type is None and callable(update):
            result_type = _types_of(update)[1]
        uid = id or str(uuid.uuid4())
        req = wsv.UpdateWorkflowExecutionRequest(
            namespace=self._client.namespace, workflow_execution=self._execution(),
            first_execution_run_id=self.first_execution_run_id or "",
            wait_policy=update_pb.WaitPolicy(lifecycle_stage=_stage(wait_for_stage)),
            request=update_pb.Request(
                meta=update_pb.Meta(update_id=uid, identity=self._client.identity),
                input=update_pb.Input(name=handler_name(update),
                                      args=self._client.data_converter.encode_payloads(all_args))))
        while True:
            resp = await self._client._call("UpdateWorkflowExecution", req, rpc_timeout)
            if resp.stage >= min(int(wait_for_stage), WorkflowUpdateStage.ACCEPTED) or resp.HasField("outcome"):
                break
        handle = WorkflowUpdateHandle(self._client, uid, self.id, resp.update_ref.workflow_execution.run_id or self.run_id,
                                      result_type)
        if resp.HasField("outcome"):
            handle._outcome = resp.outcome
        return handle

    async def execute_update(self, update: Any, arg: Any = _MISSING, **kwargs: Any) -> Any:
        kwargs["wait_for_stage"] = WorkflowUpdateStage.COMPLETED
        handle = await self.start_update(update, arg, **kwargs)
        return await handle.result()

    def get_update_handle(self, id: str, *, result_type: Any = None) -> WorkflowUpdateHandle:
        return WorkflowUpdateHandle(self._client, id, self.id, self.run_id, result_type)

    async def cancel(self, *, reason: str = "") -> None:
        await self._client._call("RequestCancelWorkflowExecution", wsv.RequestCancelWorkflowExecutionRequest(
            namespace=self._client.namespace, workflow_execution=self._execution(), identity=self._client.identity,
            request_id=str(uuid.uuid4()), first_execution_run_id=self.first_execution_run_id or "", reason=reason))

    async def terminate(self, *args: Any, reason: str | None = None) -> None:
        req = wsv.TerminateWorkflowExecutionRequest(
            namespace=self._client.namespace, workflow_execution=self._execution(), reason=reason or "",
            identity=self._client.identity, first_execution_run_id=self.first_execution_run_id or "")
        if args:
            req.details.CopyFrom(self._client.data_converter.encode_payloads(list(args)))
        await self._client._call("TerminateWorkflowExecution", req)

    async def describe(self) -> WorkflowExecutionDescription:
        resp = await self._client._call("DescribeWorkflowExecution", wsv.DescribeWorkflowExecutionRequest(
            namespace=self._client.namespace, execution=self._execution()))
        base = WorkflowExecution._from_info(resp.workflow_execution_info, self._client.data_converter)
        return WorkflowExecutionDescription(**{f.name: getattr(base, f.name) for f in dataclasses.fields(base)},
                                            raw_description=resp)

    async def fetch_history_events(self, *, wait_new_event: bool = False) -> AsyncIterator[history_pb.HistoryEvent]:
        token = b""
        while True:
            resp = await self._client._call("GetWorkflowExecutionHistory", wsv.GetWorkflowExecutionHistoryRequest(
                namespace=self._client.namespace, execution=self._execution(), next_page_token=token,
                wait_new_event=wait_new_event))
            for ev in resp.history.events:
                yield ev
            token = resp.next_page_token
            if not token:
                return

    async def fetch_history(self) -> WorkflowHistory:
        return WorkflowHistory(self.id, [e async for e in self.fetch_history_events()])


class WorkflowUpdateHandle:
    def __init__(self, client: Client, id: str, workflow_id: str, workflow_run_id: str | None, result_type: Any) -> None:
        self._client = client
        self.id = id
        self.workflow_id = workflow_id
        self.workflow_run_id = workflow_run_id
        self._result_type = result_type
        self._outcome: update_pb.Outcome | None = None

    async def result(self, *, rpc_timeout: timedelta | None = None) -> Any:
        while self._outcome is None:
            try:
                resp = await self._client._call("PollWorkflowExecutionUpdate", wsv.PollWorkflowExecutionUpdateRequest(
                    namespace=self._client.namespace, identity=self._client.identity,
                    update_ref=update_pb.UpdateRef(
                        workflow_execution=common_pb.WorkflowExecution(workflow_id=self.workflow_id,
                                                                       run_id=self.workflow_run_id or ""),
                        update_id=self.id),
                    wait_policy=update_pb.WaitPolicy(lifecycle_stage=_stage(WorkflowUpdateStage.COMPLETED))),
                    rpc_timeout or 60)
            except exc.RPCError as err:
                if err.status == RPCStatusCode.DEADLINE_EXCEEDED and rpc_timeout is None:
                    continue
                raise
            if resp.HasField("outcome"):
                self._outcome = resp.outcome
            else:
                await asyncio.sleep(0)
        if self._outcome.HasField("failure"):
            raise WorkflowUpdateFailedError(from_failure(self._outcome.failure, self._client.data_converter))
        return self._client.data_converter.decode_one(self._outcome.success, self._result_type)

