"""Workflows for the update-with-start tests."""

from __future__ import annotations

from temporalio import workflow


@workflow.defn
class UwsCounter:
    """Counts increments; finishes once told to."""

    def __init__(self) -> None:
        self.total = 0
        self.done = False

    @workflow.run
    async def run(self, start: int) -> int:
        del start  # updates of the first activation run before this body, so it must not reset state
        await workflow.wait_condition(lambda: self.done)
        return self.total

    @workflow.update
    async def add(self, n: int) -> int:
        self.total += n
        return self.total

    @add.validator
    def check_add(self, n: int) -> None:
        if n < 0:
            raise ValueError("negative")

    @workflow.update
    async def slow(self) -> int:
        await workflow.wait_condition(lambda: self.done)
        return self.total

    @workflow.signal
    def finish(self) -> None:
        self.done = True
