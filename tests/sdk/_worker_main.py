"""Subprocess entry point: run a Durata worker (crash test) or a client+worker round trip (import isolation).

Usage: python _worker_main.py worker TARGET TASK_QUEUE
       python _worker_main.py isolation TARGET TASK_QUEUE
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from datetime import timedelta

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "..", "..", "sdk")]

from durata.client import Client  # noqa: E402
from durata.worker import Worker  # noqa: E402
from workflows import ALL_ACTIVITIES, ALL_WORKFLOWS, HelloWorkflow  # noqa: E402


async def run_worker(target: str, tq: str) -> None:
    client = await Client.connect(target)
    worker = Worker(client, task_queue=tq, workflows=ALL_WORKFLOWS, activities=ALL_ACTIVITIES,
                    sticky_queue_schedule_to_start_timeout=timedelta(seconds=1))
    print("ready", flush=True)
    await worker.run()


async def isolation(target: str, tq: str) -> None:
    client = await Client.connect(target)
    async with Worker(client, task_queue=tq, workflows=ALL_WORKFLOWS, activities=ALL_ACTIVITIES):
        result = await client.execute_workflow(HelloWorkflow.run, "Iso", id=f"iso-{uuid.uuid4()}", task_queue=tq)
    forbidden = sorted(m for m in sys.modules
                       if m.split(".")[:2] in (["temporalio", "client"], ["temporalio", "worker"], ["temporalio", "bridge"]))
    non_api = sorted(m for m in sys.modules if m.startswith("temporalio.") and m.split(".")[1] != "api")
    print(json.dumps({"result": result, "forbidden": forbidden, "non_api": non_api}), flush=True)


if __name__ == "__main__":
    mode, target, tq = sys.argv[1:4]
    asyncio.run(run_worker(target, tq) if mode == "worker" else isolation(target, tq))
