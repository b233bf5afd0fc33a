"""Workflows for tests/e2e/test_reset.py."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow


@workflow.defn
class CollectSignals:
    """Completes with the signals received once it has ``want`` of them."""

    def __init__(self) -> None:
        self.got: list[str] = []

    @workflow.signal
    def add(self, value: str) -> None:
        self.got.append(value)

    @workflow.run
    async def run(self, want: int) -> list[str]:
        await workflow.wait_condition(lambda: len(self.got) >= want)
        return self.got


@workflow.defn
class ActivityAndTimer:
    """Schedules an activity and a timer, then waits for a signal before it awaits both: a reset to the workflow
    task the signal caused finds both still open at the cut."""

    def __init__(self) -> None:
        self.go = False

    @workflow.signal
    def proceed(self) -> None:
        self.go = True

    @workflow.run
    async def run(self, timer_seconds: float) -> list[str]:
        act = workflow.start_activity("held", start_to_close_timeout=timedelta(seconds=60))
        timer = asyncio.ensure_future(workflow.sleep(timer_seconds))
        await workflow.wait_condition(lambda: self.go)
        result = await act
        await timer
        return [result, "timer fired"]


@workflow.defn
class Tally:
    """Adds what updates and signals bring; completes on the "done" signal."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.done = False

    @workflow.update
    def add(self, item: str) -> int:
        self.items.append(item)
        return len(self.items)

    @workflow.signal
    def note(self, item: str) -> None:
        self.items.append(item)

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.wait_condition(lambda: self.done)
        return self.items


@workflow.defn
class ChildWaits:
    """A child that completes when released by a signal."""

    def __init__(self) -> None:
        self.go = False

    @workflow.signal
    def release(self) -> None:
        self.go = True

    @workflow.run
    async def run(self, name: str) -> str:
        await workflow.wait_condition(lambda: self.go)
        return f"child {name}"


@workflow.defn
class ParentOfChild:
    """Starts ChildWaits and completes with its result. ``slow_first_task`` holds the first workflow task (not on
    replay) so a signal sent meanwhile is buffered: its WorkflowTaskScheduled then lies between the child's
    Initiated and Started events, a cut where the child is initiated but not started."""

    @workflow.signal
    def poke(self) -> None:
        pass

    @workflow.run
    async def run(self, child_id: str, slow_first_task: bool) -> str:
        if slow_first_task and not workflow.unsafe.is_replaying():
            with workflow.unsafe.sandbox_unrestricted():
                import time

                time.sleep(0.8)  # noqa: ASYNC251 - holds the task for the signal; well under the 2 s deadlock detection
        result = await workflow.execute_child_workflow(ChildWaits.run, child_id, id=child_id)
        return f"parent got {result}"


@workflow.defn
class ContinuesOnce:
    """Run 1 takes a signal, then continues as new; run 2 collects ``want`` more signals."""

    def __init__(self) -> None:
        self.got: list[str] = []

    @workflow.signal
    def add(self, value: str) -> None:
        self.got.append(value)

    @workflow.run
    async def run(self, generation: int, want: int) -> list[str]:
        await workflow.wait_condition(lambda: len(self.got) >= (1 if generation == 0 else want))
        if generation == 0:
            workflow.continue_as_new(args=[1, want])
        return self.got


@workflow.defn
class LongUpdate:
    """An update whose handler waits for the "release" signal; the run completes after it."""

    def __init__(self) -> None:
        self.released = False
        self.done = False

    @workflow.update
    async def hold(self, item: str) -> str:
        await workflow.wait_condition(lambda: self.released)
        self.done = True
        return f"held {item}"

    @workflow.signal
    def release(self) -> None:
        self.released = True

    @workflow.signal
    def ping(self) -> None:
        pass

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.done)
        return "done"
