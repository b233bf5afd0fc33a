"""The official ``temporal`` CLI (Go SDK inside) against ``durata server start-dev``."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from e2e.deployments import Deployment
from e2e.harness import REPO_ROOT
from e2e.helpers import running_worker, wait_until, wid

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

TEMPORAL = str(Path(REPO_ROOT) / ".venv" / "bin" / "temporal")


async def temporal(dep: Deployment, *args: str, namespace: str = "default", check: bool = True) -> str:
    """Run the CLI without blocking the event loop (the worker shares it). Returns stdout."""
    env = {**os.environ, "HOME": str(dep.workdir)}  # no user CLI config file can interfere
    proc = await asyncio.create_subprocess_exec(
        TEMPORAL, *args, "--address", dep.address, "--namespace", namespace, "--color", "never",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    if check:
        assert proc.returncode == 0, f"temporal {' '.join(args)} exited {proc.returncode}:\n{out.decode()}\n{err.decode()}"
    return out.decode()


def parse_json(text: str) -> Any:
    """``-o json`` prints one document; some commands print one per line (jsonl-like)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture
async def cli_client(dev_deployment: Deployment) -> Client:
    return await Client.connect(dev_deployment.address, namespace="default")


async def test_workflow_lifecycle_with_cli(dev_deployment: Deployment, cli_client: Client, task_queue: str) -> None:
    dep = dev_deployment
    workflow_id = wid("cli")
    async with running_worker(cli_client, task_queue):
        started = parse_json(await temporal(
            dep, "workflow", "start", "--type", "SignalQueryWorkflow", "--task-queue", task_queue,
            "--workflow-id", workflow_id, "--execution-timeout", "60s", "-o", "json",
        ))
        assert started["workflowId"] == workflow_id and started["runId"]

        desc = parse_json(await temporal(dep, "workflow", "describe", "-w", workflow_id, "-o", "json"))
        info = desc["workflowExecutionInfo"]
        assert info["execution"]["workflowId"] == workflow_id
        assert info["status"] in ("WORKFLOW_EXECUTION_STATUS_RUNNING", "Running")
        assert info["type"]["name"] == "SignalQueryWorkflow"

        await temporal(dep, "workflow", "signal", "-w", workflow_id, "--name", "add", "--input", '"from-cli"')

        async def query_sees_signal() -> bool:
            out = await temporal(dep, "workflow", "query", "-w", workflow_id, "--name", "get_items", "-o", "json")
            return "from-cli" in out

        await wait_until(query_sees_signal, 30, "query result with the CLI's signal")

        shown = parse_json(await temporal(dep, "workflow", "show", "-w", workflow_id, "-o", "json"))
        events = shown["events"] if isinstance(shown, dict) else shown
        ids = [int(e["eventId"]) for e in events]
        assert ids == list(range(1, len(ids) + 1))
        assert events[0]["eventType"] in ("EVENT_TYPE_WORKFLOW_EXECUTION_STARTED", "WorkflowExecutionStarted")
        assert any("SIGNALED" in e["eventType"].upper() for e in events)

        # Cancel: the workflow's wait raises CancelledError, so the run ends as Canceled.
        await temporal(dep, "workflow", "cancel", "-w", workflow_id)

        async def status_of(wf_id: str) -> str:
            desc = parse_json(await temporal(dep, "workflow", "describe", "-w", wf_id, "-o", "json"))
            return str(desc["workflowExecutionInfo"]["status"])

        async def canceled() -> bool:
            return "CANCELED" in (await status_of(workflow_id)).upper()

        await wait_until(canceled, 30, "the CLI-cancelled workflow to close as Canceled")
        shown = await temporal(dep, "workflow", "show", "-w", workflow_id, "-o", "json")
        assert "EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED" in shown

        # Terminate a second one.
        other = wid("cli-term")
        await temporal(dep, "workflow", "start", "--type", "SignalQueryWorkflow", "--task-queue", task_queue,
                       "--workflow-id", other)
        await temporal(dep, "workflow", "terminate", "-w", other, "--reason", "cli test")
        assert "TERMINATED" in (await status_of(other)).upper()
        shown = await temporal(dep, "workflow", "show", "-w", other, "-o", "json")
        assert "EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED" in shown and "cli test" in shown


async def test_namespace_list_and_describe(dev_deployment: Deployment) -> None:
    listed = parse_json(await temporal(dev_deployment, "operator", "namespace", "list", "-o", "json"))
    items = listed if isinstance(listed, list) else listed.get("namespaces", [listed])
    names = [ns["namespaceInfo"]["name"] for ns in items]
    assert "default" in names

    desc = parse_json(await temporal(dev_deployment, "operator", "namespace", "describe", "-o", "json"))
    assert desc["namespaceInfo"]["name"] == "default"
    assert desc["namespaceInfo"]["state"] in ("NAMESPACE_STATE_REGISTERED", "Registered")
    assert desc["namespaceInfo"]["id"]


async def test_cli_error_for_unknown_workflow(dev_deployment: Deployment) -> None:
    env = {**os.environ, "HOME": str(dev_deployment.workdir)}
    proc = await asyncio.create_subprocess_exec(
        TEMPORAL, "workflow", "describe", "-w", "no-such-workflow-" + wid("x"), "--address", dev_deployment.address,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode != 0
    assert "not found" in (out + err).decode().lower()
