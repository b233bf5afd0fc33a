"""Names shared by the Frontend (which starts and reads system workflows) and the internal worker (which runs
them): Temporal's own, so tools that recognise Temporal's system workflows recognise Durata's."""

from __future__ import annotations

# Every namespace's system workflows run on this task queue, polled by the internal worker in each namespace.
PER_NAMESPACE_TASK_QUEUE = "temporal-sys-per-ns-tq"

# Batch operations: one workflow per job (workflow id = job id), hidden from ordinary lists by its division.
BATCH_WORKFLOW_TYPE = "temporal-sys-batch-workflow-protobuf"
BATCH_NAMESPACE_DIVISION = "TemporalBatcher"
BATCH_TYPE_MEMO = "batch_operation_type"
BATCH_REASON_MEMO = "batch_operation_reason"
BATCH_STATS_MEMO = "batch_operation_stats"
BATCH_QUERY_MEMO = "batch_operation_visibility_query"
BATCH_EXECUTIONS_MEMO = "batch_operation_executions"

NAMESPACE_DIVISION_ATTRIBUTE = "TemporalNamespaceDivision"


def _batch_types() -> dict[str, tuple[int, str]]:
    from temporalio.api.enums.v1 import batch_operation_pb2 as b

    t = b.BatchOperationType
    return {
        # request oneof field -> (the type Describe reports, the memo string Temporal records)
        "termination_operation": (t.BATCH_OPERATION_TYPE_TERMINATE_WORKFLOW, "terminate"),
        "cancellation_operation": (t.BATCH_OPERATION_TYPE_CANCEL_WORKFLOW, "cancel"),
        "signal_operation": (t.BATCH_OPERATION_TYPE_SIGNAL_WORKFLOW, "signal"),
        "deletion_operation": (t.BATCH_OPERATION_TYPE_DELETE_WORKFLOW, "delete"),
        "reset_operation": (t.BATCH_OPERATION_TYPE_RESET_WORKFLOW, "reset"),
        "update_workflow_options_operation": (
            t.BATCH_OPERATION_TYPE_UPDATE_WORKFLOW_EXECUTION_OPTIONS, "update_options",
        ),
        "unpause_activities_operation": (t.BATCH_OPERATION_TYPE_UNPAUSE_ACTIVITY, "unpause_activities"),
    }


# Batch operations Durata runs (each one a single RPC it serves), keyed by StartBatchOperationRequest's oneof.
BATCH_TYPES: dict[str, tuple[int, str]] = _batch_types()
BATCH_TYPE_BY_MEMO: dict[str, int] = {memo: typ for typ, memo in BATCH_TYPES.values()}

# Schedules: one scheduler workflow per schedule (workflow id = prefix + schedule id).
SCHEDULER_WORKFLOW_TYPE = "temporal-sys-scheduler-workflow"
SCHEDULER_ID_PREFIX = "temporal-sys-scheduler:"
SCHEDULER_NAMESPACE_DIVISION = "TemporalScheduler"
SCHEDULER_SIGNAL_PATCH = "patch"
SCHEDULER_SIGNAL_UPDATE = "update"
SCHEDULER_SIGNAL_REFRESH = "refresh"
SCHEDULER_QUERY_DESCRIBE = "describe"
SCHEDULER_QUERY_MATCHING_TIMES = "listMatchingTimes"
# The scheduler's ScheduleListInfo (what ListSchedules shows), serialized, in its workflow's memo.
SCHEDULER_MEMO_INFO = "ScheduleInfo"
