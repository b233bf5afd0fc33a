"""The public WorkflowService handler: one coroutine per RPC, grouped by concept in sibling modules."""

from __future__ import annotations

from services.frontend.namespace_handlers import NamespaceHandlers
from services.frontend.system_handlers import SystemHandlers
from services.frontend.task_handlers import TaskHandlers
from services.frontend.visibility_handlers import VisibilityHandlers
from services.frontend.workflow_handlers import WorkflowHandlers


class WorkflowServiceHandler(
    SystemHandlers, NamespaceHandlers, WorkflowHandlers, TaskHandlers, VisibilityHandlers
):
    """RPCs not defined by any group are absent, so the gRPC edge answers them UNIMPLEMENTED."""
