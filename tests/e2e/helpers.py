"""Shared helpers for the e2e tests: a worker with every test workflow, ids, history checks, polling."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle, WorkflowHistory
from temporalio.worker import Worker

from e2e import workflows as wf


@asynccontextmanager
async def running_worker(client: Client, task_queue: str) -> AsyncIterator[Worker]:
    async with Worker(
        client, task_queue=task_queue, workflows=wf.WORKFLOWS, activities=list(wf.ACTIVITIES)  # type: ignore[arg-type]
    ) as worker:
        yield worker


def wid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def assert_dense(history: WorkflowHistory) -> list[int]:  # event types as plain ints
    """Event ids are 1..n and the first event is WorkflowExecutionStarted; returns the event types."""
    ids = [e.event_id for e in history.events]
    assert ids == list(range(1, len(ids) + 1)), f"event ids not dense: {ids}"
    types: list[int] = [int(e.event_type) for e in history.events]
    assert types and types[0] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
    return types


def type_names(types: list[int]) -> list[str]:
    return [EventType.Name(t) for t in types]  # type: ignore[arg-type]


async def wait_until(check: Callable[[], Awaitable[Any]], within: float, what: str, interval: float = 0.1) -> Any:
    """Poll ``check`` until it returns something truthy; exceptions count as "not yet" until the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    last: BaseException | None = None
    while loop.time() < deadline:
        try:
            value = await check()
            if value:
                return value
        except Exception as err:  # noqa: BLE001 - reported if the deadline passes
            last = err
        await asyncio.sleep(interval)
    raise TimeoutError(f"timed out after {within}s waiting for {what}; last error: {last!r}")


async def wait_for_event(handle: WorkflowHandle[Any, Any], event_type: int, within: float = 30.0) -> None:
    async def seen() -> bool:
        history = await handle.fetch_history()
        return any(e.event_type == event_type for e in history.events)

    await wait_until(seen, within, f"event {EventType.Name(event_type)}")  # type: ignore[arg-type]
