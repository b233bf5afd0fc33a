"""What a schedule shows outside its own describe: the ScheduleListInfo ListSchedules reads from the scheduler
workflow's memo, and the ListScheduleMatchingTimes answer."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from temporalio.api.schedule.v1 import message_pb2 as sched
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv

from server.common.errors import InvalidArgument

from .spec import CompiledSpec
from .state import ts_time

FUTURE_ACTION_COUNT_FOR_LIST = 5
RECENT_ACTION_COUNT_FOR_LIST = 5
SPEC_FIELD_LIMIT_FOR_LIST = 10


def list_info(schedule: sched.Schedule, info: sched.ScheduleInfo, future: Iterable[datetime]) -> sched.ScheduleListInfo:
    """Temporal's trimmed copy: no time zone data, at most 10 entries per spec field, the last 5 actions."""
    spec = sched.ScheduleSpec()
    spec.CopyFrom(schedule.spec)
    spec.ClearField("timezone_data")
    for field in (spec.structured_calendar, spec.interval, spec.exclude_structured_calendar):
        del field[SPEC_FIELD_LIMIT_FOR_LIST:]
    out = sched.ScheduleListInfo(
        spec=spec, notes=schedule.state.notes, paused=schedule.state.paused,
        recent_actions=list(info.recent_actions)[-RECENT_ACTION_COUNT_FOR_LIST:],
    )  # fmt: skip
    if schedule.action.start_workflow.HasField("workflow_type"):
        out.workflow_type.CopyFrom(schedule.action.start_workflow.workflow_type)
    for t in future:
        out.future_action_times.add().FromDatetime(t)
    return out


def matching_times(
    spec: CompiledSpec | None, invalid_error: str, request: wsv.ListScheduleMatchingTimesRequest
) -> wsv.ListScheduleMatchingTimesResponse:
    if not request.HasField("start_time") or not request.HasField("end_time"):
        raise InvalidArgument("missing or invalid query")
    if spec is None:
        raise InvalidArgument(f"invalid schedule: {invalid_error}")
    out = wsv.ListScheduleMatchingTimesResponse()
    for t in spec.matching_times(ts_time(request.start_time), ts_time(request.end_time)):
        out.start_time.add().FromDatetime(t)
    return out
