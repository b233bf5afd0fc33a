"""Workflows for tests/e2e/test_reset.py."""

from __future__ import annotations

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
