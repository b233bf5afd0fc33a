"""DescribeTaskQueue: recent pollers and backlog stats, in the legacy and the enhanced (CLI default) shapes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from google.protobuf import duration_pb2
from temporalio.api.enums.v1 import task_queue_pb2 as tq_enums
from temporalio.api.taskqueue.v1 import message_pb2 as tq_pb
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv

from server.common.errors import InvalidArgument
from server.common.sharding import task_id_range
from server.gen.durata.internal.matching.v1 import service_pb2 as mpb
from server.persistence.interface import TaskQueueKey
from services.matching.task_queue import TaskQueueManager

if TYPE_CHECKING:
    from services.matching.service import MatchingService

# Key of the unversioned entry in versions_info (the CLI prints it as "UNVERSIONED").
UNVERSIONED = ""
DEFAULT_TYPES = (tq_enums.TASK_QUEUE_TYPE_WORKFLOW, tq_enums.TASK_QUEUE_TYPE_ACTIVITY)


async def _manager(svc: MatchingService, key: TaskQueueKey, sticky: bool) -> TaskQueueManager | None:
    """The loaded queue; a normal queue is loaded (as the real server does), a sticky one never."""
    mgr = svc.loaded(key)
    if mgr is not None or sticky:
        return mgr
    svc.check_owner(key)
    return await svc.get_manager(key, sticky=False)


def _stats(mgr: TaskQueueManager | None) -> tq_pb.TaskQueueStats:
    stats = tq_pb.TaskQueueStats(approximate_backlog_age=duration_pb2.Duration())
    if mgr is None:
        return stats
    stats.approximate_backlog_count = mgr.backlog_count()
    stats.approximate_backlog_age.FromNanoseconds(int(mgr.backlog_age_seconds() * 1e9))
    stats.tasks_add_rate = mgr.add_rate.rate()
    stats.tasks_dispatch_rate = mgr.dispatch_rate.rate()
    return stats


def _pollers(svc: MatchingService, mgr: TaskQueueManager | None) -> list[tq_pb.PollerInfo]:
    return [] if mgr is None else mgr.poller_history.infos(svc.clock.now())


async def describe_task_queue(
    svc: MatchingService, request: mpb.DescribeTaskQueueRequest
) -> wsv.DescribeTaskQueueResponse:
    public = request.request
    name = public.task_queue.name
    if not name:
        raise InvalidArgument("Missing task queue name.")
    sticky = public.task_queue.kind == tq_enums.TASK_QUEUE_KIND_STICKY
    response = wsv.DescribeTaskQueueResponse()

    if public.api_mode == tq_enums.DESCRIBE_TASK_QUEUE_MODE_ENHANCED:
        types = list(public.task_queue_types) or list(DEFAULT_TYPES)
        version = response.versions_info[UNVERSIONED]
        for task_type in types:
            mgr = await _manager(svc, TaskQueueKey(request.namespace_id, name, task_type), sticky)
            type_info = version.types_info[task_type]
            type_info.pollers.extend(_pollers(svc, mgr))
            type_info.stats.CopyFrom(_stats(mgr))
        if public.report_task_reachability:
            version.task_reachability = tq_enums.BUILD_ID_TASK_REACHABILITY_REACHABLE
        return response

    task_type = public.task_queue_type or tq_enums.TASK_QUEUE_TYPE_WORKFLOW
    mgr = await _manager(svc, TaskQueueKey(request.namespace_id, name, task_type), sticky)
    response.pollers.extend(_pollers(svc, mgr))
    if public.report_stats:
        response.stats.CopyFrom(_stats(mgr))
    if public.include_task_queue_status and mgr is not None:
        read_level, ack_level, range_id = mgr.status()
        status = response.task_queue_status
        status.backlog_count_hint = mgr.backlog_count()
        status.read_level = read_level
        status.ack_level = ack_level
        status.rate_per_second = svc.config.default_poller_rate
        if range_id:
            start, end = task_id_range(range_id)
            status.task_id_block.start_id = start
            status.task_id_block.end_id = end - 1
    return response
