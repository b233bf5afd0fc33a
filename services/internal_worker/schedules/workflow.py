"""The scheduler system workflow on Durata's SDK: it feeds the sans-IO ``Scheduler`` core with time, signals and
the outcomes of its actions, and executes the actions the core returns as activities. Everything the core knows
lives in this workflow's history (and, across continue-as-new, in its input), so a crash of the internal worker
or of any service replays it exactly: a nominal time fires once, and its start carries a request id derived
from it, so a retried start is a no-op on the server.

Signals: ``patch`` (SchedulePatch), ``update`` (FullUpdateRequest), ``refresh``. Queries: ``describe``
(DescribeResponse), ``listMatchingTimes`` (ListScheduleMatchingTimesRequest -> Response)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from durata import workflow
from durata.common import RetryPolicy
from durata.exceptions import ActivityError
from temporalio.api.common.v1 import message_pb2 as common
from temporalio.api.schedule.v1 import message_pb2 as sched
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv

from server.common.system_workflows import (
    SCHEDULER_MEMO_INFO,
    SCHEDULER_QUERY_DESCRIBE,
    SCHEDULER_QUERY_MATCHING_TIMES,
    SCHEDULER_SIGNAL_PATCH,
    SCHEDULER_SIGNAL_REFRESH,
    SCHEDULER_SIGNAL_UPDATE,
    SCHEDULER_WORKFLOW_TYPE,
)
from server.gen.durata.internal.schedule.v1 import schedule_pb2

from .actions import Action, CancelWorkflow, RefreshWorkflows, StartWorkflow, TerminateWorkflow, WatchWorkflow
from .scheduler import Scheduler

Event = Callable[[datetime], list[Action]]
# Search attributes of the scheduler workflow that are not the schedule's own.
_SERVER_ATTRIBUTES = frozenset({"TemporalNamespaceDivision", "TemporalSchedulePaused", "BuildIds", "BinaryChecksums"})
# One RPC with the frontend's 10 s deadline: a start lost with a crashed worker is retried after this long.
_RPC = timedelta(seconds=12)
_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                     maximum_interval=timedelta(seconds=60))  # fmt: skip


@workflow.defn(name=SCHEDULER_WORKFLOW_TYPE)
class SchedulerWorkflow:
    @workflow.init
    def __init__(self, args: schedule_pb2.StartScheduleArgs) -> None:
        self.core = Scheduler.from_args(args, workflow.now())
        self.inbox: list[Event] = []
        self.watching: set[str] = set()
        self.published_info: bytes | None = None
        self.published_paused: bool | None = None

    @workflow.run
    async def run(self, args: schedule_pb2.StartScheduleArgs) -> None:
        self._execute(self.core.advance(workflow.now()))
        while True:
            now = workflow.now()
            self._publish(now)
            if self.core.finished(now):
                return
            if not self.inbox and self.core.should_continue_as_new(workflow.info().is_continue_as_new_suggested()):
                workflow.continue_as_new(self.core.to_args())
            wakeup = self.core.next_wakeup(now)
            timeout = None if wakeup is None else max((wakeup - now).total_seconds(), 0.0)
            try:
                await workflow.wait_condition(lambda: bool(self.inbox), timeout=timeout)
            except TimeoutError:
                pass
            now = workflow.now()
            events, self.inbox = self.inbox, []
            actions: list[Action] = []
            for event in events:
                actions += event(now)
            actions += self.core.advance(now)
            self._execute(actions)

    # ------------------------------------------------------------ requests

    @workflow.signal(name=SCHEDULER_SIGNAL_PATCH)
    def patch(self, patch: sched.SchedulePatch) -> None:
        self.inbox.append(lambda now: self.core.patch(patch, now))

    @workflow.signal(name=SCHEDULER_SIGNAL_UPDATE)
    def update(self, request: schedule_pb2.FullUpdateRequest) -> None:
        def apply(now: datetime) -> list[Action]:
            actions = self.core.update(request.schedule, now, request.conflict_token)
            if request.HasField("search_attributes"):
                self._replace_search_attributes(request.search_attributes)
            return actions

        self.inbox.append(apply)

    @workflow.signal(name=SCHEDULER_SIGNAL_REFRESH)
    def refresh(self) -> None:
        self.inbox.append(self.core.advance)

    @workflow.query(name=SCHEDULER_QUERY_DESCRIBE)
    def describe(self) -> schedule_pb2.DescribeResponse:
        return self.core.describe(workflow.now())

    @workflow.query(name=SCHEDULER_QUERY_MATCHING_TIMES)
    def list_matching_times(
        self, request: wsv.ListScheduleMatchingTimesRequest
    ) -> wsv.ListScheduleMatchingTimesResponse:
        return self.core.list_matching_times(request)

    # ------------------------------------------------------------ actions

    def _execute(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, WatchWorkflow):
                if action.workflow_id in self.watching:
                    continue
                self.watching.add(action.workflow_id)
            asyncio.create_task(self._run(action))  # noqa: RUF006 - its outcome comes back through the inbox

    async def _run(self, action: Action) -> None:
        if isinstance(action, StartWorkflow):
            try:
                # A local activity, as Temporal's scheduler starts runs: the start is done within the workflow
                # task, so a describe right after a trigger already shows it.
                resp = await workflow.execute_local_activity(
                    "SchedulerStartWorkflow", action.request, result_type=wsv.StartWorkflowExecutionResponse,
                    start_to_close_timeout=_RPC, schedule_to_close_timeout=max(action.timeout, _RPC),
                    retry_policy=_RETRY,
                )  # fmt: skip
            except ActivityError as err:
                message = str(err.__cause__ or err)
                self.inbox.append(lambda now: self.core.start_failed(action.request_id, message, now))
                return
            self.inbox.append(lambda now: self.core.started(action.request_id, resp.run_id, now))
        elif isinstance(action, WatchWorkflow):
            try:
                result = await workflow.execute_activity(
                    "SchedulerWatchWorkflow",
                    common.WorkflowExecution(workflow_id=action.workflow_id, run_id=action.first_execution_run_id),
                    result_type=schedule_pb2.WatchWorkflowResult, start_to_close_timeout=timedelta(days=3650),
                    heartbeat_timeout=timedelta(seconds=60), retry_policy=_RETRY,
                )  # fmt: skip
            finally:
                self.watching.discard(action.workflow_id)
            self.inbox.append(lambda now: self._closed(action.workflow_id, result, now))
        elif isinstance(action, RefreshWorkflows):
            results = await workflow.execute_activity(
                "SchedulerRefreshWorkflows", schedule_pb2.WorkflowExecutions(executions=list(action.executions)),
                result_type=schedule_pb2.WatchWorkflowResults, start_to_close_timeout=_RPC, retry_policy=_RETRY,
            )  # fmt: skip

            def refreshed(now: datetime) -> list[Action]:
                out: list[Action] = []
                for r in results.results:
                    out += self._closed(r.workflow_id, r, now)
                return out + self.core.refreshed(now)

            self.inbox.append(refreshed)
        elif isinstance(action, CancelWorkflow | TerminateWorkflow):
            name = "SchedulerCancelWorkflow" if isinstance(action, CancelWorkflow) else "SchedulerTerminateWorkflow"
            try:
                await workflow.execute_activity(
                    name, action.request(self.core.namespace), start_to_close_timeout=_RPC,
                    schedule_to_close_timeout=timedelta(minutes=5), retry_policy=_RETRY,
                )  # fmt: skip
            except ActivityError:
                pass  # the core asks again on a later pass if the run is still there

    def _closed(self, workflow_id: str, result: schedule_pb2.WatchWorkflowResult, now: datetime) -> list[Action]:
        status: Any = result.status
        outcome = result.result if result.HasField("result") else None
        failure = result.failure if result.HasField("failure") else None
        return self.core.closed(workflow_id, int(status), outcome, failure, now)

    # ------------------------------------------------------------ what visibility shows

    def _publish(self, now: datetime) -> None:
        """ListSchedules reads the schedule from this workflow's memo; TemporalSchedulePaused is queryable."""
        info = self.core.list_info(now).SerializeToString()
        if info != self.published_info:
            workflow.upsert_memo({SCHEDULER_MEMO_INFO: info})
            self.published_info = info
        if self.core.paused != self.published_paused:
            workflow.upsert_search_attributes({"TemporalSchedulePaused": [self.core.paused]})
            self.published_paused = self.core.paused

    def _replace_search_attributes(self, attributes: common.SearchAttributes) -> None:
        """UpdateSchedule's search attributes replace the schedule's own: those not given are removed (the
        server-maintained ones stay)."""
        import json

        values: dict[str, Any] = {}
        for name, payload in attributes.indexed_fields.items():
            try:
                values[name] = json.loads(payload.data) if payload.data else None
            except ValueError:
                continue
        current = set(workflow.info().search_attributes) - _SERVER_ATTRIBUTES
        for name in current - set(values):
            values[name] = None
        if values:
            workflow.upsert_search_attributes(values)

