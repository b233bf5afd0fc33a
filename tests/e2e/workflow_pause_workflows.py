"""Workflows for tests/e2e/test_workflow_pause.py."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow


@workflow.defn
class Pausable:
    """Runs the gated activity ``gated``, sleeps on a timer, then waits for the signal "finish"; returns the
    activity's result and every signal it saw."""

    def __init__(self) -> None:
        self.signals: list[str] = []

    @workflow.signal
    def add(self, value: str) -> None:
        self.signals.append(value)

    @workflow.query
    def seen(self) -> list[str]:
        return self.signals

    @workflow.update
    def touch(self, value: str) -> str:
        return f"touched:{value}"

    @workflow.run
    async def run(self, key: str) -> str:
        result: str = await workflow.execute_activity("gated", key, start_to_close_timeout=timedelta(seconds=60))
        await workflow.sleep(timedelta(seconds=1))
        await workflow.wait_condition(lambda: "finish" in self.signals)
        return f"{result}|{','.join(self.signals)}"


@workflow.defn
class WaitForFinish:
    """Waits for the signal "finish" (nothing else to do)."""

    def __init__(self) -> None:
        self.done = False

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.done)
        return "finished"


@workflow.defn
class SleepThenReturn:
    """Sleeps on a 2 s timer, then returns."""

    @workflow.run
    async def run(self) -> str:
        await workflow.sleep(timedelta(seconds=2))
        return "slept"
