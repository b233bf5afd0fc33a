"""Retention: the internal worker deletes closed runs older than their namespace's retention, and only those."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from e2e import workflows as wf
from e2e.deployments import Deployment
from e2e.helpers import running_worker, wait_until, wid

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

RETENTION_SECONDS = 2


async def test_closed_runs_are_deleted_after_retention(deployment: Deployment, client: Client) -> None:
    namespace = f"retention-{uuid.uuid4().hex[:8]}"
    await client.workflow_service.register_namespace(
        wsv.RegisterNamespaceRequest(
            namespace=namespace, workflow_execution_retention_period=Duration(seconds=RETENTION_SECONDS)
        )
    )
    ns_client = await Client.connect(deployment.address, namespace=namespace)

    async def namespace_ready() -> bool:
        desc = await ns_client.workflow_service.describe_namespace(wsv.DescribeNamespaceRequest(namespace=namespace))
        return desc.config.workflow_execution_retention_ttl.seconds == RETENTION_SECONDS

    await wait_until(namespace_ready, 10, f"namespace {namespace}")

    task_queue = f"tq-{uuid.uuid4().hex[:8]}"
    async with running_worker(ns_client, task_queue):
        # Both start running (retention cannot touch them yet), so their rows can be checked without a race.
        done = await ns_client.start_workflow(wf.SignalQueryWorkflow.run, id=wid("ret-closed"),
                                              task_queue=task_queue, execution_timeout=timedelta(seconds=60))
        running = await ns_client.start_workflow(wf.SignalQueryWorkflow.run, id=wid("ret-open"),
                                                 task_queue=task_queue, execution_timeout=timedelta(seconds=120))
        run_id = done.result_run_id
        assert run_id
        assert await asyncio.to_thread(deployment.count_rows, "executions", run_id=run_id) == 1
        assert await asyncio.to_thread(deployment.count_rows, "history_node", run_id=run_id) >= 1
        await done.signal(wf.SignalQueryWorkflow.finish)
        assert await done.result() == []

        async def deleted() -> bool:
            try:
                await done.describe()
            except RPCError as err:
                if err.status == RPCStatusCode.NOT_FOUND:
                    return True
                raise
            return False

        # retention (2 s) + sweep interval (1 s) + visibility lag, with plenty of margin
        await wait_until(deleted, 45, "the closed run to be deleted by retention", interval=0.25)

        tables = ("executions", "history_node", "current_executions", "executions_visibility")
        for table in tables:
            async def rows_gone(table: str = table) -> bool:
                return await asyncio.to_thread(deployment.count_rows, table, run_id=run_id) == 0

            await wait_until(rows_gone, 15, f"rows of the deleted run in {table}")

        # The deletion is counted on the internal worker's /metrics (start-dev: the one process).
        role = "frontend" if deployment.kind == "dev" else "internal_worker"
        text = await asyncio.to_thread(deployment.metrics_text, role)
        assert f'durata_retention_deleted_executions_total{{namespace="{namespace}"}}' in text

        # The running workflow is untouched.
        desc = await running.describe()
        assert desc.status == WorkflowExecutionStatus.RUNNING
        assert await asyncio.to_thread(deployment.count_rows, "executions", run_id=desc.run_id) == 1
        await running.signal(wf.SignalQueryWorkflow.finish)
        assert await running.result() == []


async def test_short_retention_rejected_without_dev_override(deployment: Deployment, client: Client) -> None:
    """Below the configured minimum (1 s in these deployments) registration is INVALID_ARGUMENT."""
    with pytest.raises(RPCError) as info:
        await client.workflow_service.register_namespace(
            wsv.RegisterNamespaceRequest(
                namespace=f"too-short-{uuid.uuid4().hex[:8]}",
                workflow_execution_retention_period=Duration(nanos=100_000_000),
            )
        )
    assert info.value.status == RPCStatusCode.INVALID_ARGUMENT
