"""Tests that need separate processes: worker crash recovery and import isolation."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid

from durata.worker import Worker

from .conftest import wait_for
from .workflows import ALL_ACTIVITIES, ALL_WORKFLOWS, SlowStepsWorkflow

MAIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_worker_main.py")


async def _completed_activities(handle) -> int:
    hist = await handle.fetch_history()
    return sum(1 for e in hist.events if e.HasField("activity_task_completed_event_attributes"))


async def test_worker_crash_resumes_from_history(client, sdk_server, task_queue):
    proc = subprocess.Popen([sys.executable, MAIN, "worker", sdk_server.target, task_queue],  # noqa: ASYNC220
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 30)  # type: ignore[union-attr]
        assert line.strip() == b"ready"
        handle = await client.start_workflow(SlowStepsWorkflow.run, 6, id=f"crash-{uuid.uuid4()}",
                                             task_queue=task_queue)
        await wait_for(lambda: _at_least(handle, 2), timeout=30)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        assert await _completed_activities(handle) < 6
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    async with Worker(client, task_queue=task_queue, workflows=ALL_WORKFLOWS, activities=ALL_ACTIVITIES):
        result = await asyncio.wait_for(handle.result(), 60)
    assert result == sum(len(f"sync hello, {i}") for i in range(6))


async def _at_least(handle, n: int) -> bool:
    return await _completed_activities(handle) >= n


async def test_sdk_never_imports_official_client_worker_or_bridge(sdk_server, task_queue):
    out = await asyncio.to_thread(subprocess.run, [sys.executable, MAIN, "isolation", sdk_server.target, task_queue],
                                  capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout.strip().splitlines()[-1])
    assert data["result"] == "Hello, Iso! / sync hello, Iso"
    assert data["forbidden"] == []
    assert data["non_api"] == []  # only the generated temporalio.api.* modules are used
