"""Eager workflow start: ``request_eager_execution`` on StartWorkflowExecution hands the first workflow task back in
the start response, recorded as started by the caller's identity in the start's own transaction (no matching
round trip, no transfer task), as Temporal does when the start creates a run whose first task is due now (no
start delay, no cron backoff). A start that did not create a run (USE_EXISTING, a retried request id) gets no task.
"""

from __future__ import annotations

from temporalio.api.common.v1 import message_pb2 as common_pb2
from temporalio.api.workflowservice.v1 import request_response_pb2 as ws

from server.gen.durata.internal.history.v1 import state_pb2
from server.persistence.interface import TaskCategory

from ..api_tasks import _workflow_task_response
from ..engine import Engine
from ..mutable_state import MutableState


class EagerStart:
    """Started the first WFT of a new run in place; remembers which run (a start may build several candidates)."""

    def __init__(self, req: ws.StartWorkflowExecutionRequest) -> None:
        self.req = req
        self.run_id = ""

    @property
    def requested(self) -> bool:
        return self.req.request_eager_execution

    def apply(self, ms: MutableState) -> None:
        """Called on a fresh run before its commit: start the scheduled WFT for the caller instead of matching."""
        r = ms.record
        if not self.requested or not ms.wft_scheduled or ms.wft_started or r.wft_backoff_pending:
            return
        scheduled = ms.wft.scheduled_event_id
        ms.tasks = [
            t for t in ms.tasks
            if not (
                t.category == TaskCategory.TRANSFER
                and t.info.type == state_pb2.HISTORY_TASK_TYPE_WORKFLOW_TASK
                and t.info.event_id == scheduled
            )
        ]
        ms.start_workflow_task(self.req.request_id, self.req.identity)
        self.run_id = r.run_id

    async def response(self, engine: Engine, namespace_id: str, run_id: str) -> ws.PollWorkflowTaskQueueResponse | None:
        """The poll response of the eagerly started task, if this start created ``run_id`` eagerly."""
        if not self.run_id or self.run_id != run_id:
            return None
        wf_id = self.req.workflow_id
        shard = engine.shard(namespace_id, wf_id)
        ms = await shard.load(namespace_id, wf_id, run_id)
        if ms is None or not ms.wft_started:
            return None
        ex = common_pb2.WorkflowExecution(workflow_id=wf_id, run_id=run_id)
        return await _workflow_task_response(engine, shard, namespace_id, ex, ms, False)
