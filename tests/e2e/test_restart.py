"""Crash and restart: work in flight when a server process is SIGKILLed completes exactly once afterwards."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle

from e2e import workflows as wf
from e2e.conftest import KINDS, make_deployment
from e2e.deployments import Deployment
from e2e.helpers import assert_dense, running_worker, wait_for_event, wait_until, wid

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


async def crash_and_recover(dep: Deployment, task_queue: str, roles: list[str] | None) -> None:
    """Timers and long activities in flight, SIGKILL ``roles`` (None = every process), restart them; every
    workflow then completes exactly once with a dense history."""
    client = await Client.connect(dep.address, namespace="default")
    async with running_worker(client, task_queue):
        timers: list[WorkflowHandle[Any, Any]] = [
            await client.start_workflow(wf.TimerWorkflow.run, 4.0, id=wid("crash-timer"), task_queue=task_queue,
                                        execution_timeout=timedelta(seconds=120))
            for _ in range(3)
        ]
        activities: list[WorkflowHandle[Any, Any]] = [
            await client.start_workflow(wf.LongActivityWorkflow.run, 3.0, id=wid("crash-act"),
                                        task_queue=task_queue, execution_timeout=timedelta(seconds=120))
            for _ in range(3)
        ]
        # Everything is in flight: timers started, activities running on the worker.
        for handle in timers:
            await wait_for_event(handle, EventType.EVENT_TYPE_TIMER_STARTED)
        for handle in activities:
            await wait_for_event(handle, EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED)

        # Blocking process control runs in a thread so the worker's activities keep running meanwhile.
        await asyncio.to_thread(dep.kill, roles)
        await asyncio.to_thread(dep.restart, roles)

        for handle in timers:
            assert (await handle.result()).startswith("slept")
        for handle in activities:
            assert await handle.result() == "slept 3.0"

    for handle in [*timers, *activities]:
        history = await handle.fetch_history()
        types = assert_dense(history)
        assert types.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED) == 1
        assert types[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
        assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED

        async def one_run(workflow_id: str = handle.id) -> bool:
            runs = [r async for r in client.list_workflows(f"WorkflowId = '{workflow_id}'")]
            return len(runs) == 1 and runs[0].status == WorkflowExecutionStatus.COMPLETED

        await wait_until(one_run, 30, f"exactly one completed run of {handle.id} in visibility")


async def test_sigkill_and_restart_completes_everything_once(fresh_deployment: Deployment, task_queue: str) -> None:
    # start-dev: the whole single process; cluster: the role that owns the workflow state.
    await crash_and_recover(fresh_deployment, task_queue, None if fresh_deployment.kind == "dev" else ["history"])


async def test_sigkill_whole_cluster_and_restart(fresh_cluster: Deployment, task_queue: str) -> None:
    await crash_and_recover(fresh_cluster, task_queue, None)


@pytest.fixture(params=KINDS)
def drop_polls_deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deployment]:
    """Namespaces without worker_poll_complete_on_shutdown: with it, the SDK worker waits for its in-flight polls
    when it shuts down, and against a server that is gone they only retry (the SDK's behaviour on Temporal too)."""
    yield from make_deployment(
        request.param, tmp_path / "durata", ["--set", "frontend.worker_poll_complete_on_shutdown=false"]
    )


async def test_graceful_sigterm_exits_cleanly(drop_polls_deployment: Deployment, task_queue: str) -> None:
    """SIGTERM with a worker long-polling: every process ends its polls, drains and exits 0 well within the RPC
    grace period (parked polls are answered, not waited out). The worker outlives the server here, so it drops
    its polls on shutdown (see the fixture)."""
    dep = drop_polls_deployment
    client = await Client.connect(dep.address, namespace="default")
    async with running_worker(client, task_queue):
        await client.execute_workflow(wf.HelloWorkflow.run, "drain", id=wid("drain"), task_queue=task_queue,
                                      execution_timeout=timedelta(seconds=60))

        def stop_each() -> dict[str, tuple[int | None, float]]:
            out = {}
            for name in reversed(list(dep.procs)):
                began = time.monotonic()
                code = dep.procs[name].terminate()
                out[name] = (code, time.monotonic() - began)
            return out

        results = await asyncio.to_thread(stop_each)
    assert all(code == 0 for code, _ in results.values()), f"{results}\n{dep.log_tails()}"
    assert all(seconds < 4.0 for _, seconds in results.values()), results
