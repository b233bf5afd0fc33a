"""What each history task does when a queue processor runs it. Every handler re-validates against the
current mutable state (invariant 5) and is idempotent: tasks are delivered at least once."""

from __future__ import annotations

from temporalio.api.common.v1 import message_pb2 as common_pb2
from temporalio.api.enums.v1 import task_queue_pb2
from temporalio.api.taskqueue.v1 import message_pb2 as taskqueue_pb2

from server.common.errors import FailedPrecondition, NotFound
from server.gen.durata.internal.history.v1 import state_pb2
from server.gen.durata.internal.matching.v1 import service_pb2 as matching_pb2
from server.persistence.interface import HistoryTask, VisibilityRecord

from . import (
    activities,
    build_id_search_attributes,
    commands,
    outbound_tasks,
    search_attributes,
    workflow_ops,
)
from .engine import Engine
from .mutable_state import MutableState, from_ts
from .shard import ShardContext
from .workflow_task import sticky_unavailable, workflow_task_timer_fired

T = state_pb2.HistoryTaskType


def decode(task: HistoryTask) -> state_pb2.HistoryTaskInfo:
    info = state_pb2.HistoryTaskInfo()
    info.ParseFromString(task.data)
    return info


async def _update(shard: ShardContext, task: HistoryTask, fn: object) -> None:
    try:
        await shard.update_run(task.namespace_id, task.workflow_id, task.run_id, fn)  # type: ignore[arg-type]
    except NotFound:
        pass  # the run was deleted: nothing left to guard


# ---------------------------------------------------------------- transfer


async def _load_committed(shard: ShardContext, task: HistoryTask) -> MutableState | None:
    """Load under the workflow lock: a queue can read a task from the database before the transaction that
    wrote it has put the new state in the cache; without the lock it would see the old state and drop the
    task as stale."""
    async with shard.lock(task.namespace_id, task.workflow_id):
        return await shard.load(task.namespace_id, task.workflow_id, task.run_id)


async def handle_transfer(engine: Engine, shard: ShardContext, task: HistoryTask) -> None:
    info = decode(task)
    ms = await _load_committed(shard, task)
    if ms is None:
        return
    if info.type == T.HISTORY_TASK_TYPE_CLOSE_EXECUTION:
        if not ms.running:
            await outbound_tasks.close_execution(engine, shard, task, info, ms)
        return
    if not ms.running:
        return
    outbound = outbound_tasks.HANDLERS.get(info.type)
    if outbound is not None:
        await outbound(engine, shard, task, info, ms)
        return
    execution = common_pb2.WorkflowExecution(workflow_id=task.workflow_id, run_id=task.run_id)
    if info.type == T.HISTORY_TASK_TYPE_WORKFLOW_TASK:
        await _dispatch_workflow_task(engine, shard, task, info, ms, execution)
    elif info.type == T.HISTORY_TASK_TYPE_ACTIVITY_TASK:
        act = ms.record.activities.get(info.event_id)
        if act is None or act.attempt != info.attempt or act.stamp != info.stamp or act.started:
            return
        if ms.paused:
            return  # PauseWorkflowExecution: UnpauseWorkflowExecution dispatches the attempt again
        await engine.matching.AddActivityTask(
            matching_pb2.AddActivityTaskRequest(
                namespace_id=task.namespace_id,
                execution=execution,
                task_queue=taskqueue_pb2.TaskQueue(name=act.task_queue, kind=task_queue_pb2.TASK_QUEUE_KIND_NORMAL),
                scheduled_event_id=info.event_id,
                attempt=info.attempt,
                stamp=info.stamp,
                schedule_to_start_timeout=act.schedule_to_start_timeout,
            )
        )


def _wft_current(ms: MutableState, info: state_pb2.HistoryTaskInfo) -> bool:
    wt = ms.wft
    return ms.running and wt.scheduled_event_id == info.event_id and wt.stamp == info.stamp and not wt.started_event_id


async def _dispatch_workflow_task(
    engine: Engine,
    shard: ShardContext,
    task: HistoryTask,
    info: state_pb2.HistoryTaskInfo,
    ms: MutableState,
    execution: common_pb2.WorkflowExecution,
) -> None:
    if not _wft_current(ms, info):
        return
    queue = ms.wft.task_queue

    def request(tq: taskqueue_pb2.TaskQueue) -> matching_pb2.AddWorkflowTaskRequest:
        req = matching_pb2.AddWorkflowTaskRequest(
            namespace_id=task.namespace_id,
            execution=execution,
            task_queue=tq,
            scheduled_event_id=info.event_id,
            attempt=info.attempt,
            stamp=info.stamp,
        )
        if tq.kind == task_queue_pb2.TASK_QUEUE_KIND_STICKY:
            req.schedule_to_start_timeout.CopyFrom(ms.record.sticky_schedule_to_start_timeout)
        return req

    try:
        await engine.matching.AddWorkflowTask(request(queue))
        return
    except FailedPrecondition:
        if queue.kind != task_queue_pb2.TASK_QUEUE_KIND_STICKY:
            raise
    # StickyWorkerUnavailable: clear stickiness and go to the normal queue.
    moved, _ = await shard.update_run(task.namespace_id, task.workflow_id, task.run_id, lambda m: sticky_unavailable(m, info))
    if moved:
        await engine.matching.AddWorkflowTask(request(ms.normal_task_queue()))


