"""The public WorkflowService handler: one coroutine per RPC, grouped by concept in sibling modules."""

from __future__ import annotations

from services.frontend.activity_handlers import ActivityHandlers
from services.frontend.batch_handlers import BatchHandlers
from services.frontend.history_reverse_handlers import HistoryReverseHandlers
from services.frontend.multi_operation_handlers import MultiOperationHandlers
from services.frontend.namespace_handlers import NamespaceHandlers
from services.frontend.open_closed_handlers import OpenClosedListHandlers
from services.frontend.options_handlers import OptionsHandlers
from services.frontend.reset_handlers import ResetHandlers
from services.frontend.schedule_handlers import ScheduleHandlers
from services.frontend.system_handlers import SystemHandlers
from services.frontend.task_handlers import TaskHandlers
from services.frontend.task_queue_partition_handlers import TaskQueuePartitionHandlers
from services.frontend.visibility_handlers import VisibilityHandlers
from services.frontend.worker_handlers import WorkerHandlers
from services.frontend.workflow_handlers import WorkflowHandlers
from services.frontend.workflow_pause_handlers import WorkflowPauseHandlers


class WorkflowServiceHandler(
    SystemHandlers, NamespaceHandlers, WorkflowHandlers, TaskHandlers, VisibilityHandlers,
    MultiOperationHandlers, ResetHandlers, HistoryReverseHandlers, ActivityHandlers, OpenClosedListHandlers,
    OptionsHandlers,
    TaskQueuePartitionHandlers, WorkerHandlers, WorkflowPauseHandlers, BatchHandlers, ScheduleHandlers,
):
    """RPCs not defined by any group are absent, so the gRPC edge answers them UNIMPLEMENTED."""
