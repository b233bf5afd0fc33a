"""Workflows and activities shared by the SDK tests (also imported by worker subprocesses)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import timedelta

from durata import activity, workflow
from durata.common import RetryPolicy, SearchAttributeKey
from durata.exceptions import ApplicationError


@dataclasses.dataclass
class Greeting:
    greeting: str
    name: str


@activity.defn
async def compose(g: Greeting) -> str:
    return f"{g.greeting}, {g.name}!"


@activity.defn
def compose_sync(name: str) -> str:
    return f"sync hello, {name}"


@workflow.defn
class HelloWorkflow:
    @workflow.run
    async def run(self, name: str) -> str:
        a = await workflow.execute_activity(compose, Greeting("Hello", name), start_to_close_timeout=timedelta(seconds=10))
        b = await workflow.execute_activity(compose_sync, name, start_to_close_timeout=timedelta(seconds=10))
        return f"{a} / {b}"


_attempts: dict[str, int] = {}


@activity.defn
async def flaky(key: str) -> int:
    n = activity.info().attempt
    if n < 3:
        raise RuntimeError(f"attempt {n} fails")
    return n


@activity.defn
async def always_fails(kind: str) -> None:
    raise ApplicationError("boom", {"k": 1}, type=kind, non_retryable=kind == "Fatal")


@workflow.defn
class RetryWorkflow:
    @workflow.run
    async def run(self) -> dict:
        n = await workflow.execute_activity(flaky, "x", start_to_close_timeout=timedelta(seconds=5),
                                            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100)))
        try:
            await workflow.execute_activity(always_fails, "Fatal", start_to_close_timeout=timedelta(seconds=5))
        except Exception as err:  # ActivityError wrapping ApplicationError
            cause = err.__cause__
            return {"attempts": n, "err": type(err).__name__, "cause_type": getattr(cause, "type", None),
                    "details": list(getattr(cause, "details", []))}
        return {"attempts": n}


@activity.defn
async def heartbeater(n: int) -> str:
    for i in range(n):
        activity.heartbeat(i)
        await asyncio.sleep(0.1)
    return "finished"


@activity.defn
def sync_heartbeater(n: int) -> str:
    for i in range(n):
        activity.heartbeat(i)
        time.sleep(0.1)
    return "finished"


@workflow.defn
class CancelActivityWorkflow:
    @workflow.run
    async def run(self, sync: bool) -> str:
        handle = workflow.start_activity(
            sync_heartbeater if sync else heartbeater, 1000, start_to_close_timeout=timedelta(seconds=60),
            heartbeat_timeout=timedelta(seconds=2), cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED)
        await workflow.sleep(1)
        handle.cancel()
        try:
            await handle
        except Exception as err:
            return f"{type(err).__name__}:{type(err.__cause__).__name__}"
        return "not cancelled"


@workflow.defn
class TimerWorkflow:
    @workflow.run
    async def run(self) -> list[str]:
        out = []
        t0 = workflow.now()
        await workflow.sleep(timedelta(seconds=1))
        out.append(f"slept {(workflow.now() - t0).total_seconds() >= 1}")
        try:
            async with asyncio.timeout(0.5):
                await asyncio.sleep(100)
        except TimeoutError:
            out.append("timeout")
        try:
            await workflow.wait_condition(lambda: False, timeout=0.3)
        except TimeoutError:
            out.append("cond timeout")
        return out


@workflow.defn
class SignalQueryUpdateWorkflow:
    def __init__(self) -> None:
        self.items: list[str] = []
        self.done = False

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.wait_condition(lambda: self.done)
        return self.items

    @workflow.signal
    async def add(self, item: str) -> None:
        self.items.append(item)

    @workflow.signal(name="finish")
    def finish(self) -> None:
        self.done = True

    @workflow.query
    def get_items(self) -> list[str]:
        return self.items

    @workflow.update
    async def add_and_count(self, item: str) -> int:
        await workflow.sleep(0.1)
        self.items.append(item)
        return len(self.items)

    @add_and_count.validator
    def validate_add(self, item: str) -> None:
        if not item:
            raise ValueError("empty item rejected")


@workflow.defn
class ChildWorkflow:
    @workflow.run
    async def run(self, x: int) -> int:
        if x < 0:
            raise ApplicationError("negative", type="Negative", non_retryable=True)
        return x * 2


@workflow.defn
class ParentWorkflow:
    @workflow.run
    async def run(self, x: int) -> list:
        r = await workflow.execute_child_workflow(ChildWorkflow.run, x, id=f"{workflow.info().workflow_id}-child")
        try:
            await workflow.execute_child_workflow(ChildWorkflow.run, -1, id=f"{workflow.info().workflow_id}-child2")
        except Exception as err:
            return [r, type(err).__name__, getattr(err.__cause__, "type", None)]
        return [r]


@workflow.defn
class LoopingWorkflow:
    @workflow.run
    async def run(self, n: int, total: int) -> int:
        if n == 0:
            return total
        await workflow.sleep(0.05)
        workflow.continue_as_new(args=[n - 1, total + n])


@workflow.defn
class PatchedWorkflow:
    @workflow.run
    async def run(self) -> str:
        if workflow.patched("my-change"):
            return "new"
        return "old"


@workflow.defn
class DeterministicWorkflow:
    @workflow.run
    async def run(self) -> list:
        r = workflow.random().randint(0, 1_000_000)
        u = str(workflow.uuid4())
        await workflow.sleep(0.1)
        r2 = workflow.random().randint(0, 1_000_000)
        return [r, u, r2, workflow.now().isoformat()]


@workflow.defn
class WaitForeverWorkflow:
    @workflow.run
    async def run(self) -> str:
        try:
            await workflow.execute_activity(heartbeater, 10_000, start_to_close_timeout=timedelta(seconds=100),
                                            heartbeat_timeout=timedelta(seconds=2))
        except Exception:
            await workflow.sleep(0.01)  # cleanup work is still allowed while cancelling
            raise
        return "done"


@workflow.defn
class SlowStepsWorkflow:
    """Used by the crash test: several sequential timers and activities."""

    @workflow.run
    async def run(self, steps: int) -> int:
        total = 0
        for i in range(steps):
            await workflow.sleep(0.5)
            total += len(await workflow.execute_activity(compose_sync, str(i), start_to_close_timeout=timedelta(seconds=10)))
        return total


ALL_WORKFLOWS = [HelloWorkflow, RetryWorkflow, CancelActivityWorkflow, TimerWorkflow, SignalQueryUpdateWorkflow,
                 ChildWorkflow, ParentWorkflow, LoopingWorkflow, PatchedWorkflow, DeterministicWorkflow,
                 WaitForeverWorkflow, SlowStepsWorkflow]
ALL_ACTIVITIES = [compose, compose_sync, flaky, always_fails, heartbeater, sync_heartbeater]


@workflow.defn
class MemoSearchAttrWorkflow:
    @workflow.run
    async def run(self) -> dict:
        before = workflow.memo_value("owner", "none")
        workflow.upsert_memo({"step": 2})
        workflow.upsert_search_attributes({"CustomKeywordField": ["durata"]})
        workflow.upsert_search_attributes([SearchAttributeKey.for_int("CustomIntField").value_set(7)])
        await workflow.sleep(0.05)
        typed = workflow.info().typed_search_attributes
        return {"owner": before, "memo": dict(workflow.memo()), "sa": dict(workflow.info().search_attributes),
                "typed_int": typed.get(SearchAttributeKey.for_int("CustomIntField"))}


@workflow.defn
class CronWorkflow:
    @workflow.run
    async def run(self) -> int:
        last = workflow.get_last_completion_result(int) if workflow.has_last_completion_result() else 0
        return (last or 0) + 1


@workflow.defn
class RetryingWorkflow:
    @workflow.run
    async def run(self) -> int:
        if workflow.info().attempt < 3:
            raise ApplicationError(f"attempt {workflow.info().attempt}")
        return workflow.info().attempt


@workflow.defn
class ExternalSignalWorkflow:
    @workflow.run
    async def run(self, target_id: str) -> str:
        await workflow.get_external_workflow_handle(target_id).signal("add", "from-external")
        await workflow.get_external_workflow_handle(target_id).signal("finish")
        return "sent"


@workflow.defn
class LoggingWorkflow:
    @workflow.run
    async def run(self) -> str:
        workflow.logger.info("before-sleep")
        await workflow.sleep(0.1)
        workflow.logger.info("after-sleep")
        return "ok"


ALL_WORKFLOWS += [MemoSearchAttrWorkflow, CronWorkflow, RetryingWorkflow, ExternalSignalWorkflow, LoggingWorkflow]


@activity.defn
async def local_flaky(x: int) -> int:
    if activity.info().attempt < 2:
        raise RuntimeError("first local attempt fails")
    assert activity.info().is_local
    return x + 1


@workflow.defn
class LocalActivityWorkflow:
    @workflow.run
    async def run(self, x: int) -> list:
        a = await workflow.execute_local_activity(local_flaky, x, start_to_close_timeout=timedelta(seconds=5),
                                                  retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=50)))
        b = await workflow.execute_local_activity(compose_sync, "local", start_to_close_timeout=timedelta(seconds=5))
        await workflow.sleep(0.05)
        try:
            await workflow.execute_local_activity(always_fails, "Fatal", start_to_close_timeout=timedelta(seconds=5))
        except Exception as err:
            return [a, b, type(err).__name__, getattr(err.__cause__, "type", None)]
        return [a, b]


ALL_WORKFLOWS.append(LocalActivityWorkflow)
ALL_ACTIVITIES.append(local_flaky)


@workflow.defn
class CancelChildWorkflow:
    @workflow.run
    async def run(self) -> str:
        child = await workflow.start_child_workflow(SignalQueryUpdateWorkflow.run,
                                                    id=f"{workflow.info().workflow_id}-child")
        await workflow.sleep(0.2)
        child.cancel()
        try:
            await child
        except Exception as err:
            return f"{type(err).__name__}:{type(err.__cause__).__name__}"
        return "child not cancelled"


ALL_WORKFLOWS.append(CancelChildWorkflow)


@workflow.defn
class CancelUnstartedActivityWorkflow:
    @workflow.run
    async def run(self) -> str:
        handle = workflow.start_activity(compose_sync, "never", task_queue="no-worker-polls-this",
                                         start_to_close_timeout=timedelta(seconds=5))
        await workflow.sleep(0.1)
        handle.cancel()
        await asyncio.sleep(0)  # let the cancel request be emitted first
        await workflow.sleep(0.1)  # then a timer in the same completion
        try:
            await handle
        except Exception as err:
            return f"{type(err).__name__}:{type(err.__cause__).__name__}"
        return "not cancelled"


ALL_WORKFLOWS.append(CancelUnstartedActivityWorkflow)


@activity.defn
async def resumes_from_heartbeat() -> list:
    info = activity.info()
    start = info.heartbeat_details[0] if info.heartbeat_details else 0
    activity.heartbeat(start + 5)
    if info.attempt == 1:
        await asyncio.sleep(0.2)  # let the heartbeat reach the server before failing
        raise RuntimeError("fail after progress")
    return [info.attempt, start]


@workflow.defn
class HeartbeatResumeWorkflow:
    @workflow.run
    async def run(self) -> list:
        return await workflow.execute_activity(resumes_from_heartbeat, start_to_close_timeout=timedelta(seconds=10),
                                               retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100)))


ALL_WORKFLOWS.append(HeartbeatResumeWorkflow)
ALL_ACTIVITIES.append(resumes_from_heartbeat)


class Inventory:
    """Activities as methods of an object holding dependencies."""

    def __init__(self, stock: int) -> None:
        self.stock = stock

    @activity.defn
    async def reserve(self, n: int) -> int:
        self.stock -= n
        return self.stock

    @activity.defn(name="inventory_peek")
    def peek(self) -> int:
        return self.stock


@workflow.defn
class InventoryWorkflow:
    @workflow.run
    async def run(self, n: int) -> list:
        left = await workflow.execute_activity_method(Inventory.reserve, n, start_to_close_timeout=timedelta(seconds=5))
        peek = await workflow.execute_activity("inventory_peek", start_to_close_timeout=timedelta(seconds=5))
        return [left, peek]


ALL_WORKFLOWS.append(InventoryWorkflow)


@workflow.defn
class InitWorkflow:
    @workflow.init
    def __init__(self, name: str) -> None:
        self.greeting = f"init saw {name}"

    @workflow.run
    async def run(self, name: str) -> str:
        return f"{self.greeting}; run saw {name}"


ALL_WORKFLOWS.append(InitWorkflow)
