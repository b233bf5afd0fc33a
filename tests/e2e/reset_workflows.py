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
