"""The eight schedule RPCs: a schedule is a scheduler system workflow in the caller's namespace (workflow id
``temporal-sys-scheduler:<schedule id>``, TemporalScheduler division), run by the internal worker on Durata's SDK.
Create starts it, Describe/ListScheduleMatchingTimes query it, Update/Patch signal it, Delete terminates it,
List/Count read visibility. Temporal's checks and messages, in Temporal's order."""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format
from temporalio.api.common.v1 import message_pb2 as common
from temporalio.api.enums.v1 import workflow_pb2 as wf_enums
from temporalio.api.errordetails.v1 import message_pb2 as errordetails
from temporalio.api.query.v1 import message_pb2 as query_pb
from temporalio.api.schedule.v1 import message_pb2 as sched
from temporalio.api.taskqueue.v1 import message_pb2 as tq
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv

from server.common.errors import AlreadyExists, InvalidArgument, NotFound, ServiceError
from server.common.payloads import json_payload, proto_payloads
from server.common.search_attribute_catalogue import validate_search_attributes
from server.common.system_workflows import (
    PER_NAMESPACE_TASK_QUEUE,
    SCHEDULER_ID_PREFIX,
    SCHEDULER_MEMO_INFO,
    SCHEDULER_NAMESPACE_DIVISION,
    SCHEDULER_QUERY_DESCRIBE,
    SCHEDULER_QUERY_MATCHING_TIMES,
    SCHEDULER_SIGNAL_PATCH,
    SCHEDULER_SIGNAL_UPDATE,
    SCHEDULER_WORKFLOW_TYPE,
)
from server.gen.durata.internal.schedule.v1 import schedule_pb2
from services.frontend.base import HandlerBase
from services.frontend.validation import check_duration, check_id, check_task_queue
from services.internal_worker.schedules import canonicalize, describe_form

WS = wf_enums.WorkflowExecutionStatus
# Temporal's stand-in for the nominal time appended to a scheduled workflow's id, for the length check.
APPENDED_TIMESTAMP = "-2009-11-10T23:00:00Z"
NOTES_LIMIT = 1000
INITIAL_CONFLICT_TOKEN = 1
LIST_QUERY = f"TemporalNamespaceDivision = '{SCHEDULER_NAMESPACE_DIVISION}' AND ExecutionStatus = 'Running'"
# Attributes of a scheduler workflow that are the server's business, not the schedule's.
_HIDDEN_ATTRIBUTES = ("TemporalSchedulePaused", "BinaryChecksums", "BuildIds", "TemporalNamespaceDivision")


def workflow_id(schedule_id: str) -> str:
    return SCHEDULER_ID_PREFIX + schedule_id


def token_bytes(token: int) -> bytes:
    return struct.pack(">Q", token)


def token_value(raw: bytes) -> int:
    return int(struct.unpack(">Q", raw[:8])[0]) if len(raw) >= 8 else 0


def _decode(payloads: common.Payloads, message: Any) -> Any:
    if not payloads.payloads:
        raise ServiceError("the scheduler answered nothing")
    json_format.Parse(payloads.payloads[0].data, message, ignore_unknown_fields=True)
    return message


def validate_schedule(schedule: sched.Schedule, config: Any, aliases: dict[str, str]) -> None:
    """Canonicalize the spec in place and check the action as Temporal's validateStartWorkflowArgsForSchedule."""
    schedule.spec.CopyFrom(canonicalize(schedule.spec))
    if len(schedule.state.notes) > NOTES_LIMIT:
        raise InvalidArgument("Schedule notes exceeds limit.")
    if not schedule.action.HasField("start_workflow"):
        return
    start = schedule.action.start_workflow
    check_id(start.workflow_id + APPENDED_TIMESTAMP, "WorkflowId", config)
    if not start.HasField("workflow_type") or not start.workflow_type.name:
        raise InvalidArgument("WorkflowType is not set on request.")
    check_id(start.workflow_type.name, "WorkflowType", config)
    check_task_queue(start.task_queue, start.HasField("task_queue"), config)
    check_duration(start.workflow_execution_timeout, "WorkflowExecutionTimeout")
    check_duration(start.workflow_run_timeout, "WorkflowRunTimeout")
    check_duration(start.workflow_task_timeout, "WorkflowTaskTimeout")
    if start.cron_schedule:
        raise InvalidArgument("Scheduled workflow must not contain CronSchedule")
    if start.workflow_id_reuse_policy not in (0, wf_enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE):
        raise InvalidArgument("Scheduled workflow must not contain WorkflowIDReusePolicy")
    if start.search_attributes.indexed_fields:
        validate_search_attributes(start.search_attributes, aliases)


