"""Custom search attributes end to end: registered through the OperatorService and the CLI, set at start and by
upserts, read back typed (describe, list, the workflow's own info), queried with every operator, and values of
the wrong type refused with Temporal's messages. Runs on start-dev (SQLite) and the PostgreSQL services."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio.api.common.v1 import Payload, SearchAttributes, WorkflowType
from temporalio.api.enums.v1 import EventType, IndexedValueType, WorkflowTaskFailedCause
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    ListWorkflowExecutionsRequest,
    RegisterNamespaceRequest,
    SignalWithStartWorkflowExecutionRequest,
    StartWorkflowExecutionRequest,
)
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from e2e.deployments import Deployment
from e2e.helpers import wait_until
from e2e.search_attribute_workflows import (
    BOOL,
    DATETIME,
    DOUBLE,
    INT,
    KEYWORD,
    KEYWORD_LIST,
    TEXT,
    BadChild,
    Upserter,
)
from e2e.test_temporal_cli import parse_json, temporal

IVT = IndexedValueType
TYPES = {
    "SaKeyword": IVT.INDEXED_VALUE_TYPE_KEYWORD,
    "SaText": IVT.INDEXED_VALUE_TYPE_TEXT,
    "SaInt": IVT.INDEXED_VALUE_TYPE_INT,
    "SaDouble": IVT.INDEXED_VALUE_TYPE_DOUBLE,
    "SaBool": IVT.INDEXED_VALUE_TYPE_BOOL,
    "SaDatetime": IVT.INDEXED_VALUE_TYPE_DATETIME,
    "SaKeywordList": IVT.INDEXED_VALUE_TYPE_KEYWORD_LIST,
}
D1 = datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC)
D2 = datetime(2001, 2, 4, 4, 5, 6, tzinfo=UTC)


async def namespace_with_attributes(deployment: Deployment) -> Client:
    """A fresh namespace (attribute slots are per namespace) with the seven attributes registered."""
    name = f"sa-{uuid.uuid4().hex[:10]}"
    base = await Client.connect(deployment.address)
    await base.workflow_service.register_namespace(
        RegisterNamespaceRequest(namespace=name, workflow_execution_retention_period=Duration(seconds=86400))
    )
    await base.operator_service.add_search_attributes(
        AddSearchAttributesRequest(namespace=name, search_attributes=TYPES)
    )
    return await Client.connect(deployment.address, namespace=name)


def typed(**values: Any) -> TypedSearchAttributes:
    keys = {k.name: k for k in (KEYWORD, TEXT, INT, DOUBLE, BOOL, DATETIME, KEYWORD_LIST)}
    return TypedSearchAttributes([SearchAttributePair(keys[k], v) for k, v in values.items()])  # type: ignore[misc]


async def ids(client: Client, query: str) -> list[str]:
    return sorted([w.id async for w in client.list_workflows(query)])


async def test_typed_values_queries_and_upserts(deployment: Deployment, task_queue: str) -> None:
    client = await namespace_with_attributes(deployment)
    async with Worker(client, task_queue=task_queue, workflows=[Upserter]):
        a = await client.start_workflow(
            Upserter.run, id="wf-a", task_queue=task_queue,
            search_attributes=typed(SaKeyword="alpha", SaText="Rush order, fragile", SaInt=10, SaDouble=1.5,
                                    SaBool=True, SaDatetime=D1, SaKeywordList=["red", "big"]),
        )  # fmt: skip
        b = await client.start_workflow(
            Upserter.run, id="wf-b", task_queue=task_queue,
            search_attributes=typed(SaKeyword="beta", SaText="standard delivery", SaInt=20, SaDouble=2.5,
                                    SaBool=False, SaDatetime=D2, SaKeywordList=["blue"]),
        )  # fmt: skip
        c = await client.start_workflow(Upserter.run, id="wf-c", task_queue=task_queue)

        # Describe: typed payloads the SDK reads back as typed search attributes.
        desc = await a.describe()
        got = desc.typed_search_attributes
        assert got.get(KEYWORD) == "alpha" and got.get(TEXT) == "Rush order, fragile"
        assert got.get(INT) == 10 and got.get(DOUBLE) == 1.5 and got.get(BOOL) is True
        assert got.get(DATETIME) == D1 and got.get(KEYWORD_LIST) == ["red", "big"]
        raw = desc.raw_description.workflow_execution_info.search_attributes.indexed_fields
        # (History adds BuildIds/BinaryChecksums once a workflow task completes: see test_visibility_queries.)
        assert {k: raw[k].metadata["type"].decode() for k in raw if k not in ("BuildIds", "BinaryChecksums")} == {
            "SaKeyword": "Keyword", "SaText": "Text", "SaInt": "Int", "SaDouble": "Double", "SaBool": "Bool",
            "SaDatetime": "Datetime", "SaKeywordList": "KeywordList",
        }  # fmt: skip

        # An upsert changes one value, adds to the run without any, and removes one.
        await c.signal(
            Upserter.upsert,
            [
                ["SaKeyword", "gamma"],
                ["SaInt", 30],
                ["SaKeywordList", ["red", "Blue"]],
                ["SaDatetime", "2001-02-05T04:05:06+00:00"],
            ],
        )
        await b.signal(Upserter.upsert, [["SaBool", None]])
        await wait_until(lambda: c.query(Upserter.upserts), 20, "upserts applied")
        await wait_until(lambda: b.query(Upserter.upserts), 20, "upserts applied")
        own = await c.query(Upserter.own)
        assert own == {"SaKeyword": "gamma", "SaInt": 30, "SaKeywordList": ["red", "Blue"],
                       "SaDatetime": "2001-02-05T04:05:06+00:00"}  # fmt: skip
        assert BOOL.name not in await b.query(Upserter.own)

        async def visible() -> bool:
            return await ids(client, "SaKeyword = 'gamma' AND SaBool IS NULL") == ["wf-c"] and await ids(
                client, "SaBool IS NULL"
            ) == ["wf-b", "wf-c"]

        await wait_until(visible, 20, "visibility caught up with the upserts")

        cases = {
            "SaKeyword = 'alpha'": ["wf-a"],
            "SaKeyword != 'alpha'": ["wf-b", "wf-c"],
            "SaKeyword > 'alpha'": ["wf-b", "wf-c"],
            "SaKeyword IN ('alpha', 'gamma')": ["wf-a", "wf-c"],
            "SaKeyword NOT IN ('alpha', 'gamma')": ["wf-b"],
            "SaKeyword STARTS_WITH 'al'": ["wf-a"],
            "SaKeyword BETWEEN 'b' AND 'h'": ["wf-b", "wf-c"],
            "SaText = 'fragile'": ["wf-a"],
            "SaText IS NULL": ["wf-c"],
            "SaInt >= 20": ["wf-b", "wf-c"],
            "SaInt < 20": ["wf-a"],
            "SaInt BETWEEN 15 AND 30": ["wf-b", "wf-c"],
            "SaDouble > 2": ["wf-b"],
            "SaDouble <= 2": ["wf-a"],
            "SaBool = true": ["wf-a"],
            "SaBool IS NOT NULL": ["wf-a"],
            "SaDatetime > '2001-02-03T04:05:06Z'": ["wf-b", "wf-c"],
            "SaDatetime = '2001-02-03T04:05:06Z'": ["wf-a"],
            "SaDatetime BETWEEN '2001-02-04T00:00:00Z' AND '2001-02-04T23:00:00Z'": ["wf-b"],
            "SaKeywordList = 'red'": ["wf-a", "wf-c"],
            "SaKeywordList = 'blue'": ["wf-b"],
            "SaKeywordList IN ('big', 'Blue')": ["wf-a", "wf-c"],
            "SaKeywordList NOT IN ('red')": ["wf-b"],
            "SaKeyword IS NOT NULL AND (SaInt = 10 OR SaKeywordList = 'blue')": ["wf-a", "wf-b"],
        }
        for query, expected in cases.items():
            assert await ids(client, query) == expected, query
            assert (await client.count_workflows(query)).count == len(expected), query

        # List returns typed payloads too; datetimes in Temporal's RFC 3339 form.
        listed = [w async for w in client.list_workflows("SaKeyword = 'alpha'")]
        assert listed[0].typed_search_attributes.get(DATETIME) == D1
        assert listed[0].typed_search_attributes.get(KEYWORD_LIST) == ["red", "big"]
        raw_list = await client.workflow_service.list_workflow_executions(
            ListWorkflowExecutionsRequest(namespace=client.namespace, query="SaKeyword = 'alpha'")
        )
        dt = raw_list.executions[0].search_attributes.indexed_fields["SaDatetime"]
        assert json.loads(dt.data) == "2001-02-03T04:05:06Z" and dt.metadata["type"] == b"Datetime"

        grouped = await client.count_workflows("GROUP BY SaKeyword")
        assert grouped.count == 3 and sorted(g.count for g in grouped.groups) == [1, 1, 1]

        for h in (a, b, c):
            await h.signal(Upserter.finish)
            await h.result()


async def test_wrong_types_are_rejected(deployment: Deployment, task_queue: str) -> None:
    client = await namespace_with_attributes(deployment)
    svc = client.workflow_service
    bad_start = {
        "SaInt": ('"abc"', "invalid value for search attribute SaInt of type Int: abc"),
        "SaBool": ("1", "invalid value for search attribute SaBool of type Bool: 1"),
        "SaDatetime": (
            '"yesterday"',
            "invalid value for search attribute SaDatetime of type Datetime: yesterday",
        ),
        "SaKeywordList": (
            "[1, 2]",
            "invalid value for search attribute SaKeywordList of type KeywordList: [1 2]",
        ),
        "SaKeyword": ('["a", "b"]', "invalid value for search attribute SaKeyword of type Keyword: [a b]"),
        "Undefined": ('"x"', "search attribute Undefined is not defined"),
        "WorkflowId": ('"x"', "WorkflowId attribute can't be set in SearchAttributes"),
    }

    for name, (data, message) in bad_start.items():
        sas = SearchAttributes(
            indexed_fields={name: Payload(metadata={"encoding": b"json/plain"}, data=data.encode())}
        )
        common = {"namespace": client.namespace, "workflow_id": f"bad-{name}", "workflow_type": WorkflowType(name="X"),
                  "task_queue": TaskQueue(name=task_queue), "search_attributes": sas}  # fmt: skip
        for request in (
            StartWorkflowExecutionRequest(**common),
            SignalWithStartWorkflowExecutionRequest(**common, signal_name="s"),
        ):
            with pytest.raises(RPCError) as err:
                if isinstance(request, StartWorkflowExecutionRequest):
                    await svc.start_workflow_execution(request)
                else:
                    await svc.signal_with_start_workflow_execution(request)
            assert err.value.status == RPCStatusCode.INVALID_ARGUMENT, name
            assert err.value.message == message, name

    # An upsert of the wrong type fails the workflow task with BAD_SEARCH_ATTRIBUTES.
    async with Worker(client, task_queue=task_queue, workflows=[Upserter]):
        h = await client.start_workflow(Upserter.run, id="bad-upsert", task_queue=task_queue)
        await h.signal(Upserter.bad)

        async def failed_task() -> Any:
            async for ev in h.fetch_history_events():
                if ev.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                    return ev.workflow_task_failed_event_attributes
            return None

        attrs = await wait_until(failed_task, 30, "workflow task failed")
        assert attrs.cause == WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_BAD_SEARCH_ATTRIBUTES
        assert attrs.failure.message == "invalid value for search attribute SaKeyword of type Keyword: 5"
        await h.terminate("done")

    # So does a child workflow started with a value of the wrong type.
    async with Worker(client, task_queue=task_queue, workflows=[BadChild, Upserter]):
        h = await client.start_workflow(BadChild.run, id="bad-child", task_queue=task_queue)

        async def failed_child_task() -> Any:
            async for ev in h.fetch_history_events():
                if ev.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                    return ev.workflow_task_failed_event_attributes
            return None

        attrs = await wait_until(failed_child_task, 30, "workflow task failed")
        assert attrs.cause == WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_BAD_SEARCH_ATTRIBUTES
        assert attrs.failure.message == (
            "invalid SearchAttributes on StartChildWorkflowCommand: invalid value for search attribute SaInt of "
            f"type Int: abc. WorkflowId=bad-child-child WorkflowType=Upserter Namespace={client.namespace}"
        )
        await h.terminate("done")


async def test_cli_search_attributes(deployment: Deployment, task_queue: str) -> None:
    name = f"sacli-{uuid.uuid4().hex[:10]}"
    await temporal(deployment, "operator", "namespace", "create", "--namespace", name, namespace=name)
    await temporal(deployment, "operator", "search-attribute", "create", "--name", "CliKeyword", "--type", "Keyword",
                   "--name", "CliInt", "--type", "Int", namespace=name)  # fmt: skip
    listed = parse_json(
        await temporal(deployment, "operator", "search-attribute", "list", "-o", "json", namespace=name)
    )
    assert "CliKeyword" in json.dumps(listed)
    for i, (kw, n) in enumerate([("x", 1), ("y", 2)]):
        await temporal(
            deployment, "workflow", "start", "--type", "NoWorker", "--task-queue", task_queue,
            "--workflow-id", f"cli-{i}", "--search-attribute", f'CliKeyword="{kw}"', "--search-attribute",
            f"CliInt={n}", namespace=name,
        )  # fmt: skip

    async def listed_ids(query: str) -> list[str]:
        out = await temporal(deployment, "workflow", "list", "--query", query, "-o", "json", namespace=name)
        rows = parse_json(out) if out.strip() else []
        rows = rows if isinstance(rows, list) else [rows]
        return sorted(r["execution"]["workflowId"] for r in rows)

    await wait_until(lambda: _eq(listed_ids("CliKeyword = 'x'"), ["cli-0"]), 20, "CLI list by custom keyword")
    assert await listed_ids("CliInt >= 1") == ["cli-0", "cli-1"]
    assert await listed_ids("CliKeyword IN ('x', 'y') AND CliInt > 1") == ["cli-1"]
    desc = parse_json(await temporal(deployment, "workflow", "describe", "--workflow-id", "cli-0", "-o", "json",
                                     namespace=name))  # fmt: skip
    assert "CliKeyword" in json.dumps(desc)
    for i in range(2):
        await temporal(deployment, "workflow", "terminate", "--workflow-id", f"cli-{i}", namespace=name)


async def _eq(result: Any, expected: list[str]) -> bool:
    return await result == expected
