"""A benchmark SDK worker as its own process, so the load generator and the workers do not share one GIL.

``python -m bench.worker --address HOST:PORT --task-queue Q`` runs every benchmark workflow and activity until
SIGTERM/SIGINT, printing ``READY`` once the worker is polling. The unsandboxed runner is used because the
sandbox's per-task cost belongs to the SDK, not to the server being measured.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from bench.workloads import ACTIVITIES, WORKFLOWS


async def run_worker(address: str, namespace: str, task_queue: str, pollers: int) -> None:
    client = await Client.connect(address, namespace=namespace)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=ACTIVITIES,
        workflow_runner=UnsandboxedWorkflowRunner(),
        max_concurrent_workflow_tasks=200,
        max_concurrent_activities=200,
        max_cached_workflows=2000,
        max_concurrent_workflow_task_polls=pollers,
        max_concurrent_activity_task_polls=pollers,
        graceful_shutdown_timeout=timedelta(seconds=1),
    )
    async with worker:
        print("READY", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.worker")
    parser.add_argument("--address", required=True)
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--task-queue", required=True)
    parser.add_argument("--pollers", type=int, default=8, help="concurrent polls per task type")
    args = parser.parse_args(argv)
    asyncio.run(run_worker(args.address, args.namespace, args.task_queue, args.pollers))
    sys.exit(0)


if __name__ == "__main__":
    main()
