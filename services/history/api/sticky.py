"""ResetStickyTaskQueue: forget the run's sticky worker, so its next workflow task goes to the normal queue with
the full history (what a client does when it knows that worker is gone)."""

from __future__ import annotations

from temporalio.api.common.v1 import message_pb2 as common_pb2

from server.common.errors import NotFound

from ..api_workflow import resolve_run_id
from ..engine import Engine
from ..mutable_state import MutableState


async def reset_sticky(engine: Engine, namespace_id: str, execution: common_pb2.WorkflowExecution) -> None:
    shard = engine.shard(namespace_id, execution.workflow_id)
    run_id = await resolve_run_id(engine, shard, namespace_id, execution)

    def apply(ms: MutableState) -> None:
        if not ms.running:
            raise NotFound("workflow execution already completed")
        ms.clear_sticky()

    await shard.update_run(namespace_id, execution.workflow_id, run_id, apply)