def _clean_attributes(attributes: common.SearchAttributes) -> common.SearchAttributes | None:
    out = common.SearchAttributes()
    out.CopyFrom(attributes)
    for name in _HIDDEN_ATTRIBUTES:
        if name in out.indexed_fields:
            del out.indexed_fields[name]
    return out if out.indexed_fields else None


def _clean_memo(memo: common.Memo) -> common.Memo | None:
    out = common.Memo()
    out.CopyFrom(memo)
    if SCHEDULER_MEMO_INFO in out.fields:
        del out.fields[SCHEDULER_MEMO_INFO]
    return out if out.fields else None


def list_info(memo: common.Memo) -> sched.ScheduleListInfo:
    info = sched.ScheduleListInfo()
    payload = memo.fields.get(SCHEDULER_MEMO_INFO)
    if payload is not None and payload.data:
        try:
            info.ParseFromString(payload.data)
        except Exception:  # noqa: BLE001 - a damaged memo shows as an empty entry, never an error
            return sched.ScheduleListInfo()
        info.spec.CopyFrom(describe_form(info.spec))
    return info


def _schedule_id_query(query: str) -> str:
    """``ScheduleId = 'x'`` is the user's name for the scheduler's workflow id."""
    import re

    return re.sub(
        r"\bScheduleId\s*=\s*'((?:[^'\\]|\\.|'')*)'",
        lambda m: f"WorkflowId = '{SCHEDULER_ID_PREFIX}{m.group(1)}'",
        query,
    )