# ---------------------------------------------------------------- timer


async def handle_timer(engine: Engine, shard: ShardContext, task: HistoryTask) -> None:
    info = decode(task)
    t = info.type
    if t == T.HISTORY_TASK_TYPE_WORKFLOW_TASK_TIMEOUT:
        fn = lambda ms: workflow_task_timer_fired(ms, info)  # noqa: E731
    elif t == T.HISTORY_TASK_TYPE_ACTIVITY_TIMEOUT:
        fn = lambda ms: activities.activity_timer_fired(ms, info)  # noqa: E731
    elif t == T.HISTORY_TASK_TYPE_USER_TIMER:
        fn = lambda ms: commands.timer_fired(ms, info)  # noqa: E731
    elif t in (T.HISTORY_TASK_TYPE_WORKFLOW_RUN_TIMEOUT, T.HISTORY_TASK_TYPE_WORKFLOW_EXECUTION_TIMEOUT):
        current = await shard.load(task.namespace_id, task.workflow_id, task.run_id)
        started_attrs = None
        if current is not None and current.running and (current.record.has_retry_policy or current.record.cron_schedule):
            started_attrs = await engine.started_attributes(shard, task.namespace_id, task.workflow_id, task.run_id)

        def fn(ms: MutableState) -> None:
            ms.started_attributes = started_attrs
            workflow_ops.run_timeout_fired(ms, engine.config)
    elif t == T.HISTORY_TASK_TYPE_WORKFLOW_BACKOFF_TIMER:
        fn = workflow_ops.backoff_timer_fired
    elif t == T.HISTORY_TASK_TYPE_VISIBILITY_REFRESH_TIMER:
        fn = build_id_search_attributes.refresh_timer_fired
    elif t == T.HISTORY_TASK_TYPE_ACTIVITY_RETRY_TIMER:

        def fn(ms: MutableState) -> None:
            act = ms.record.activities.get(info.event_id)
            if ms.running and act is not None and act.attempt == info.attempt and act.stamp == info.stamp and not act.started:
                if ms.paused:
                    return  # PauseWorkflowExecution: UnpauseWorkflowExecution schedules the attempt again
                activities.retry_timer_fired(ms, act)
    else:
        return
    await _update(shard, task, fn)
    if t in (T.HISTORY_TASK_TYPE_WORKFLOW_RUN_TIMEOUT, T.HISTORY_TASK_TYPE_WORKFLOW_EXECUTION_TIMEOUT):
        ms = await shard.load(task.namespace_id, task.workflow_id, task.run_id)
        if ms is not None and not ms.running:
            engine.queries.redispatch_all((task.namespace_id, task.workflow_id, task.run_id))
            engine.updates.drop_run((task.namespace_id, task.workflow_id, task.run_id))


# ---------------------------------------------------------------- visibility


async def handle_visibility(engine: Engine, shard: ShardContext, task: HistoryTask) -> None:
    info = decode(task)
    if info.type == T.HISTORY_TASK_TYPE_VISIBILITY_DELETE:
        await engine.persistence.visibility.delete_execution(task.namespace_id, task.run_id)
        return
    ms = await _load_committed(shard, task)
    if ms is None:
        return
    record = visibility_record(ms)
    record.custom_values = await search_attributes.visibility_slot_values(
        engine, ms.record.namespace_id, ms.record.search_attributes
    )
    await engine.persistence.visibility.upsert_execution(record)


def visibility_record(ms: MutableState) -> VisibilityRecord:
    r = ms.record
    return VisibilityRecord(
        namespace_id=r.namespace_id,
        workflow_id=r.workflow_id,
        run_id=r.run_id,
        workflow_type=r.workflow_type,
        task_queue=r.task_queue,
        status=r.status,
        start_time=from_ts(r.start_time),
        execution_time=from_ts(r.execution_time),
        close_time=None if ms.running else from_ts(r.close_time),
        history_length=r.next_event_id - 1,
        history_size_bytes=r.history_size_bytes,
        state_transition_count=r.state_transition_count,
        parent_workflow_id=r.parent.workflow_id,
        parent_run_id=r.parent.run_id,
        root_workflow_id=r.parent.root_workflow_id if r.HasField("parent") else r.workflow_id,
        root_run_id=r.parent.root_run_id if r.HasField("parent") else r.run_id,
        memo=r.memo.SerializeToString(),
        search_attributes=r.search_attributes.SerializeToString(),
    )
