"""The list query language end to end, beyond single predicates (test_search_attributes): ORDER BY through the
official SDK and the CLI, pagination through a result set that changes between pages, a removed attribute,
Scan, and the BuildIds / BinaryChecksums History keeps. Runs on start-dev (SQLite) and the PostgreSQL services."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from temporalio.api.common.v1 import WorkflowType
from temporalio.api.operatorservice.v1 import RemoveSearchAttributesRequest
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    ListWorkflowExecutionsRequest,
    ScanWorkflowExecutionsRequest,
    StartWorkflowExecutionRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from e2e.deployments import Deployment
from e2e.helpers import wait_until
from e2e.search_attribute_workflows import INT, KEYWORD, TEXT, Patched, Quick, Upserter
from e2e.test_search_attributes import namespace_with_attributes, typed
from e2e.test_temporal_cli import parse_json, temporal


async def start_unworked(client: Client, task_queue: str, workflow_id: str, wf_type: str = "Unworked", **sa: Any) -> None:
    """A run no worker picks up: it stays Running with the values it was started with."""
    await client.start_workflow(
        wf_type, id=workflow_id, task_queue=task_queue, search_attributes=typed(**sa) if sa else None
    )


async def count(client: Client, query: str) -> int:
    return (await client.count_workflows(query)).count


async def test_order_by_through_sdk_and_cli(deployment: Deployment, task_queue: str) -> None:
    client = await namespace_with_attributes(deployment)
    amounts = {"o-1": 30, "o-2": 10, "o-3": 20, "o-4": 10}
    for wid, amount in amounts.items():
        await start_unworked(client, task_queue, wid, SaInt=amount, SaKeyword=f"k{amount}", SaText=f"order {wid}")
    await start_unworked(client, task_queue, "o-5")  # no values: sorts last either way
    await wait_until(lambda: _is(count(client, "WorkflowType = 'Unworked'"), 5), 20, "visibility has the runs")

    # Ties (o-2/o-4 both 10) break on the run id, descending, so the expected order is read from the run ids.
    run_ids = {}
    for wid in amounts:
        run_ids[wid] = (await client.get_workflow_handle(wid).describe()).run_id
    tie = sorted(["o-2", "o-4"], key=lambda w: run_ids[w], reverse=True)
    ascending = [*tie, "o-3", "o-1", "o-5"]
    got = [w.id async for w in client.list_workflows("ORDER BY SaInt", page_size=2)]
    assert got == ascending
    got = [w.id async for w in client.list_workflows("SaInt >= 10 ORDER BY SaInt DESC, WorkflowId", page_size=1)]
    assert got == ["o-1", "o-3", "o-2", "o-4"]
    got = [w.id async for w in client.list_workflows("SaText = 'order' ORDER BY SaKeyword DESC", page_size=3)]
    assert got[:2] == ["o-1", "o-3"] and sorted(got[2:]) == ["o-2", "o-4"]

    out = await temporal(deployment, "workflow", "list", "--query", "ORDER BY SaInt ASC", "-o", "json",
                         namespace=client.namespace)  # fmt: skip
    rows = parse_json(out)
    assert [r["execution"]["workflowId"] for r in rows] == ascending

    with pytest.raises(RPCError) as err:
        await client.workflow_service.list_workflow_executions(
            ListWorkflowExecutionsRequest(namespace=client.namespace, query="ORDER BY SaText")
        )
    assert err.value.status == RPCStatusCode.INVALID_ARGUMENT
    assert "unable to sort by search attribute type Text" in err.value.message
    for wid in [*amounts, "o-5"]:
        await client.get_workflow_handle(wid).terminate("done")


async def test_pagination_through_a_changing_result_set(deployment: Deployment, task_queue: str) -> None:
    """Pages stay exact while runs start (they sort before the cursor) and close (their position holds)."""
    client = await namespace_with_attributes(deployment)
    prefix = f"pg-{uuid.uuid4().hex[:6]}"
    existing = [f"{prefix}-{i:02d}" for i in range(24)]
    for wid in existing:
        await start_unworked(client, task_queue, wid, wf_type="Pager")
    await wait_until(lambda: _is(count(client, "WorkflowType = 'Pager'"), 24), 20, "visibility has the runs")

    seen: list[str] = []
    token = b""
    added = 0
    while True:
        page = await client.workflow_service.list_workflow_executions(
            ListWorkflowExecutionsRequest(
                namespace=client.namespace, query="WorkflowType = 'Pager'", page_size=5, next_page_token=token
            )
        )
        seen += [e.execution.workflow_id for e in page.executions]
        if not page.next_page_token:
            break
        token = page.next_page_token
        # Between pages: two new runs, and one already-seen and one not-yet-seen run terminated.
        for _ in range(2):
            await start_unworked(client, task_queue, f"{prefix}-new-{added}", wf_type="Pager")
            added += 1
        await client.get_workflow_handle(seen[-1]).terminate("changing")
        unseen = [w for w in existing if w not in seen]
        if unseen:
            await client.get_workflow_handle(unseen[-1]).terminate("changing")
        total = 24 + added
        await wait_until(lambda: _is(count(client, "WorkflowType = 'Pager'"), total), 20, "new runs visible")  # noqa: B023

    assert len(seen) == len(set(seen)), "a run was listed twice"
    assert sorted(w for w in seen if "-new-" not in w) == existing, "a run that existed throughout was missed"
    async for w in client.list_workflows(f"WorkflowType = 'Pager' AND WorkflowId STARTS_WITH '{prefix}'"):
        if w.status is not None and w.status.name == "RUNNING":
            await client.get_workflow_handle(w.id).terminate("done")


async def test_removed_attribute_is_no_longer_queryable(deployment: Deployment, task_queue: str) -> None:
    client = await namespace_with_attributes(deployment)
    await start_unworked(client, task_queue, "rm-1", SaKeyword="x")
    await wait_until(lambda: _is(count(client, "SaKeyword = 'x'"), 1), 20, "visible by the attribute")
    await client.operator_service.remove_search_attributes(
        RemoveSearchAttributesRequest(namespace=client.namespace, search_attributes=[KEYWORD.name])
    )

    async def refused() -> bool:
        try:
            await client.count_workflows("SaKeyword = 'x'")
        except RPCError as err:
            assert err.status == RPCStatusCode.INVALID_ARGUMENT
            assert "SaKeyword" in err.message
            return True
        return False

    await wait_until(refused, 20, "the removed attribute is unknown to queries")
    assert await count(client, f"SaInt IS NULL AND WorkflowId = 'rm-1' AND {INT.name} IS NULL") == 1
    await client.get_workflow_handle("rm-1").terminate("done")


async def test_scan_and_build_ids(deployment: Deployment, task_queue: str) -> None:
    client = await namespace_with_attributes(deployment)
    build = f"build-{uuid.uuid4().hex[:6]}"
    async with Worker(client, task_queue=task_queue, workflows=[Quick, Patched, Upserter], build_id=build):
        for i in range(3):
            await client.execute_workflow(Quick.run, id=f"q-{i}", task_queue=task_queue)
        await client.execute_workflow(Patched.run, id="patched", task_queue=task_queue)
        # A run that stays open: its BuildIds reach visibility by the catch-up timer (5 s by default).
        waiting = await client.start_workflow(Upserter.run, id="waiting", task_queue=task_queue)
        await wait_until(lambda: _is(count(client, f"BuildIds = 'unversioned:{build}' AND WorkflowId = 'waiting'"), 1),
                         20, "an open run found by build id")  # fmt: skip
        await waiting.signal(Upserter.finish)
        await waiting.result()
    await client.workflow_service.start_workflow_execution(
        StartWorkflowExecutionRequest(
            namespace=client.namespace, workflow_id="q-unworked", workflow_type=WorkflowType(name="Quick"),
            task_queue=TaskQueue(name=task_queue + "-nobody"), request_id=str(uuid.uuid4()),
        )
    )  # fmt: skip

    # BuildIds: the unversioned sentinel and the build that completed the tasks; BinaryChecksums its checksum.
    query = f"BuildIds = 'unversioned:{build}'"
    await wait_until(lambda: _is(count(client, query + " AND WorkflowType = 'Quick'"), 3), 20, "found by build id")
    assert await count(client, "BuildIds = 'unversioned' AND WorkflowType = 'Quick'") == 3
    # The SDK records each patch in TemporalChangeVersion.
    await wait_until(lambda: _is(count(client, "TemporalChangeVersion = 'fix-2'"), 1), 20, "found by patch")
    assert await count(client, "TemporalChangeVersion IN ('fix-1', 'nope') AND WorkflowType = 'Patched'") == 1
    assert await count(client, f"BinaryChecksums = '{build}'") == 5
    await wait_until(lambda: _is(count(client, "BuildIds IS NULL"), 1), 20, "the run that never ran a task")
    desc = await client.get_workflow_handle("q-0").describe()
    assert desc.search_attributes.get("BuildIds") == ["unversioned", f"unversioned:{build}"]

    grouped = await client.count_workflows("GROUP BY ExecutionStatus")
    assert {g.group_values[0]: g.count for g in grouped.groups} == {"Completed": 5, "Running": 1}

    scanned: list[str] = []
    token = b""
    while True:
        page = await client.workflow_service.scan_workflow_executions(
            ScanWorkflowExecutionsRequest(
                namespace=client.namespace, query=query + " AND WorkflowType = 'Quick'", page_size=2,
                next_page_token=token,
            )  # fmt: skip
        )
        scanned += [e.execution.workflow_id for e in page.executions]
        token = page.next_page_token
        if not token:
            break
    assert sorted(scanned) == ["q-0", "q-1", "q-2"]
    assert TEXT.name  # the namespace keeps its other attributes
    await client.get_workflow_handle("q-unworked").terminate("done")


async def _is(value: Any, expected: Any) -> bool:
    return await value == expected
