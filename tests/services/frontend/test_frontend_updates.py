"""UpdateWorkflowExecution / PollWorkflowExecutionUpdate at the frontend: validation and forwarding to History."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.api.common.v1 import message_pb2 as common
from temporalio.api.enums.v1 import update_pb2 as update_enums
from temporalio.api.update.v1 import message_pb2 as update
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv1

from server.common.errors import InvalidArgument
from services.frontend.service import FrontendService
from tests.services.frontend.conftest import RecordingService

ACCEPTED = update_enums.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ACCEPTED


def update_req(update_id: str = "u1", name: str = "add", workflow_id: str = "wf", **kw: Any) -> wsv1.UpdateWorkflowExecutionRequest:
    return wsv1.UpdateWorkflowExecutionRequest(
        namespace="default",
        workflow_execution=common.WorkflowExecution(workflow_id=workflow_id),
        wait_policy=update.WaitPolicy(lifecycle_stage=ACCEPTED),
        request=update.Request(meta=update.Meta(update_id=update_id), input=update.Input(name=name)),
        **kw,
    )


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (update_req(update_id=""), "UpdateId is not set"),
        (update_req(name=""), "Update name is not set"),
        (update_req(workflow_id=""), "WorkflowId is not set"),
        (update_req(first_execution_run_id="not-a-uuid"), "Invalid RunId"),
        (wsv1.UpdateWorkflowExecutionRequest(namespace="default", workflow_execution=common.WorkflowExecution(workflow_id="wf")),
         "Update request is not set"),
    ],
)
async def test_update_validation(frontend: FrontendService, history: RecordingService, request_: Any, message: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        await frontend.handler.UpdateWorkflowExecution(request_)
    assert message in exc.value.message
    assert history.calls == []


async def test_update_and_poll_are_forwarded(frontend: FrontendService, history: RecordingService) -> None:
    await frontend.handler.UpdateWorkflowExecution(update_req(), deadline=None)
    call = history.only("UpdateWorkflowExecution")
    assert call.request.namespace_id and call.request.request.request.meta.update_id == "u1"
    ref = update.UpdateRef(workflow_execution=common.WorkflowExecution(workflow_id="wf"), update_id="u1")
    await frontend.handler.PollWorkflowExecutionUpdate(wsv1.PollWorkflowExecutionUpdateRequest(namespace="default", update_ref=ref))
    assert history.only("PollWorkflowExecutionUpdate").request.request.update_ref.update_id == "u1"
    with pytest.raises(InvalidArgument):
        await frontend.handler.PollWorkflowExecutionUpdate(
            wsv1.PollWorkflowExecutionUpdateRequest(
                namespace="default", update_ref=update.UpdateRef(workflow_execution=common.WorkflowExecution(workflow_id="wf"))
            )
        )
