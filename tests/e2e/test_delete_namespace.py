"""OperatorService.DeleteNamespace end to end: the old name is gone at once and reusable, the runs and the
namespace row are removed in the background by the internal worker; plus ``temporal operator namespace delete``."""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import timedelta

import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio.api.enums.v1 import namespace_pb2 as ns_enums
from temporalio.api.errordetails.v1 import message_pb2 as errordetails
from temporalio.api.namespace.v1 import message_pb2 as nsv1
from temporalio.api.operatorservice.v1 import request_response_pb2 as opv1
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from e2e import workflows as wf
from e2e.deployments import Deployment
from e2e.helpers import running_worker, wait_until, wid
from e2e.test_temporal_cli import TEMPORAL

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

# internal worker sweep (5 s) + grace after first seeing the namespace DELETED (5 s) + the steps, with margin
RECLAIM_WITHIN = 90


async def _register(client: Client, deployment: Deployment, name: str) -> tuple[Client, str]:
    await client.workflow_service.register_namespace(
        wsv.RegisterNamespaceRequest(namespace=name, workflow_execution_retention_period=Duration(seconds=86400))
    )
    ns_client = await Client.connect(deployment.address, namespace=name)
    desc = await ns_client.workflow_service.describe_namespace(wsv.DescribeNamespaceRequest(namespace=name))
    return ns_client, desc.namespace_info.id


def _assert_namespace_not_found(err: RPCError, name: str) -> None:
    assert err.status == RPCStatusCode.NOT_FOUND, err
    assert err.message == f"Namespace {name} is not found."
    details = err.grpc_status.details
    assert details, "NamespaceNotFoundFailure detail expected"
    failure = errordetails.NamespaceNotFoundFailure()
    assert details[0].Unpack(failure) and failure.namespace == name


async def test_delete_namespace(deployment: Deployment, client: Client) -> None:
    name = f"del-{uuid.uuid4().hex[:8]}"
    ns_client, ns_id = await _register(client, deployment, name)
    task_queue = f"tq-{uuid.uuid4().hex[:8]}"
    async with running_worker(ns_client, task_queue):
        closed = await ns_client.start_workflow(wf.SignalQueryWorkflow.run, id=wid("del-closed"),
                                                task_queue=task_queue, execution_timeout=timedelta(seconds=120))
        await closed.signal(wf.SignalQueryWorkflow.finish)
        assert await closed.result() == []
        running = await ns_client.start_workflow(wf.SignalQueryWorkflow.run, id=wid("del-open"),
                                                 task_queue=task_queue, execution_timeout=timedelta(seconds=600))
        await running.signal(wf.SignalQueryWorkflow.add, "x")
        assert await running.query(wf.SignalQueryWorkflow.get_items) == ["x"]
    assert await asyncio.to_thread(deployment.count_rows, "executions", namespace_id=ns_id) == 2

    resp = await client.operator_service.delete_namespace(opv1.DeleteNamespaceRequest(namespace=name))
    tombstone = f"{name}-deleted-{ns_id[:5]}"
    assert resp.deleted_namespace == tombstone

    # The old name is unknown at once, with Temporal's error.
    with pytest.raises(RPCError) as err:
        await client.workflow_service.describe_namespace(wsv.DescribeNamespaceRequest(namespace=name))
    _assert_namespace_not_found(err.value, name)
    with pytest.raises(RPCError) as err:
        await ns_client.start_workflow(wf.SignalQueryWorkflow.run, id=wid("after"), task_queue=task_queue)
    _assert_namespace_not_found(err.value, name)
    with pytest.raises(RPCError) as err:
        await running.describe()
    _assert_namespace_not_found(err.value, name)
    with pytest.raises(RPCError) as err:
        await client.operator_service.delete_namespace(opv1.DeleteNamespaceRequest(namespace=name))
    _assert_namespace_not_found(err.value, name)

    # The tombstone name (until reclaimed; the grace period makes that at least 5 s away): described with state
    # DELETED, any other API answers FailedPrecondition NamespaceInvalidState, as Temporal's namespace validator.
    desc = await client.workflow_service.describe_namespace(wsv.DescribeNamespaceRequest(namespace=tombstone))
    assert desc.namespace_info.state == ns_enums.NAMESPACE_STATE_DELETED and desc.namespace_info.id == ns_id
    with pytest.raises(RPCError) as err:
        await client.workflow_service.list_workflow_executions(
            wsv.ListWorkflowExecutionsRequest(namespace=tombstone)
        )
    assert err.value.status == RPCStatusCode.FAILED_PRECONDITION
    assert err.value.message == "Namespace has invalid state: Deleted. Must be Registered or Deprecated."
    invalid = errordetails.NamespaceInvalidStateFailure()
    assert err.value.grpc_status.details[0].Unpack(invalid) and invalid.namespace == tombstone

    # Until it is reclaimed, ListNamespaces shows the tombstone only with include_deleted.
    listed = await client.workflow_service.list_namespaces(
        wsv.ListNamespacesRequest(page_size=1000, namespace_filter=nsv1.NamespaceFilter(include_deleted=True))
    )
    infos = {n.namespace_info.id: n.namespace_info for n in listed.namespaces}
    if ns_id in infos:  # (it could already be gone on a very slow machine)
        assert infos[ns_id].name == tombstone and infos[ns_id].state == ns_enums.NAMESPACE_STATE_DELETED
    plain = await client.workflow_service.list_namespaces(wsv.ListNamespacesRequest(page_size=1000))
    assert ns_id not in {n.namespace_info.id for n in plain.namespaces}

    # The name is reusable right away, and the new namespace is empty.
    new_client, new_id = await _register(client, deployment, name)
    assert new_id != ns_id
    listing = await new_client.workflow_service.list_workflow_executions(
        wsv.ListWorkflowExecutionsRequest(namespace=name)
    )
    assert list(listing.executions) == []
    with pytest.raises(RPCError) as err:
        await new_client.get_workflow_handle(running.id).describe()
    assert err.value.status == RPCStatusCode.NOT_FOUND
    async with running_worker(new_client, task_queue):
        fresh = await new_client.start_workflow(wf.SignalQueryWorkflow.run, id=running.id, task_queue=task_queue,
                                                execution_timeout=timedelta(seconds=120))
        await fresh.signal(wf.SignalQueryWorkflow.finish)
        assert await fresh.result() == []

    # In the background: the old runs (the running one terminated first), their rows, then the namespace row.
    async def reclaimed() -> bool:
        counts = [await asyncio.to_thread(deployment.count_rows, table, namespace_id=ns_id)
                  for table in ("executions", "current_executions", "executions_visibility", "history_node")]
        gone = await asyncio.to_thread(deployment.count_rows, "namespaces", id=ns_id) == 0
        return gone and counts == [0, 0, 0, 0]

    await wait_until(reclaimed, RECLAIM_WITHIN, f"namespace {tombstone} and its runs to be removed", interval=0.5)
    # The namespace that took the name is untouched.
    assert await asyncio.to_thread(deployment.count_rows, "namespaces", id=new_id) == 1
    assert await asyncio.to_thread(deployment.count_rows, "executions", namespace_id=new_id) == 1


