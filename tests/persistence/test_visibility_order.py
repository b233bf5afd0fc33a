"""ORDER BY and the predefined attributes (BuildIds, TemporalScheduledById, ...) in the list query language, on
both backends: orders with missing values last, keyset pages that add up to the whole ordered list."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from server.common.errors import InvalidArgument
from server.persistence.interface import Persistence, VisibilityRecord

from .helpers import NS, T0
from .test_visibility_custom import ALIASES, D


def record(i: int, values: dict[str, object], *, closed_after: int | None = None) -> VisibilityRecord:
    start = T0 + timedelta(minutes=i % 4)  # shared start times: the run id breaks ties
    return VisibilityRecord(
        namespace_id=NS,
        workflow_id=f"wf-{i}",
        run_id=f"run-{i:03d}",
        workflow_type="Order" if i % 2 else "Payment",
        task_queue="q",
        status=1 if closed_after is None else 2,
        start_time=start,
        execution_time=start,
        close_time=None if closed_after is None else start + timedelta(seconds=closed_after),
        history_length=i,
        custom_values=dict(values),
    )


async def list_all(p: Persistence, query: str, page_size: int) -> list[str]:
    seen: list[str] = []
    token: bytes | None = None
    while True:
        page, token = await p.visibility.list_executions(NS, query, page_size, token, ALIASES)
        assert len(page) <= page_size
        seen += [r.run_id for r in page]
        if token is None:
            return seen


def expected_order(rows: dict[int, dict[str, object]], keys: list[tuple[str, bool]]) -> list[str]:
    """The reference order: each key ascending/descending with missing values last, then run id descending."""
    items = [(f"run-{i:03d}", v) for i, v in rows.items()]
    items.sort(key=lambda it: it[0], reverse=True)
    for column, desc in reversed(keys):
        present = [it for it in items if it[1].get(column) is not None]
        missing = [it for it in items if it[1].get(column) is None]
        present.sort(key=lambda it: it[1][column], reverse=desc)  # type: ignore[arg-type,return-value]
        items = present + missing
    return [run_id for run_id, _ in items]


@pytest.mark.parametrize(
    ("query", "keys"),
    [
        ("ORDER BY Amount", [("int01", False)]),
        ("ORDER BY Amount DESC", [("int01", True)]),
        ("ORDER BY Region ASC, Amount DESC", [("keyword02", False), ("int01", True)]),
        ("ORDER BY Vip DESC, DueAt", [("bool01", True), ("datetime01", False)]),
        ("ORDER BY Score DESC, Region DESC, DueAt DESC", [("double01", True), ("keyword02", True), ("datetime01", True)]),
    ],
)
async def test_order_by_pages_add_up_to_the_ordered_list(
    persistence: Persistence, query: str, keys: list[tuple[str, bool]]
) -> None:
    rng = random.Random(query)
    rows: dict[int, dict[str, object]] = {}
    for i in range(40):
        values: dict[str, object] = {}
        if rng.random() < 0.8:
            values["int01"] = rng.randint(0, 5)
        if rng.random() < 0.7:
            values["keyword02"] = rng.choice(["eu", "us", "apac"])
        if rng.random() < 0.6:
            values["bool01"] = rng.random() < 0.5
        if rng.random() < 0.7:
            values["datetime01"] = D + timedelta(hours=rng.randint(0, 3))
        if rng.random() < 0.7:
            values["double01"] = rng.choice([-1.5, 0.0, 2.25])
        rows[i] = values
        await persistence.visibility.upsert_execution(record(i, values))
    want = expected_order(rows, keys)
    for page_size in (1, 3, 7, 100):
        assert await list_all(persistence, query, page_size) == want, page_size


async def test_order_by_system_attributes_and_filters(persistence: Persistence) -> None:
    for i in range(6):
        await persistence.visibility.upsert_execution(record(i, {}, closed_after=None if i % 3 == 0 else 60 - i))
    # Open runs have no CloseTime (last), closed ones by close time; the run id breaks ties, descending.
    assert await list_all(persistence, "ORDER BY CloseTime", 2) == [
        "run-004", "run-005", "run-001", "run-002", "run-003", "run-000",
    ]  # fmt: skip
    assert await list_all(persistence, "WorkflowType = 'Order' ORDER BY HistoryLength DESC", 1) == [
        "run-005", "run-003", "run-001",
    ]  # fmt: skip
    assert await list_all(persistence, "ORDER BY ExecutionDuration DESC, WorkflowId", 4) == [
        "run-001", "run-002", "run-004", "run-005", "run-000", "run-003",
    ]  # fmt: skip
    # Counting ignores the order; a GROUP BY cannot have one.
    assert await persistence.visibility.count_executions(NS, "ORDER BY StartTime", ALIASES) == 6


async def test_page_tokens_belong_to_their_order(persistence: Persistence) -> None:
    for i in range(4):
        await persistence.visibility.upsert_execution(record(i, {"int01": i}))
    vis = persistence.visibility
    _, ordered = await vis.list_executions(NS, "ORDER BY Amount", 2, None, ALIASES)
    _, default = await vis.list_executions(NS, "", 2, None, ALIASES)
    assert ordered and default
    with pytest.raises(InvalidArgument, match="invalid next_page_token"):
        await vis.list_executions(NS, "", 2, ordered, ALIASES)
    with pytest.raises(InvalidArgument, match="invalid next_page_token"):
        await vis.list_executions(NS, "ORDER BY Amount", 2, default, ALIASES)
    with pytest.raises(InvalidArgument, match="invalid next_page_token"):
        await vis.list_executions(NS, "ORDER BY Amount, Region", 2, ordered, ALIASES)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("ORDER BY Notes", "invalid query: operation is not supported: unable to sort by search attribute type Text"),
        ("GROUP BY Region ORDER BY Amount", "'ORDER BY' clause is not supported with 'GROUP BY' clause"),
        ("ORDER BY Missing", "column name 'Missing' is not a valid search attribute"),
        ("ORDER BY Amount ORDER BY Region", "unexpected 'ORDER'"),
    ],
)
async def test_order_by_errors(persistence: Persistence, query: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        await persistence.visibility.list_executions(NS, query, 10, None, ALIASES)


async def test_predefined_attributes_are_queryable(persistence: Persistence) -> None:
    vis = persistence.visibility
    await vis.upsert_execution(
        record(1, {
            "build_ids": ["unversioned", "unversioned:abc"], "temporal_change_version": ["fix-1", "fix-2"],
            "temporal_scheduled_by_id": "nightly", "temporal_scheduled_start_time": D,
            "temporal_schedule_paused": False, "batcher_user": "ops@example.com",
        })
    )  # fmt: skip
    await vis.upsert_execution(record(2, {"build_ids": ["versioned:v2"], "temporal_change_version": ["fix-2"]}))
    await vis.upsert_execution(record(3, {}))

    async def found(query: str) -> list[int]:
        page, _ = await vis.list_executions(NS, query, 100, None, ALIASES)
        assert await vis.count_executions(NS, query, ALIASES) == len(page)
        return sorted(int(r.workflow_id.split("-")[1]) for r in page)

    assert await found("BuildIds = 'unversioned'") == [1]
    assert await found("BuildIds IN ('versioned:v2', 'unversioned:abc')") == [1, 2]
    assert await found("TemporalChangeVersion = 'fix-2'") == [1, 2]
    assert await found("TemporalChangeVersion IS NULL") == [3]
    assert await found("TemporalScheduledById = 'nightly'") == [1]
    assert await found("TemporalScheduledStartTime >= '2001-02-03T04:05:06Z'") == [1]
    assert await found("TemporalSchedulePaused = false") == [1]
    assert await found("BatcherUser STARTS_WITH 'ops'") == [1]
    assert await found("ORDER BY TemporalScheduledById") == [1, 2, 3]
    with pytest.raises(InvalidArgument, match="TemporalScheduledById of type Keyword: 5"):
        await vis.list_executions(NS, "TemporalScheduledById = 5", 10, None, ALIASES)


async def test_system_workflows_are_listed_only_when_the_division_is_named(persistence: Persistence) -> None:
    """Temporal's rule: rows with a TemporalNamespaceDivision (schedulers, batch jobs) stay out of every list and
    count whose query does not name the division."""
    vis = persistence.visibility
    await vis.upsert_execution(record(1, {}))
    await vis.upsert_execution(record(2, {"temporal_namespace_division": "TemporalBatcher"}))
    await vis.upsert_execution(record(3, {"temporal_namespace_division": "TemporalScheduler"}))

    async def found(query: str) -> list[int]:
        page, _ = await vis.list_executions(NS, query, 100, None, ALIASES)
        assert await vis.count_executions(NS, query, ALIASES) == len(page)
        return sorted(int(r.workflow_id.split("-")[1]) for r in page)

    assert await found("") == [1]
    assert await found("WorkflowType = 'Order'") == [1]  # run 3 is an Order too, but a system one
    assert await found("TemporalNamespaceDivision = 'TemporalBatcher'") == [2]
    assert await found("TemporalNamespaceDivision IS NOT NULL") == [2, 3]
    assert await found("TemporalNamespaceDivision IS NULL OR TemporalNamespaceDivision IS NOT NULL") == [1, 2, 3]
    assert await vis.count_executions_by_status(NS, "GROUP BY ExecutionStatus", ALIASES) == {1: 1}
