"""The ``temporal`` CLI (Go SDK inside) against History features: updates and continue-as-new chains."""

from __future__ import annotations

import pytest
from temporalio.client import Client

from e2e.deployments import Deployment
from e2e.helpers import wid
from e2e.test_history_features import UpdateWorkflow, worker
from e2e.test_temporal_cli import parse_json, temporal

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


@pytest.fixture
async def cli_client(dev_deployment: Deployment) -> Client:
    return await Client.connect(dev_deployment.address, namespace="default")


async def test_cli_update_and_continue_as_new(dev_deployment: Deployment, cli_client: Client, task_queue: str) -> None:
    dep = dev_deployment
    async with worker(cli_client, task_queue):
        handle = await cli_client.start_workflow(UpdateWorkflow.run, id=wid("cli-upd"), task_queue=task_queue)
        out = await temporal(
            dep, "workflow", "update", "execute", "--workflow-id", handle.id, "--name", "add", "--input", '"c"',
            "--update-id", "cli-1",
        )
        assert "1" in out
        again = await temporal(
            dep, "workflow", "update", "result", "--workflow-id", handle.id, "--update-id", "cli-1",
        )
        assert "1" in again
        await handle.signal(UpdateWorkflow.finish)
        assert await handle.result() == ["c"]

        result = parse_json(await temporal(
            dep, "workflow", "execute", "--type", "CountdownWorkflow", "--task-queue", task_queue,
            "--workflow-id", wid("cli-can"), "--input", "2", "--input", "0", "--execution-timeout", "60s", "-o", "json",
        ))
    assert result["result"] == "runs-done total=3 run=False", result
