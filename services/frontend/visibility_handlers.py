"""List / Count / Scan workflow executions, answered straight from the visibility store (no History round trip)."""

from __future__ import annotations

import json
from typing import cast

from temporalio.api.common.v1 import message_pb2 as common
from temporalio.api.enums.v1 import workflow_pb2 as wf_enums
from temporalio.api.workflow.v1 import message_pb2 as workflow
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv1

from server.common.errors import InvalidArgument
from server.common.search_attribute_values import canonical_payload, custom_types, metadata_type
from server.persistence.interface import VisibilityRecord
from server.persistence.visibility_query import custom_fields, parse_query
from services.frontend.base import HandlerBase
from services.frontend.namespace_registry import NamespaceEntry
from services.frontend.search_attributes import SYSTEM_SEARCH_ATTRIBUTES


def status_name(status: int) -> str:
    """WORKFLOW_EXECUTION_STATUS_TIMED_OUT -> "TimedOut": the form queries and group values use."""
    enum_name = wf_enums.WorkflowExecutionStatus.Name(
        cast(wf_enums.WorkflowExecutionStatus.ValueType, status)
    ).removeprefix("WORKFLOW_EXECUTION_STATUS_")
    return "".join(part.capitalize() for part in enum_name.split("_"))


def _keyword_payload(value: str) -> common.Payload:
    return common.Payload(
        metadata={"encoding": b"json/plain", "type": b"Keyword"}, data=json.dumps(value).encode()
    )


def _null_payload() -> common.Payload:
    return common.Payload(metadata={"encoding": b"binary/null", "type": b"Keyword"})


def attribute_types(aliases: dict[str, str]) -> dict[str, int]:
    types: dict[str, int] = dict(SYSTEM_SEARCH_ATTRIBUTES)
    types.update(custom_types(aliases))
    return types


def execution_info(
    record: VisibilityRecord, namespace_id: str, aliases: dict[str, str] | None = None
) -> workflow.WorkflowExecutionInfo:
    """A visibility row as List returns it; search attributes carry their ``type`` and Temporal's canonical
    encodings (datetimes in RFC 3339 UTC). ``aliases``: the namespace's custom attributes (slot -> alias)."""
    info = workflow.WorkflowExecutionInfo(
        execution=common.WorkflowExecution(workflow_id=record.workflow_id, run_id=record.run_id),
        type=common.WorkflowType(name=record.workflow_type),
        status=record.status,  # type: ignore[arg-type]
        history_length=record.history_length,
        history_size_bytes=record.history_size_bytes,
        state_transition_count=record.state_transition_count,
        task_queue=record.task_queue,
    )
    info.start_time.FromDatetime(record.start_time)
    info.execution_time.FromDatetime(record.execution_time)
    if record.close_time is not None:
        info.close_time.FromDatetime(record.close_time)
        if record.close_time >= record.execution_time:
            info.execution_duration.FromTimedelta(record.close_time - record.execution_time)
    if record.parent_workflow_id:
        # Visibility rows do not keep the parent's namespace; children live in their parent's namespace here.
        info.parent_namespace_id = namespace_id
        info.parent_execution.CopyFrom(
            common.WorkflowExecution(workflow_id=record.parent_workflow_id, run_id=record.parent_run_id)
        )
    if record.root_workflow_id:
        info.root_execution.CopyFrom(
            common.WorkflowExecution(workflow_id=record.root_workflow_id, run_id=record.root_run_id)
        )
    if record.memo:
        info.memo.CopyFrom(common.Memo.FromString(record.memo))
    if record.search_attributes:
        stored = common.SearchAttributes.FromString(record.search_attributes)
        types = attribute_types(aliases or {})
        for name, payload in stored.indexed_fields.items():
            value_type = types.get(name, metadata_type(payload))
            info.search_attributes.indexed_fields[name].CopyFrom(canonical_payload(payload, value_type))
    return info


class VisibilityHandlers(HandlerBase):
    def _page_size(self, requested: int) -> int:
        cfg = self._ctx.config
        if requested < 0:
            raise InvalidArgument("PageSize cannot be negative.")
        return min(requested or cfg.default_visibility_page_size, cfg.max_visibility_page_size)

    async def _list(
        self, entry: NamespaceEntry, query: str, page_size: int, token: bytes
    ) -> tuple[list[workflow.WorkflowExecutionInfo], bytes]:
        aliases = dict(entry.description.config.custom_search_attribute_aliases)
        records, next_token = await self._ctx.persistence.visibility.list_executions(
            entry.id, query, self._page_size(page_size), token or None, aliases
        )
        return [execution_info(r, entry.id, aliases) for r in records], next_token or b""

    async def ListWorkflowExecutions(
        self, request: wsv1.ListWorkflowExecutionsRequest, *, deadline: float | None = None
    ) -> wsv1.ListWorkflowExecutionsResponse:
        entry = await self._namespace(request.namespace)
        executions, token = await self._list(entry, request.query, request.page_size, request.next_page_token)
        return wsv1.ListWorkflowExecutionsResponse(executions=executions, next_page_token=token)

    async def ScanWorkflowExecutions(
        self, request: wsv1.ScanWorkflowExecutionsRequest, *, deadline: float | None = None
    ) -> wsv1.ScanWorkflowExecutionsResponse:
        """Deprecated alias of List (the real server does the same on SQL visibility)."""
        entry = await self._namespace(request.namespace)
        executions, token = await self._list(entry, request.query, request.page_size, request.next_page_token)
        return wsv1.ScanWorkflowExecutionsResponse(executions=executions, next_page_token=token)

    async def CountWorkflowExecutions(
        self, request: wsv1.CountWorkflowExecutionsRequest, *, deadline: float | None = None
    ) -> wsv1.CountWorkflowExecutionsResponse:
        entry = await self._namespace(request.namespace)
        visibility = self._ctx.persistence.visibility
        aliases = dict(entry.description.config.custom_search_attribute_aliases)
        # Parsed here only to pick the store call; the store parses again (and owns the query language).
        flt = parse_query(request.query, custom_fields(aliases))
        if flt.group_by is not None:
            grouped = await visibility.count_executions_grouped(entry.id, request.query, aliases)
            keyword_groups = [
                wsv1.CountWorkflowExecutionsResponse.AggregationGroup(
                    group_values=[_keyword_payload(value) if value is not None else _null_payload()], count=count
                )
                for value, count in grouped
            ]
            return wsv1.CountWorkflowExecutionsResponse(
                count=sum(g.count for g in keyword_groups), groups=keyword_groups
            )
        if not flt.group_by_status:
            count = await visibility.count_executions(entry.id, request.query, aliases)
            return wsv1.CountWorkflowExecutionsResponse(count=count)
        by_status = await visibility.count_executions_by_status(entry.id, request.query, aliases)
        groups = [
            wsv1.CountWorkflowExecutionsResponse.AggregationGroup(
                group_values=[_keyword_payload(status_name(status))], count=count
            )
            for status, count in sorted(by_status.items())
            if count
        ]
        return wsv1.CountWorkflowExecutionsResponse(count=sum(g.count for g in groups), groups=groups)
