"""ListOpenWorkflowExecutions / ListClosedWorkflowExecutions: the filter-based list API older clients use,
translated into the list query language so the one visibility query path serves both (as Temporal does)."""

from __future__ import annotations

from datetime import UTC

from temporalio.api.enums.v1 import workflow_pb2 as wf_enums
from temporalio.api.filter.v1 import message_pb2 as filters
from temporalio.api.workflow.v1 import message_pb2 as workflow
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv1

from server.common.errors import InvalidArgument
from server.persistence.visibility_query import STATUS_NAMES
from services.frontend.base import HandlerBase
from services.frontend.namespace_registry import NamespaceEntry
from services.frontend.visibility_handlers import execution_info, status_name


def quote(value: str) -> str:
    """A string literal of the list query language holding exactly ``value``."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _time_clause(column: str, f: filters.StartTimeFilter) -> str | None:
    if not f.HasField("earliest_time") and not f.HasField("latest_time"):
        return None
    try:
        earliest = f.earliest_time.ToDatetime(tzinfo=UTC)
        latest = f.latest_time.ToDatetime(tzinfo=UTC) if f.HasField("latest_time") else None
    except (ValueError, OverflowError):
        raise InvalidArgument("Invalid StartTimeFilter.") from None
    if latest is not None and latest < earliest:
        raise InvalidArgument("StartTimeFilter.EarliestTime cannot be after LatestTime.")
    clause = f"{column} >= {quote(earliest.isoformat())}"
    if latest is not None:
        clause += f" AND {column} <= {quote(latest.isoformat())}"
    return clause


def build_query(
    status_clause: str,
    time_column: str,
    start_time_filter: filters.StartTimeFilter,
    execution_filter: filters.WorkflowExecutionFilter | None,
    type_filter: filters.WorkflowTypeFilter | None,
) -> str:
    clauses = [status_clause]
    time_clause = _time_clause(time_column, start_time_filter)
    if time_clause:
        clauses.append(time_clause)
    if execution_filter is not None:
        if not execution_filter.workflow_id:
            raise InvalidArgument("WorkflowId is not set on request.")
        clauses.append(f"WorkflowId = {quote(execution_filter.workflow_id)}")
        if execution_filter.run_id:
            clauses.append(f"RunId = {quote(execution_filter.run_id)}")
    if type_filter is not None:
        if not type_filter.name:
            raise InvalidArgument("WorkflowType is not set on request.")
        clauses.append(f"WorkflowType = {quote(type_filter.name)}")
    return " AND ".join(clauses)


class OpenClosedListHandlers(HandlerBase):
    async def _legacy_list(
        self, entry: NamespaceEntry, query: str, page_size: int, token: bytes
    ) -> tuple[list[workflow.WorkflowExecutionInfo], bytes]:
        cfg = self._ctx.config
        if page_size < 0:
            raise InvalidArgument("PageSize cannot be negative.")
        size = min(page_size or cfg.default_visibility_page_size, cfg.max_visibility_page_size)
        records, next_token = await self._ctx.persistence.visibility.list_executions(entry.id, query, size, token or None)
        return [execution_info(r, entry.id) for r in records], next_token or b""

    async def ListOpenWorkflowExecutions(
        self, request: wsv1.ListOpenWorkflowExecutionsRequest, *, deadline: float | None = None
    ) -> wsv1.ListOpenWorkflowExecutionsResponse:
        entry = await self._namespace(request.namespace)
        which = request.WhichOneof("filters")
        query = build_query(
            "ExecutionStatus = 'Running'", "StartTime", request.start_time_filter,
            request.execution_filter if which == "execution_filter" else None,
            request.type_filter if which == "type_filter" else None,
        )
        executions, token = await self._legacy_list(entry, query, request.maximum_page_size, request.next_page_token)
        return wsv1.ListOpenWorkflowExecutionsResponse(executions=executions, next_page_token=token)

    async def ListClosedWorkflowExecutions(
        self, request: wsv1.ListClosedWorkflowExecutionsRequest, *, deadline: float | None = None
    ) -> wsv1.ListClosedWorkflowExecutionsResponse:
        entry = await self._namespace(request.namespace)
        which = request.WhichOneof("filters")
        if which == "status_filter":
            status = request.status_filter.status
            if status not in STATUS_NAMES.values() or status == wf_enums.WORKFLOW_EXECUTION_STATUS_RUNNING:
                raise InvalidArgument(f"Invalid WorkflowExecutionStatus {status} for a closed workflow filter.")
            status_clause = f"ExecutionStatus = {quote(status_name(status))}"
        else:
            status_clause = "ExecutionStatus != 'Running'"
        query = build_query(
            status_clause, "CloseTime", request.start_time_filter,
            request.execution_filter if which == "execution_filter" else None,
            request.type_filter if which == "type_filter" else None,
        )
        executions, token = await self._legacy_list(entry, query, request.maximum_page_size, request.next_page_token)
        return wsv1.ListClosedWorkflowExecutionsResponse(executions=executions, next_page_token=token)