class ScheduleHandlers(HandlerBase):
    def _aliases(self, entry: Any) -> dict[str, str]:
        return dict(entry.description.config.custom_search_attribute_aliases)

    async def CreateSchedule(
        self, request: wsv.CreateScheduleRequest, *, deadline: float | None = None
    ) -> wsv.CreateScheduleResponse:
        check_id(workflow_id(request.schedule_id) if request.schedule_id else "", "WorkflowId", self._ctx.config)
        if not request.request_id:
            raise InvalidArgument("RequestId is not set on request.")
        check_id(request.request_id, "RequestId", self._ctx.config)
        entry = await self._namespace(request.namespace)
        schedule = sched.Schedule()
        schedule.CopyFrom(request.schedule)
        validate_schedule(schedule, self._ctx.config, self._aliases(entry))
        args = schedule_pb2.StartScheduleArgs(
            schedule=schedule, initial_patch=request.initial_patch, namespace=entry.name, namespace_id=entry.id,
            schedule_id=request.schedule_id, conflict_token=INITIAL_CONFLICT_TOKEN,
        )  # fmt: skip
        args.create_time.FromDatetime(datetime.now(UTC))
        attributes = common.SearchAttributes()
        attributes.CopyFrom(request.search_attributes)
        attributes.indexed_fields["TemporalNamespaceDivision"].CopyFrom(json_payload(SCHEDULER_NAMESPACE_DIVISION))
        memo = common.Memo()
        memo.CopyFrom(request.memo)
        memo.fields[SCHEDULER_MEMO_INFO].CopyFrom(common.Payload(
            metadata={"encoding": b"binary/plain"},
            data=sched.ScheduleListInfo(spec=schedule.spec, workflow_type=schedule.action.start_workflow.workflow_type,
                                        notes=schedule.state.notes, paused=schedule.state.paused).SerializeToString(),
        ))  # fmt: skip
        try:
            await self.StartWorkflowExecution(  # type: ignore[attr-defined]
                wsv.StartWorkflowExecutionRequest(
                    namespace=request.namespace, workflow_id=workflow_id(request.schedule_id),
                    workflow_type=common.WorkflowType(name=SCHEDULER_WORKFLOW_TYPE),
                    task_queue=tq.TaskQueue(name=PER_NAMESPACE_TASK_QUEUE), input=proto_payloads(args),
                    identity=request.identity, request_id=request.request_id,
                    workflow_id_reuse_policy=wf_enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
                    workflow_id_conflict_policy=wf_enums.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
                    memo=memo, search_attributes=attributes,
                ),
                deadline=deadline,
            )  # fmt: skip
        except AlreadyExists:
            raise AlreadyExists(
                f'schedule "{request.schedule_id}" is already registered',
                errordetails.WorkflowExecutionAlreadyStartedFailure(),
            ) from None
        return wsv.CreateScheduleResponse(conflict_token=token_bytes(INITIAL_CONFLICT_TOKEN))

    async def _query(self, namespace: str, schedule_id: str, query_type: str, args: Any | None,
                     deadline: float | None) -> common.Payloads:
        resp = await self.QueryWorkflow(  # type: ignore[attr-defined]
            wsv.QueryWorkflowRequest(
                namespace=namespace, execution=common.WorkflowExecution(workflow_id=workflow_id(schedule_id)),
                query=query_pb.WorkflowQuery(
                    query_type=query_type, query_args=proto_payloads(args) if args is not None else None
                ),
            ),
            deadline=deadline,
        )
        result: common.Payloads = resp.query_result
        return result

    async def DescribeSchedule(
        self, request: wsv.DescribeScheduleRequest, *, deadline: float | None = None
    ) -> wsv.DescribeScheduleResponse:
        await self._namespace(request.namespace)
        if not request.schedule_id:
            raise InvalidArgument("ScheduleId is not set on request.")
        desc = await self.DescribeWorkflowExecution(  # type: ignore[attr-defined]
            wsv.DescribeWorkflowExecutionRequest(
                namespace=request.namespace,
                execution=common.WorkflowExecution(workflow_id=workflow_id(request.schedule_id)),
            ),
            deadline=deadline,
        )
        info = desc.workflow_execution_info
        if info.status != WS.WORKFLOW_EXECUTION_STATUS_RUNNING or info.type.name != SCHEDULER_WORKFLOW_TYPE:
            raise NotFound("schedule not found")
        answer = _decode(
            await self._query(request.namespace, request.schedule_id, SCHEDULER_QUERY_DESCRIBE, None, deadline),
            schedule_pb2.DescribeResponse(),
        )
        schedule = answer.schedule
        schedule.spec.CopyFrom(describe_form(schedule.spec))
        resp = wsv.DescribeScheduleResponse(
            schedule=schedule, info=answer.info, conflict_token=token_bytes(answer.conflict_token)
        )
        memo = _clean_memo(info.memo)
        if memo is not None:
            resp.memo.CopyFrom(memo)
        attributes = _clean_attributes(info.search_attributes)
        if attributes is not None:
            resp.search_attributes.CopyFrom(attributes)
        return resp

    async def _signal(self, namespace: str, schedule_id: str, name: str, message: Any, identity: str,
                      request_id: str, deadline: float | None) -> None:
        await self.SignalWorkflowExecution(  # type: ignore[attr-defined]
            wsv.SignalWorkflowExecutionRequest(
                namespace=namespace, workflow_execution=common.WorkflowExecution(workflow_id=workflow_id(schedule_id)),
                signal_name=name, input=proto_payloads(message), identity=identity, request_id=request_id,
            ),
            deadline=deadline,
        )

    async def UpdateSchedule(
        self, request: wsv.UpdateScheduleRequest, *, deadline: float | None = None
    ) -> wsv.UpdateScheduleResponse:
        check_id(request.request_id, "RequestId", self._ctx.config, required=False)
        entry = await self._namespace(request.namespace)
        if not request.schedule_id:
            raise InvalidArgument("ScheduleId is not set on request.")
        schedule = sched.Schedule()
        schedule.CopyFrom(request.schedule)
        validate_schedule(schedule, self._ctx.config, self._aliases(entry))
        if request.search_attributes.indexed_fields:
            validate_search_attributes(request.search_attributes, self._aliases(entry))
        update = schedule_pb2.FullUpdateRequest(
            schedule=schedule, conflict_token=token_value(request.conflict_token),
            search_attributes=request.search_attributes if request.HasField("search_attributes") else None,
        )  # fmt: skip
        await self._signal(request.namespace, request.schedule_id, SCHEDULER_SIGNAL_UPDATE, update,
                           request.identity, request.request_id, deadline)  # fmt: skip
        return wsv.UpdateScheduleResponse()

    async def PatchSchedule(
        self, request: wsv.PatchScheduleRequest, *, deadline: float | None = None
    ) -> wsv.PatchScheduleResponse:
        if not request.HasField("patch"):
            raise InvalidArgument("Patch is not set on request.")
        check_id(request.request_id, "RequestId", self._ctx.config, required=False)
        if len(request.patch.pause) > NOTES_LIMIT or len(request.patch.unpause) > NOTES_LIMIT:
            raise InvalidArgument("Schedule notes exceeds limit.")
        patch = sched.SchedulePatch()
        patch.CopyFrom(request.patch)
        if patch.HasField("trigger_immediately") and not patch.trigger_immediately.HasField("scheduled_time"):
            patch.trigger_immediately.scheduled_time.FromDatetime(datetime.now(UTC))
        await self._namespace(request.namespace)
        if not request.schedule_id:
            raise InvalidArgument("ScheduleId is not set on request.")
        await self._signal(request.namespace, request.schedule_id, SCHEDULER_SIGNAL_PATCH, patch,
                           request.identity, request.request_id, deadline)  # fmt: skip
        return wsv.PatchScheduleResponse()

    async def DeleteSchedule(
        self, request: wsv.DeleteScheduleRequest, *, deadline: float | None = None
    ) -> wsv.DeleteScheduleResponse:
        await self._namespace(request.namespace)
        if not request.schedule_id:
            raise InvalidArgument("ScheduleId is not set on request.")
        await self.TerminateWorkflowExecution(  # type: ignore[attr-defined]
            wsv.TerminateWorkflowExecutionRequest(
                namespace=request.namespace,
                workflow_execution=common.WorkflowExecution(workflow_id=workflow_id(request.schedule_id)),
                reason="terminated by DeleteSchedule", identity=request.identity,
            ),
            deadline=deadline,
        )
        return wsv.DeleteScheduleResponse()

    async def ListScheduleMatchingTimes(
        self, request: wsv.ListScheduleMatchingTimesRequest, *, deadline: float | None = None
    ) -> wsv.ListScheduleMatchingTimesResponse:
        await self._namespace(request.namespace)
        if not request.schedule_id:
            raise InvalidArgument("ScheduleId is not set on request.")
        return _decode(  # type: ignore[no-any-return]
            await self._query(request.namespace, request.schedule_id, SCHEDULER_QUERY_MATCHING_TIMES, request,
                              deadline),
            wsv.ListScheduleMatchingTimesResponse(),
        )  # fmt: skip

    def _list_query(self, query: str) -> str:
        if not query.strip():
            return LIST_QUERY
        return f"{LIST_QUERY} AND ({_schedule_id_query(query)})"

    async def ListSchedules(
        self, request: wsv.ListSchedulesRequest, *, deadline: float | None = None
    ) -> wsv.ListSchedulesResponse:
        cfg = self._ctx.config
        size = request.maximum_page_size
        size = size if 0 < size <= cfg.max_visibility_page_size else cfg.max_visibility_page_size
        page = await self.ListWorkflowExecutions(  # type: ignore[attr-defined]
            wsv.ListWorkflowExecutionsRequest(
                namespace=request.namespace, page_size=size, next_page_token=request.next_page_token,
                query=self._list_query(request.query),
            ),
            deadline=deadline,
        )
        resp = wsv.ListSchedulesResponse(next_page_token=page.next_page_token)
        for e in page.executions:
            item = resp.schedules.add(
                schedule_id=e.execution.workflow_id.removeprefix(SCHEDULER_ID_PREFIX), info=list_info(e.memo)
            )
            memo = _clean_memo(e.memo)
            if memo is not None:
                item.memo.CopyFrom(memo)
            attributes = _clean_attributes(e.search_attributes)
            if attributes is not None:
                item.search_attributes.CopyFrom(attributes)
        return resp

    async def CountSchedules(
        self, request: wsv.CountSchedulesRequest, *, deadline: float | None = None
    ) -> wsv.CountSchedulesResponse:
        counted = await self.CountWorkflowExecutions(  # type: ignore[attr-defined]
            wsv.CountWorkflowExecutionsRequest(namespace=request.namespace, query=self._list_query(request.query)),
            deadline=deadline,
        )
        resp = wsv.CountSchedulesResponse(count=counted.count)
        for g in counted.groups:
            resp.groups.add(group_values=list(g.group_values), count=g.count)
        return resp
