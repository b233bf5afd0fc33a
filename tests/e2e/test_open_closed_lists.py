"""ListOpen/ListClosedWorkflowExecutions: the filter API, answered from the same visibility records as List."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from temporalio.api.enums.v1 import WorkflowExecutionStatus
from temporalio.api.filter.v1 import (
    StartTimeFilter,
    StatusFilter,
    WorkflowExecutionFilter,
    WorkflowTypeFilter,
)
from temporalio.api.workflowservice.v1 import (
    ListClosedWorkflowExecutionsRequest,
    ListOpenWorkflowExecutionsRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from e2e.helpers import wait_until, wid

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]


def _ts(dt: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(dt)
    return ts


async def test_open_and_closed_filters(client: Client) -> None:
    svc = client.workflow_service
    queue = wid("oc-q")
    kind = f"OpenClosed{wid('t').replace('-', '')}"
    weird_id = wid("it's-a \\ weird id")
    running = await client.start_workflow(kind, id=weird_id, task_queue=queue)
    closed = await client.start_workflow(kind, id=wid("oc-closed"), task_queue=queue)
    await closed.terminate("done")
    window = StartTimeFilter(earliest_time=_ts(datetime.now(UTC) - timedelta(minutes=5)),
                             latest_time=_ts(datetime.now(UTC) + timedelta(minutes=5)))

    async def open_ids() -> set[str] | None:
        resp = await svc.list_open_workflow_executions(ListOpenWorkflowExecutionsRequest(
            namespace="default", start_time_filter=window, type_filter=WorkflowTypeFilter(name=kind)))
        ids = {e.execution.workflow_id for e in resp.executions}
        return ids if ids else None

    assert await wait_until(open_ids, 15, "the open run listed") == {running.id}

    async def closed_ids() -> set[str] | None:
        resp = await svc.list_closed_workflow_executions(ListClosedWorkflowExecutionsRequest(
            namespace="default", start_time_filter=window,
            status_filter=StatusFilter(status=WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_TERMINATED)))
        ids = {e.execution.workflow_id for e in resp.executions} & {running.id, closed.id}
        return ids if ids else None

    assert await wait_until(closed_ids, 15, "the closed run listed") == {closed.id}

    by_id = await svc.list_open_workflow_executions(ListOpenWorkflowExecutionsRequest(
        namespace="default", start_time_filter=window, execution_filter=WorkflowExecutionFilter(workflow_id=weird_id)))
    assert [e.execution.workflow_id for e in by_id.executions] == [weird_id]

    with pytest.raises(RPCError) as err:
        await svc.list_closed_workflow_executions(ListClosedWorkflowExecutionsRequest(
            namespace="default", status_filter=StatusFilter(status=WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING)))
    assert err.value.status == RPCStatusCode.INVALID_ARGUMENT
    await running.terminate("cleanup")
