"""ListTaskQueuePartitions through the official SDK's raw service client and the ``temporal`` CLI."""

from __future__ import annotations

import grpc
import pytest
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import ListTaskQueuePartitionsRequest
from temporalio.client import Client
from temporalio.service import RPCError

from e2e.deployments import Deployment
from e2e.test_temporal_cli import parse_json, temporal

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def _expected_keys(dep: Deployment, name: str) -> list[str]:
    """start-dev serves a queue as one partition; the cluster's router spreads it over its configured four."""
    count = 1 if dep.kind == "dev" else 4
    return [name] + [f"/_sys/{name}/{p}" for p in range(1, count)]


async def test_partitions_and_owners(deployment: Deployment, client: Client) -> None:
    resp = await client.workflow_service.list_task_queue_partitions(
        ListTaskQueuePartitionsRequest(namespace="default", task_queue=TaskQueue(name="parts-q"))
    )
    for parts in (resp.workflow_task_queue_partitions, resp.activity_task_queue_partitions):
        assert [p.key for p in parts] == _expected_keys(deployment, "parts-q")
        assert all(p.owner_host_name for p in parts)


@pytest.mark.parametrize(
    ("request_", "code", "message"),
    [
        (ListTaskQueuePartitionsRequest(namespace="default"), grpc.StatusCode.INVALID_ARGUMENT, "taskQueue is not set"),
        (ListTaskQueuePartitionsRequest(namespace="default", task_queue=TaskQueue()),
         grpc.StatusCode.INVALID_ARGUMENT, "missing task queue name"),
        (ListTaskQueuePartitionsRequest(namespace="default", task_queue=TaskQueue(name="/_sys/x/1")),
         grpc.StatusCode.INVALID_ARGUMENT, "task queue name cannot start with reserved prefix /_sys/"),
        (ListTaskQueuePartitionsRequest(namespace="default", task_queue=TaskQueue(name="q" * 1001)),
         grpc.StatusCode.INVALID_ARGUMENT, "taskQueue length exceeds limit"),
        (ListTaskQueuePartitionsRequest(namespace="no-such-ns", task_queue=TaskQueue(name="q")),
         grpc.StatusCode.NOT_FOUND, "Namespace no-such-ns is not found."),
    ],
)
async def test_bad_requests(
    deployment: Deployment, client: Client, request_: ListTaskQueuePartitionsRequest, code: grpc.StatusCode,
    message: str,
) -> None:
    with pytest.raises(RPCError) as err:
        await client.workflow_service.list_task_queue_partitions(request_)
    assert err.value.status.name == code.name
    assert err.value.message == message


async def test_cli_list_partition(deployment: Deployment) -> None:
    out = parse_json(await temporal(deployment, "task-queue", "list-partition", "--task-queue", "cli-parts", "-o", "json"))
    assert [p["key"] for p in out["workflowTaskQueuePartitions"]] == _expected_keys(deployment, "cli-parts")
    assert [p["key"] for p in out["activityTaskQueuePartitions"]] == _expected_keys(deployment, "cli-parts")
    table = await temporal(deployment, "task-queue", "list-partition", "--task-queue", "cli-parts")
    assert "Workflow Task Queue Partitions" in table and "cli-parts" in table
