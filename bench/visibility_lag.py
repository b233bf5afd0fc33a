"""Visibility lag: how long after an RPC returns a list query sees its effect, per server.

For each server kind a fresh server is started; N workflows are started (no worker: they stay Running) and for
each the time from the start call's return until ``CountWorkflowExecutions WorkflowId = '<id>'`` answers 1 is
measured by polling every 2 ms; then each is terminated and the time until ``ExecutionStatus = 'Terminated'``
matches it is measured the same way. One workflow at a time, so the figure is the pipeline's latency (commit ->
visibility task -> visibility row), not a queue under load.

    .venv/bin/python -m bench.visibility_lag --servers durata-dev,durata-pg,temporal-dev --count 200
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from temporalio.client import Client

from bench.servers import make_server

POLL_S = 0.002
DEADLINE_S = 30.0


async def _until_visible(client: Client, query: str) -> float:
    begin = time.perf_counter()
    while (await client.count_workflows(query)).count != 1:
        if time.perf_counter() - begin > DEADLINE_S:
            raise TimeoutError(f"not visible after {DEADLINE_S} s: {query}")
        await asyncio.sleep(POLL_S)
    return time.perf_counter() - begin


async def measure(address: str, count: int) -> dict[str, list[float]]:
    client = await Client.connect(address)
    queue = f"lag-{uuid.uuid4().hex[:8]}"
    out: dict[str, list[float]] = {"start": [], "close": []}
    for i in range(count):
        wid = f"{queue}-{i}"
        handle = await client.start_workflow("Unworked", id=wid, task_queue=queue)
        out["start"].append(await _until_visible(client, f"WorkflowId = '{wid}'"))
        await handle.terminate("lag")
        out["close"].append(await _until_visible(client, f"WorkflowId = '{wid}' AND ExecutionStatus = 'Terminated'"))
    return out


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.visibility_lag", description=__doc__.splitlines()[0])
    parser.add_argument("--servers", default="durata-dev,durata-pg")
    parser.add_argument("--count", type=int, default=200)
    args = parser.parse_args(argv)
    print(f"{'server':<14} {'effect':<7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'mean ms':>8}")
    with tempfile.TemporaryDirectory(prefix="vislag-") as tmp:
        for kind in args.servers.split(","):
            server = make_server(kind, Path(tmp) / kind)
            try:
                await server.start()
                result = await measure(server.address, args.count)
            finally:
                await server.stop()
            for effect, values in result.items():
                print(
                    f"{kind:<14} {effect:<7} {_pct(values, 0.5):8.1f} {_pct(values, 0.99):8.1f} "
                    f"{max(values) * 1000:8.1f} {statistics.mean(values) * 1000:8.1f}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
