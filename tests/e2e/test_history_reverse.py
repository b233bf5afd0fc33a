"""GetWorkflowExecutionHistoryReverse: newest first, paged, pinned to the run of the first page."""

from __future__ import annotations

import pytest
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryReverseRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from e2e import workflows as wf
from e2e.helpers import running_worker, wid

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]


async def test_reverse_pages_are_the_history_backwards(client: Client) -> None:
    queue = wid("reverse-q")
    async with running_worker(client, queue):
        handle = await client.start_workflow(wf.HelloWorkflow.run, "rev", id=wid("reverse"), task_queue=queue)
        await handle.result()
    forward = [e.event_id async for e in handle.fetch_history_events()]
    backward: list[int] = []
    token = b""
    pages = 0
    while True:
        resp = await client.workflow_service.get_workflow_execution_history_reverse(
            GetWorkflowExecutionHistoryReverseRequest(
                namespace="default", execution=WorkflowExecution(workflow_id=handle.id), maximum_page_size=3,
                next_page_token=token,
            )
        )
        pages += 1
        assert len(resp.history.events) <= 3
        backward.extend(e.event_id for e in resp.history.events)
        token = resp.next_page_token
        if not token:
            break
    assert backward == list(reversed(forward))
    assert pages == -(-len(forward) // 3)

    with pytest.raises(RPCError) as err:
        await client.workflow_service.get_workflow_execution_history_reverse(
            GetWorkflowExecutionHistoryReverseRequest(
                namespace="default", execution=WorkflowExecution(workflow_id=handle.id), next_page_token=b"\xffjunk"
            )
        )
    assert err.value.status == RPCStatusCode.INVALID_ARGUMENT
