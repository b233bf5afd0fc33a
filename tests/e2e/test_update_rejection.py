"""Speculative workflow tasks with the official SDK: an update rejected by its validator writes nothing, also when
command events of the last workflow task follow its completion (the SDK says it copes with seeing them twice);
accepted updates afterwards, replay of the final history and a workflow task failure on the update's task."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.worker import Replayer, Worker

from e2e.helpers import wait_until, wid

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


@workflow.defn(sandboxed=False)
class Sleeper:
    """Sleeps on a long timer (so TimerStarted follows the first WFT completion) and takes updates."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.done = False

    @workflow.run
    async def run(self) -> list[str]:
        try:
            await workflow.wait_condition(lambda: self.done, timeout=timedelta(hours=1))
        except TimeoutError:
            pass
        return self.items

    @workflow.update
    def add(self, item: str) -> int:
        self.items.append(item)
        return len(self.items)

    @add.validator
    def check_add(self, item: str) -> None:
        if not item:
            raise ValueError("empty items are rejected")

    @workflow.signal
    def finish(self) -> None:
        self.done = True


async def _types(h: WorkflowHandle) -> list[int]:  # type: ignore[type-arg]
    return [e.event_type for e in (await h.fetch_history()).events]


async def test_rejections_write_nothing_and_accepted_updates_still_replay(client: Client, task_queue: str) -> None:
    async with Worker(client, task_queue=task_queue, workflows=[Sleeper]):
        h = await client.start_workflow(Sleeper.run, id=wid("rej"), task_queue=task_queue)
        before = await wait_until(
            lambda: _settled(h), 30, "first WFT completed with its timer"
        )
        assert before[-1] == EventType.EVENT_TYPE_TIMER_STARTED  # an event after WFT completed
        for _ in range(3):
            with pytest.raises(WorkflowUpdateFailedError) as info:
                await h.execute_update(Sleeper.add, "")
            assert "empty items are rejected" in str(info.value.cause)
            assert await _types(h) == before
        assert await h.execute_update(Sleeper.add, "x") == 1
        with pytest.raises(WorkflowUpdateFailedError):
            await h.execute_update(Sleeper.add, "")
        after = await _types(h)
        assert after[: len(before)] == before
        assert after[len(before):] == [
            EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
            EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
            EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED,
        ]
        assert await h.execute_update(Sleeper.add, "y") == 2
        await h.signal(Sleeper.finish)
        assert await h.result() == ["x", "y"]
        history = await h.fetch_history()
    await Replayer(workflows=[Sleeper]).replay_workflow(history)


async def _settled(h: WorkflowHandle) -> list[int] | None:  # type: ignore[type-arg]
    types = await _types(h)
    return types if EventType.EVENT_TYPE_TIMER_STARTED in types else None
