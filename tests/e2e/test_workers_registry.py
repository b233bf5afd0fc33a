"""The worker registry with the official SDK: a real Worker heartbeats, ListWorkers / CountWorkers / DescribeWorker
(and ``temporal worker list|describe``) see it, and ShutdownWorker ends its parked polls at once."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import WorkerStatus
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.worker.v1 import WorkerHeartbeat
from temporalio.api.workflowservice.v1 import (
    CountWorkersRequest,
    DescribeWorkerRequest,
    ListWorkersRequest,
    PollWorkflowTaskQueueRequest,
    RecordWorkerHeartbeatRequest,
    ShutdownWorkerRequest,
)
from temporalio.client import Client
from temporalio.runtime import Runtime, TelemetryConfig
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from e2e import workflows as wf
from e2e.conftest import KINDS, make_deployment
from e2e.deployments import Deployment
from e2e.harness import REPO_ROOT
from e2e.helpers import wait_until, wid

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

TEMPORAL = str(Path(REPO_ROOT) / ".venv" / "bin" / "temporal")


@pytest.fixture(scope="module", params=KINDS)
def deployment(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """Namespaces here advertise worker_poll_complete_on_shutdown (off by default, as on Temporal): the SDK then
    leaves its parked polls to ShutdownWorker, which this module checks."""
    yield from make_deployment(
        request.param, tmp_path_factory.mktemp(f"durata-workers-{request.param}"),
        ["--set", "frontend.worker_poll_complete_on_shutdown=true"],
    )


@pytest.fixture(scope="module")
def heartbeat_runtime() -> Runtime:
    """Heartbeats every second (the default is a minute), so the registry fills quickly."""
    return Runtime(telemetry=TelemetryConfig(), worker_heartbeat_interval=timedelta(seconds=1))


@pytest.fixture
async def hb_client(deployment: Deployment, heartbeat_runtime: Runtime) -> AsyncIterator[Client]:
    yield await Client.connect(deployment.address, namespace="default", runtime=heartbeat_runtime)


async def listed(client: Client, query: str) -> list[Any]:
    resp = await client.workflow_service.list_workers(ListWorkersRequest(namespace="default", query=query))
    return list(resp.workers_info)


async def temporal(dep: Deployment, *args: str) -> str:
    env = {**os.environ, "HOME": str(dep.workdir)}
    proc = await asyncio.create_subprocess_exec(
        TEMPORAL, *args, "--address", dep.address, "--namespace", "default", "--color", "never",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, f"temporal {' '.join(args)} exited {proc.returncode}:\n{out.decode()}\n{err.decode()}"
    return out.decode()


async def test_running_worker_is_listed_described_counted_then_shut_down(
    deployment: Deployment, hb_client: Client, task_queue: str
) -> None:
    query = f"TaskQueue = '{task_queue}'"
    worker = Worker(hb_client, task_queue=task_queue, workflows=wf.WORKFLOWS, activities=list(wf.ACTIVITIES))  # type: ignore[arg-type]
    run = asyncio.create_task(worker.run())
    try:
        infos = await wait_until(lambda: listed(hb_client, query), within=30, what="the worker's first heartbeat")
        assert len(infos) == 1
        beat = infos[0].worker_heartbeat
        assert beat.task_queue == task_queue
        assert beat.status == WorkerStatus.WORKER_STATUS_RUNNING
        assert beat.sdk_name == "temporal-python" and beat.sdk_version
        assert beat.worker_instance_key and beat.host_info.host_name and beat.worker_identity
        assert beat.HasField("start_time") and beat.HasField("heartbeat_time")
        key = beat.worker_instance_key

        # The summary list and the other RPCs agree.
        resp = await hb_client.workflow_service.list_workers(ListWorkersRequest(namespace="default", query=query))
        assert [(w.worker_instance_key, w.task_queue) for w in resp.workers] == [(key, task_queue)]
        count = await hb_client.workflow_service.count_workers(CountWorkersRequest(namespace="default", query=query))
        assert count.count == 1
        by_key = await hb_client.workflow_service.list_workers(
            ListWorkersRequest(namespace="default", query=f"WorkerInstanceKey = '{key}' AND SdkName = 'temporal-python'")
        )
        assert [w.worker_instance_key for w in by_key.workers] == [key]
        described = await hb_client.workflow_service.describe_worker(
            DescribeWorkerRequest(namespace="default", worker_instance_key=key)
        )
        assert described.worker_info.worker_heartbeat.task_queue == task_queue

        # It runs workflows meanwhile; heartbeats keep coming.
        result = await hb_client.execute_workflow(
            wf.HelloWorkflow.run, "registry", id=wid("reg"), task_queue=task_queue,
            execution_timeout=timedelta(seconds=30),
        )
        assert result
        first_beat = beat.heartbeat_time.ToDatetime()

        async def newer() -> bool:
            d = await hb_client.workflow_service.describe_worker(
                DescribeWorkerRequest(namespace="default", worker_instance_key=key)
            )
            return d.worker_info.worker_heartbeat.heartbeat_time.ToDatetime() > first_beat

        await wait_until(newer, within=15, what="a later heartbeat")

        # The CLI shows it too.
        cli_list = json.loads(await temporal(deployment, "worker", "list", "--query", query, "-o", "json"))
        assert key in json.dumps(cli_list)
        cli_describe = await temporal(deployment, "worker", "describe", "--worker-instance-key", key, "-o", "json")
        assert task_queue in cli_describe and key in cli_describe
        assert key in await temporal(deployment, "worker", "list", "--query", f'TaskQueue="{task_queue}"')
        cli_count = await temporal(deployment, "worker", "count", "--query", query, "-o", "json")
        assert json.loads(cli_count).get("count") in (1, "1"), cli_count
    finally:
        # Polls parked in the server end at ShutdownWorker (the namespace says worker_poll_complete_on_shutdown),
        # so shutting down takes nowhere near the minute-long poll.
        started = time.monotonic()
        await worker.shutdown()
        await asyncio.wait_for(run, timeout=30)
        took = time.monotonic() - started
    assert took < 15, f"worker shutdown took {took:.1f}s"
    role = "matching" if "matching" in deployment.procs else "frontend"

    async def polls_ended_by_shutdown() -> bool:
        for line in deployment.logs(role).splitlines():
            if '"worker shut down"' in line and key in line:
                return json.loads(line).get("polls_ended", 0) >= 1
        return False

    # The parked polls were ended by the server (core left them to it), not abandoned by the worker.
    await wait_until(polls_ended_by_shutdown, within=10, what="matching ending the worker's polls")

    # The final heartbeat (sent with ShutdownWorker) says so; SHUTDOWN would remove the entry altogether.
    try:
        after = await hb_client.workflow_service.describe_worker(
            DescribeWorkerRequest(namespace="default", worker_instance_key=key)
        )
        assert after.worker_info.worker_heartbeat.status == WorkerStatus.WORKER_STATUS_SHUTTING_DOWN
    except RPCError as err:
        assert err.status == RPCStatusCode.NOT_FOUND


async def test_shutdown_worker_ends_parked_polls_of_that_instance(client: Client, task_queue: str) -> None:
    svc = client.workflow_service
    key, other_key = str(uuid.uuid4()), str(uuid.uuid4())

    def poll(instance: str) -> Any:
        return svc.poll_workflow_task_queue(
            PollWorkflowTaskQueueRequest(
                namespace="default", task_queue=TaskQueue(name=task_queue), identity="shared-identity",
                worker_instance_key=instance,
            ),
            timeout=timedelta(seconds=70),
        )

    mine = asyncio.ensure_future(poll(key))
    other = asyncio.ensure_future(poll(other_key))
    await asyncio.sleep(1.0)  # both parked in matching
    assert not mine.done() and not other.done()
    started = time.monotonic()
    await svc.shutdown_worker(
        ShutdownWorkerRequest(
            namespace="default", identity="shared-identity", worker_instance_key=key, task_queue=task_queue,
            reason="test", worker_heartbeat=WorkerHeartbeat(
                worker_instance_key=key, task_queue=task_queue, status=WorkerStatus.WORKER_STATUS_SHUTTING_DOWN,
                sdk_name="test-sdk",
            ),
        )
    )
    assert (await asyncio.wait_for(mine, timeout=10)).task_token == b""
    assert time.monotonic() - started < 10
    assert not other.done()
    # A poll of that instance after the shutdown answers empty at once.
    started = time.monotonic()
    assert (await asyncio.wait_for(poll(key), timeout=10)).task_token == b""
    assert time.monotonic() - started < 5
    # The final heartbeat is recorded.
    d = await svc.describe_worker(DescribeWorkerRequest(namespace="default", worker_instance_key=key))
    assert d.worker_info.worker_heartbeat.status == WorkerStatus.WORKER_STATUS_SHUTTING_DOWN
    # The other instance's poll is still parked; end it the same way.
    await svc.shutdown_worker(ShutdownWorkerRequest(namespace="default", worker_instance_key=other_key))
    assert (await asyncio.wait_for(other, timeout=10)).task_token == b""


async def test_registry_errors_and_pages(client: Client) -> None:
    svc = client.workflow_service
    prefix = f"page-{uuid.uuid4().hex[:8]}"
    tq = f"{prefix}-tq"
    beats = [WorkerHeartbeat(worker_instance_key=f"{prefix}-{i}", task_queue=tq, sdk_name="test-sdk") for i in range(5)]
    await svc.record_worker_heartbeat(RecordWorkerHeartbeatRequest(namespace="default", worker_heartbeat=beats))
    query = f"TaskQueue = '{tq}'"
    seen: list[str] = []
    token = b""
    pages = 0
    while True:
        resp = await svc.list_workers(ListWorkersRequest(namespace="default", query=query, page_size=2, next_page_token=token))
        seen += [w.worker_instance_key for w in resp.workers]
        pages += 1
        token = resp.next_page_token
        if not token:
            break
    assert seen == [f"{prefix}-{i}" for i in range(5)] and pages == 3
    assert (await svc.count_workers(CountWorkersRequest(namespace="default", query=query))).count == 5
    # SHUTDOWN removes a worker.
    await svc.record_worker_heartbeat(RecordWorkerHeartbeatRequest(namespace="default", worker_heartbeat=[
        WorkerHeartbeat(worker_instance_key=f"{prefix}-0", task_queue=tq, status=WorkerStatus.WORKER_STATUS_SHUTDOWN)
    ]))
    assert (await svc.count_workers(CountWorkersRequest(namespace="default", query=query))).count == 4

    with pytest.raises(RPCError) as err:
        await svc.describe_worker(DescribeWorkerRequest(namespace="default", worker_instance_key=f"{prefix}-0"))
    assert err.value.status == RPCStatusCode.NOT_FOUND and err.value.message == f"Worker {prefix}-0 not found"
    with pytest.raises(RPCError) as err:
        await svc.list_workers(ListWorkersRequest(namespace="default", query="TaskQueue = "))
    assert err.value.status == RPCStatusCode.INVALID_ARGUMENT and "malformed query" in err.value.message
    with pytest.raises(RPCError) as err:
        await svc.list_workers(ListWorkersRequest(namespace="default", page_size=1, next_page_token=b"junk"))
    assert err.value.status == RPCStatusCode.INVALID_ARGUMENT and err.value.message == "invalid next_page_token"
    with pytest.raises(RPCError) as err:
        await svc.count_workers(CountWorkersRequest(namespace=""))
    assert err.value.status == RPCStatusCode.INVALID_ARGUMENT
    with pytest.raises(RPCError) as err:
        await svc.list_workers(ListWorkersRequest(namespace="no-such-namespace"))
    assert err.value.status == RPCStatusCode.NOT_FOUND
