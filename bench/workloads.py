"""The benchmark's workflows and, for each workload, how the load generator drives one workflow to its result.

Workflows are deliberately trivial so the figures measure the server: one workflow task, one activity, ten
sequential activities, a 1 s durable timer, a signal/query round trip, a child workflow. Each driver returns
when the workflow's result is back; its latency is start call -> result.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client

ACTIVITY_TIMEOUT = timedelta(seconds=30)


@activity.defn(name="bench_echo")
async def bench_echo(value: int) -> int:
    return value + 1


@workflow.defn(name="BenchNoop")
class NoopWorkflow:
    @workflow.run
    async def run(self) -> str:
        return "ok"


@workflow.defn(name="BenchOneActivity")
class OneActivityWorkflow:
    @workflow.run
    async def run(self) -> int:
        return await workflow.execute_activity(bench_echo, 0, start_to_close_timeout=ACTIVITY_TIMEOUT)


@workflow.defn(name="BenchTenActivities")
class TenActivitiesWorkflow:
    @workflow.run
    async def run(self) -> int:
        value = 0
        for _ in range(10):
            value = await workflow.execute_activity(bench_echo, value, start_to_close_timeout=ACTIVITY_TIMEOUT)
        return value


@workflow.defn(name="BenchTimer")
class TimerWorkflow:
    @workflow.run
    async def run(self) -> str:
        await workflow.sleep(1)
        return "ok"


@workflow.defn(name="BenchSignalQuery")
class SignalQueryWorkflow:
    def __init__(self) -> None:
        self._signalled = False

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self._signalled)
        return "signalled"

    @workflow.signal(name="go")
    def go(self) -> None:
        self._signalled = True

    @workflow.query(name="state")
    def state(self) -> str:
        return "signalled" if self._signalled else "waiting"


@workflow.defn(name="BenchChild")
class ChildWorkflow:
    @workflow.run
    async def run(self) -> str:
        return "child"


@workflow.defn(name="BenchParent")
class ParentWorkflow:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_child_workflow(ChildWorkflow.run, id=f"{workflow.info().workflow_id}-child")


WORKFLOWS: list[type] = [
    NoopWorkflow, OneActivityWorkflow, TenActivitiesWorkflow, TimerWorkflow, SignalQueryWorkflow, ChildWorkflow,
    ParentWorkflow,
]
ACTIVITIES: list[Callable[..., Awaitable[int]]] = [bench_echo]

# One driver call = one workflow from its start to its result.
Driver = Callable[[Client, str, str], Awaitable[None]]


def _simple(run: Callable[..., Awaitable[object]]) -> Driver:
    async def drive(client: Client, workflow_id: str, task_queue: str) -> None:
        await client.execute_workflow(run, id=workflow_id, task_queue=task_queue)

    return drive


async def _signal_query(client: Client, workflow_id: str, task_queue: str) -> None:
    handle = await client.start_workflow(SignalQueryWorkflow.run, id=workflow_id, task_queue=task_queue)
    state = await handle.query(SignalQueryWorkflow.state)
    if state != "waiting":
        raise RuntimeError(f"query answered {state!r}, expected 'waiting'")
    await handle.signal(SignalQueryWorkflow.go)
    if await handle.result() != "signalled":
        raise RuntimeError("signal_query workflow returned a wrong result")


@dataclass(frozen=True)
class Workload:
    name: str
    drive: Driver
    # Workflow executions (runs) one driver call creates: a parent and its child are two.
    executions: int = 1


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload("noop", _simple(NoopWorkflow.run)),
        Workload("one_activity", _simple(OneActivityWorkflow.run)),
        Workload("ten_activities", _simple(TenActivitiesWorkflow.run)),
        Workload("timer", _simple(TimerWorkflow.run)),
        Workload("signal_query", _signal_query),
        Workload("child", _simple(ParentWorkflow.run), executions=2),
    )
}
