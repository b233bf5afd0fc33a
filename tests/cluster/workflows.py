"""The cluster test's workflow: an activity, a timer, a signal, another activity (module level for the
temporalio sandbox). Activities count their executions so the test can see at-least-once delivery."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from temporalio import activity, workflow

EXECUTIONS: Counter[str] = Counter()


@activity.defn
async def double(n: int) -> int:
    EXECUTIONS[activity.info().workflow_id or ""] += 1
    return 2 * n


@workflow.defn
class Chore:
    def __init__(self) -> None:
        self.pokes: list[int] = []

    @workflow.signal
    def poke(self, value: int) -> None:
        self.pokes.append(value)

    @workflow.run
    async def run(self, n: int) -> int:
        a = await workflow.execute_activity(double, n, start_to_close_timeout=timedelta(seconds=20))
        await workflow.sleep(0.3)
        await workflow.wait_condition(lambda: bool(self.pokes))
        return await workflow.execute_activity(double, a + self.pokes[0], start_to_close_timeout=timedelta(seconds=20))


def expected(n: int, poke: int = 1) -> int:
    return 2 * (2 * n + poke)