async def _cli(dep: Deployment, *args: str) -> tuple[int, str]:
    env = {**os.environ, "HOME": str(dep.workdir)}
    proc = await asyncio.create_subprocess_exec(
        TEMPORAL, *args, "--address", dep.address, "--color", "never",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_cli_namespace_delete(dev_deployment: Deployment) -> None:
    dep = dev_deployment
    name = f"cli-del-{uuid.uuid4().hex[:8]}"
    code, out = await _cli(dep, "operator", "namespace", "create", "--namespace", name)
    assert code == 0, out
    code, out = await _cli(dep, "operator", "namespace", "describe", "--namespace", name, "-o", "json")
    assert code == 0, out

    code, out = await _cli(dep, "operator", "namespace", "delete", "--namespace", name, "--yes")
    assert code == 0, out
    assert f"Namespace {name} has been deleted." in out, out

    code, out = await _cli(dep, "operator", "namespace", "describe", "--namespace", name)
    assert code != 0 and f"Namespace {name} is not found" in out, out
    code, out = await _cli(dep, "operator", "namespace", "delete", "--namespace", name, "--yes")
    assert code != 0 and f"Namespace {name} is not found" in out, out
    # The name can be used again at once.
    code, out = await _cli(dep, "operator", "namespace", "create", "--namespace", name)
    assert code == 0, out


async def test_deletion_resumes_after_a_crash(fresh_deployment: Deployment) -> None:
    """The background half is driven by the DELETED state alone: kill -9 right after DeleteNamespace (inside the
    grace period, before any run was touched), restart, and the runs and the row still go."""
    dep = fresh_deployment
    client = await Client.connect(dep.address, namespace="default")
    name = f"crash-{uuid.uuid4().hex[:8]}"
    ns_client, ns_id = await _register(client, dep, name)
    for i in range(3):  # no worker: the runs stay open, so deleting them terminates them first
        await ns_client.start_workflow(wf.SignalQueryWorkflow.run, id=wid(f"crash-{i}"), task_queue="nobody",
                                       execution_timeout=timedelta(seconds=600))
    resp = await client.operator_service.delete_namespace(opv1.DeleteNamespaceRequest(namespace=name))
    assert resp.deleted_namespace == f"{name}-deleted-{ns_id[:5]}"
    dep.kill()
    assert await asyncio.to_thread(dep.count_rows, "executions", namespace_id=ns_id) == 3
    await asyncio.to_thread(dep.restart)

    async def reclaimed() -> bool:
        runs = await asyncio.to_thread(dep.count_rows, "executions", namespace_id=ns_id)
        return runs == 0 and await asyncio.to_thread(dep.count_rows, "namespaces", id=ns_id) == 0

    await wait_until(reclaimed, RECLAIM_WITHIN, f"namespace {name} to be reclaimed after the restart", interval=0.5)
