"""GetWorkflowExecutionHistoryReverse: a run's events newest first, as the CLI's `workflow reset --type
LastWorkflowTask` reads them. Built on History's forward read: the run is pinned on the first page (a later
run must not change what the next pages show) and the token names the run and where the next page ends."""

from __future__ import annotations

import json

from temporalio.api.common.v1 import message_pb2 as common
from temporalio.api.history.v1 import message_pb2 as history
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv1

from server.common.errors import InvalidArgument
from server.gen.durata.internal.history.v1 import service_pb2 as hs
from services.frontend.base import HandlerBase, log_context
from services.frontend.validation import check_execution

DEFAULT_PAGE_SIZE = 1000


def _decode(token: bytes) -> tuple[str, int]:
    try:
        data = json.loads(token)
        run_id, before = data["run_id"], data["before"]
        if not isinstance(run_id, str) or not isinstance(before, int) or before < 1:
            raise ValueError(token)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise InvalidArgument("Invalid NextPageToken.") from None
    return run_id, before


class HistoryReverseHandlers(HandlerBase):
    async def GetWorkflowExecutionHistoryReverse(
        self, request: wsv1.GetWorkflowExecutionHistoryReverseRequest, *, deadline: float | None = None
    ) -> wsv1.GetWorkflowExecutionHistoryReverseResponse:
        entry = await self._namespace(request.namespace)
        check_execution(request.execution, self._ctx.config, present=request.HasField("execution"))
        if request.maximum_page_size < 0:
            raise InvalidArgument("MaximumPageSize cannot be negative.")
        page_size = request.maximum_page_size or DEFAULT_PAGE_SIZE
        with log_context(namespace=entry.name, workflow_id=request.execution.workflow_id):
            if request.next_page_token:
                run_id, before = _decode(request.next_page_token)
            else:
                described = await self._ctx.history.DescribeWorkflowExecution(
                    hs.DescribeWorkflowExecutionRequest(
                        namespace_id=entry.id,
                        request=wsv1.DescribeWorkflowExecutionRequest(namespace=entry.name, execution=request.execution),
                    ),
                    deadline=deadline,
                )
                run_id, before = described.workflow_execution_info.execution.run_id, 0
            events = await self._all_events(entry.id, entry.name, request.execution.workflow_id, run_id, deadline)
        if before == 0 or before > len(events) + 1:
            before = len(events) + 1
        start = max(0, before - 1 - page_size)
        page = list(reversed(events[start : before - 1]))
        token = json.dumps({"run_id": run_id, "before": start + 1}).encode() if start > 0 else b""
        return wsv1.GetWorkflowExecutionHistoryReverseResponse(
            history=history.History(events=page), next_page_token=token
        )

    async def _all_events(
        self, namespace_id: str, namespace: str, workflow_id: str, run_id: str, deadline: float | None
    ) -> list[history.HistoryEvent]:
        events: list[history.HistoryEvent] = []
        token = b""
        while True:
            resp = await self._ctx.history.GetWorkflowExecutionHistory(
                hs.GetWorkflowExecutionHistoryRequest(
                    namespace_id=namespace_id,
                    request=wsv1.GetWorkflowExecutionHistoryRequest(
                        namespace=namespace,
                        execution=common.WorkflowExecution(workflow_id=workflow_id, run_id=run_id),
                        next_page_token=token,
                    ),
                ),
                deadline=deadline,
            )
            events.extend(resp.history.events)
            token = resp.next_page_token
            if not token:
                return events
