"""A fake scheduler wrapper for the core's tests: executes the actions against simulated runs, with an injected
clock, and reports the outcomes back the way the scheduler workflow does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf import duration_pb2
from temporalio.api.common.v1 import message_pb2 as common
from temporalio.api.enums.v1 import workflow_pb2 as wf_enums
from temporalio.api.failure.v1 import message_pb2 as failure_pb
from temporalio.api.schedule.v1 import message_pb2 as sched
from temporalio.api.taskqueue.v1 import message_pb2 as tq
from temporalio.api.workflow.v1 import message_pb2 as workflow_pb

from services.internal_worker.schedules.actions import (
    CancelWorkflow,
    RefreshWorkflows,
    StartWorkflow,
    TerminateWorkflow,
    WatchWorkflow,
)
from services.internal_worker.schedules.buffer import (
    ALLOW_ALL,
    BUFFER_ALL,
    BUFFER_ONE,
    CANCEL_OTHER,
    SKIP,
    TERMINATE_OTHER,
    UNSPECIFIED,
)
from services.internal_worker.schedules.scheduler import Scheduler

__all__ = ["ALLOW_ALL", "BUFFER_ALL", "BUFFER_ONE", "CANCEL_OTHER", "SKIP", "TERMINATE_OTHER", "UNSPECIFIED"]

WS = wf_enums.WorkflowExecutionStatus
T0 = datetime(2024, 1, 1, tzinfo=UTC)
ALL_POLICIES = [UNSPECIFIED, SKIP, BUFFER_ONE, BUFFER_ALL, CANCEL_OTHER, TERMINATE_OTHER, ALLOW_ALL]


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def dur(seconds: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromTimedelta(timedelta(seconds=seconds))
    return d


def every(seconds: int, **fields: Any) -> sched.ScheduleSpec:
    return sched.ScheduleSpec(interval=[sched.IntervalSpec(interval=dur(seconds))], **fields)


def make_schedule(spec: sched.ScheduleSpec | None = None, policy: int = UNSPECIFIED, **policies: Any) -> sched.Schedule:
    return sched.Schedule(
        spec=spec if spec is not None else every(60),
        action=sched.ScheduleAction(start_workflow=workflow_pb.NewWorkflowExecutionInfo(
            workflow_id="wf", workflow_type=common.WorkflowType(name="Job"), task_queue=tq.TaskQueue(name="q"),
            search_attributes=common.SearchAttributes(indexed_fields={"Custom": common.Payload(data=b'"x"')}),
        )),
        policies=sched.SchedulePolicies(overlap_policy=policy, **policies),  # type: ignore[arg-type]
    )  # fmt: skip


def new_scheduler(schedule: sched.Schedule | None = None, now: datetime = T0) -> Scheduler:
    return Scheduler("ns", "ns-id", "sid", schedule or make_schedule(), None, None, now)


class World:
    """A fake wrapper: executes the core's actions against simulated runs and reports back."""

    def __init__(self, scheduler: Scheduler, auto_stop: bool = True) -> None:
        self.s = scheduler
        self.now = T0
        self.auto_stop = auto_stop  # a cancel/terminate closes the run at once
        self.runs: dict[str, dict[str, Any]] = {}  # workflow id -> latest run
        self.starts: list[StartWorkflow] = []
        self.cancels: list[CancelWorkflow] = []
        self.terminates: list[TerminateWorkflow] = []
        self.refreshes = 0
        self.watched: set[str] = set()
        self.fail_next_start: str | None = None
        self.succeeded: list[str] = []  # request ids of the starts that created a run
        self.n = 0

    def run(self, actions: list[Any]) -> None:
        queue = list(actions)
        while queue:
            a = queue.pop(0)
            if isinstance(a, StartWorkflow):
                self.starts.append(a)
                existing = self.runs.get(a.workflow_id)
                rejected = existing is not None and (
                    existing["status"] == WS.WORKFLOW_EXECUTION_STATUS_RUNNING
                    or a.request.workflow_id_reuse_policy == wf_enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE
                )
                if self.fail_next_start or rejected:
                    self.fail_next_start = None
                    queue.extend(self.s.start_failed(a.request_id, "already started", self.now))
                    continue
                self.n += 1
                run_id = f"run-{self.n}"
                self.runs[a.workflow_id] = {"run_id": run_id, "status": WS.WORKFLOW_EXECUTION_STATUS_RUNNING}
                self.succeeded.append(a.request_id)
                queue.extend(self.s.started(a.request_id, run_id, self.now))
            elif isinstance(a, WatchWorkflow):
                self.watched.add(a.workflow_id)
            elif isinstance(a, RefreshWorkflows):
                self.refreshes += 1
                for ex in a.executions:
                    r = self.runs[ex.workflow_id]
                    if r["status"] != WS.WORKFLOW_EXECUTION_STATUS_RUNNING:
                        queue.extend(self.s.closed(ex.workflow_id, r["status"], r.get("result"), r.get("failure"),
                                                   self.now))  # fmt: skip
                queue.extend(self.s.refreshed(self.now))
            elif isinstance(a, CancelWorkflow):
                self.cancels.append(a)
                if self.auto_stop:
                    queue.extend(self.close(a.workflow_id, WS.WORKFLOW_EXECUTION_STATUS_CANCELED, notify=False))
            elif isinstance(a, TerminateWorkflow):
                self.terminates.append(a)
                if self.auto_stop:
                    queue.extend(self.close(a.workflow_id, WS.WORKFLOW_EXECUTION_STATUS_TERMINATED, notify=False))

    def close(self, workflow_id: str, status: int, result: common.Payloads | None = None,
              failure: failure_pb.Failure | None = None, notify: bool = True) -> list[Any]:  # fmt: skip
        r = self.runs[workflow_id]
        if r["status"] != WS.WORKFLOW_EXECUTION_STATUS_RUNNING:
            return []
        r.update(status=status, result=result, failure=failure)
        actions = self.s.closed(workflow_id, status, result, failure, self.now)
        if notify:
            self.run(actions)
            return []
        return actions

    def silent_close(self, workflow_id: str, status: int = WS.WORKFLOW_EXECUTION_STATUS_COMPLETED) -> None:
        """The run closed but its watcher has not reported yet."""
        self.runs[workflow_id]["status"] = status

    def tick(self, seconds: float) -> None:
        self.now = at(seconds)
        self.run(self.s.advance(self.now))

    def patch(self, patch: sched.SchedulePatch) -> None:
        self.run(self.s.patch(patch, self.now))

    def running_ids(self) -> list[str]:
        return [ex.workflow_id for ex in self.s.info.running_workflows]

    def started_ids(self) -> list[str]:
        return [a.workflow_id for a in self.starts if self.runs.get(a.workflow_id, {}).get("run_id")]


def wid(seconds: float) -> str:
    return "wf-" + at(seconds).strftime("%Y-%m-%dT%H:%M:%SZ")


def payloads(text: str) -> common.Payloads:
    return common.Payloads(payloads=[common.Payload(metadata={"encoding": b"json/plain"}, data=text.encode())])
