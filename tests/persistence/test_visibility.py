"""Visibility upsert/list/count through the list-filter language, on both backends."""

from __future__ import annotations

from datetime import timedelta

import pytest

from server.common.errors import InvalidArgument
from server.persistence.interface import Persistence, VisibilityRecord

from .helpers import NS, T0

RUNNING, COMPLETED, FAILED = 1, 2, 3


def record(
    i: int, *, status: int = RUNNING, wf_type: str = "Order", closed: bool = False, **kw: object
) -> VisibilityRecord:
    start = T0 + timedelta(minutes=i)
    return VisibilityRecord(
        namespace_id=kw.pop("namespace_id", NS),  # type: ignore[arg-type]
        workflow_id=f"wf-{i}",
        run_id=f"run-{i}",
        workflow_type=wf_type,
        task_queue="q",
        status=status,
        start_time=start,
        execution_time=start,
        close_time=start + timedelta(seconds=30) if closed else None,
        history_length=i,
        **kw,  # type: ignore[arg-type]
    )


async def seed(p: Persistence) -> None:
    await p.visibility.upsert_execution(record(1, status=COMPLETED, closed=True))
    await p.visibility.upsert_execution(record(2, status=FAILED, wf_type="Payment", closed=True))
    await p.visibility.upsert_execution(record(3, parent_workflow_id="wf-1", parent_run_id="run-1"))
    await p.visibility.upsert_execution(record(4, wf_type="Payment"))
    await p.visibility.upsert_execution(record(5, namespace_id="other-ns"))


async def ids(p: Persistence, query: str) -> list[int]:
    page, _ = await p.visibility.list_executions(NS, query, 100, None)
    return [int(r.workflow_id.split("-")[1]) for r in page]


async def test_upsert_roundtrip_and_overwrite(persistence: Persistence) -> None:
    rec = record(
        1,
        memo=b"memo",
        search_attributes=b"sa",
        root_workflow_id="wf-1",
        root_run_id="run-1",
        history_size_bytes=123,
        state_transition_count=7,
    )
    await persistence.visibility.upsert_execution(rec)
    page, token = await persistence.visibility.list_executions(NS, "", 10, None)
    assert page == [rec] and token is None
    closed = record(1, status=COMPLETED, closed=True, memo=b"memo2")
    await persistence.visibility.upsert_execution(closed)
    page, _ = await persistence.visibility.list_executions(NS, "", 10, None)
    assert page == [closed]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", [4, 3, 2, 1]),
        ("WorkflowType = 'Payment'", [4, 2]),
        ("WorkflowType != 'Payment'", [3, 1]),
        ("ExecutionStatus = 'Running'", [4, 3]),
        ("ExecutionStatus = 2", [1]),
        ("ExecutionStatus IN ('Completed', 'Failed')", [2, 1]),
        ("ExecutionStatus NOT IN ('Completed', 'Failed')", [4, 3]),
        ("WorkflowId = 'wf-3' OR (WorkflowType = 'Payment' AND ExecutionStatus = 'Failed')", [3, 2]),
        ("StartTime > '2026-01-01T00:02:00Z'", [4, 3]),
        ("StartTime >= '2026-01-01T00:02:00Z'", [4, 3, 2]),
        ("StartTime BETWEEN '2026-01-01T00:02:00Z' AND '2026-01-01T00:03:00.000000+00:00'", [3, 2]),
        ("StartTime < '2026-01-01T01:01:30+01:00'", [1]),
        ("CloseTime IS NULL", [4, 3]),
        ("CloseTime IS NOT NULL", [2, 1]),
        ("ParentWorkflowId IS NULL", [4, 2, 1]),
        ("ParentWorkflowId = 'wf-1'", [3]),
        ("WorkflowId STARTS_WITH 'wf-'", [4, 3, 2, 1]),
        ("WorkflowId STARTS_WITH 'WF-'", []),  # case-sensitive on both backends
        ("WorkflowId NOT STARTS_WITH 'wf-1'", [4, 3, 2]),
        ("HistoryLength >= 3", [4, 3]),
        ("`TaskQueue` = 'q' and HistoryLength > 99", []),
        ("TaskQueue = 'q' and not (HistoryLength > 1)", [1]),
        ("RunId = 'run-2'", [2]),
        ("ExecutionDuration > '29s'", [2, 1]),
    ],
)
async def test_list_filters(persistence: Persistence, query: str, expected: list[int]) -> None:
    await seed(persistence)
    assert await ids(persistence, query) == expected


async def test_pagination_is_stable_newest_first(persistence: Persistence) -> None:
    for i in range(7):
        await persistence.visibility.upsert_execution(record(i))
    # Two runs with the same start time: run id breaks the tie.
    await persistence.visibility.upsert_execution(
        VisibilityRecord(NS, "wf-3b", "run-3b", "Order", "q", RUNNING, T0 + timedelta(minutes=3), T0)
    )
    seen: list[str] = []
    token: bytes | None = None
    while True:
        page, token = await persistence.visibility.list_executions(NS, "", 3, token)
        assert len(page) <= 3
        seen += [r.run_id for r in page]
        if token is None:
            break
    assert seen == ["run-6", "run-5", "run-4", "run-3b", "run-3", "run-2", "run-1", "run-0"]
    with pytest.raises(InvalidArgument):
        await persistence.visibility.list_executions(NS, "", 3, b"garbage")


async def test_count_and_group_by(persistence: Persistence) -> None:
    await seed(persistence)
    vis = persistence.visibility
    assert await vis.count_executions(NS, "") == 4
    assert await vis.count_executions(NS, "WorkflowType = 'Payment'") == 2
    assert await vis.count_executions("other-ns", "") == 1
    assert await vis.count_executions_by_status(NS, "GROUP BY ExecutionStatus") == {
        RUNNING: 2,
        COMPLETED: 1,
        FAILED: 1,
    }
    assert await vis.count_executions_by_status(NS, "WorkflowType = 'Payment' GROUP BY ExecutionStatus") == {
        RUNNING: 1,
        FAILED: 1,
    }
    with pytest.raises(InvalidArgument):
        await vis.list_executions(NS, "GROUP BY ExecutionStatus", 10, None)


async def test_delete(persistence: Persistence) -> None:
    await seed(persistence)
    await persistence.visibility.delete_execution(NS, "run-3")
    await persistence.visibility.delete_execution(NS, "run-404")
    assert await ids(persistence, "") == [4, 2, 1]
    await persistence.visibility.delete_execution(NS, "run-5")  # wrong namespace: untouched
    assert await persistence.visibility.count_executions("other-ns", "") == 1


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("Foo = 'x'", "Foo"),
        ("historylength > 1", "historylength"),  # names are case-sensitive, as in Temporal
        ("WorkflowId = ", "expected a value"),
        ("WorkflowId = 'x' ORDER BY Nope", "Nope"),
        ("ExecutionStatus = 'Sleeping'", "Sleeping"),
        ("StartTime > 'yesterday'", "unable to parse datetime 'yesterday'"),
        ("(WorkflowId = 'x'", "')'"),
        ("WorkflowId = 'x' AND", "search attribute"),
        ("HistoryLength STARTS_WITH 'x'", "STARTS_WITH"),
        ("WorkflowId = 'it''s' GROUP BY HistoryLength", "GROUP BY"),
        ("WorkflowId ~ 'x'", "unexpected character"),
    ],
)
async def test_bad_queries_are_invalid_argument(persistence: Persistence, query: str, problem: str) -> None:
    with pytest.raises(InvalidArgument, match=problem.replace("(", r"\(").replace(")", r"\)")):
        await persistence.visibility.list_executions(NS, query, 10, None)
    with pytest.raises(InvalidArgument):
        await persistence.visibility.count_executions(NS, query)


async def test_values_are_bound_not_interpolated(persistence: Persistence) -> None:
    await seed(persistence)
    assert await ids(persistence, "WorkflowId = 'x'' OR ''1''=''1'") == []
    assert await ids(persistence, 'WorkflowId = "wf-1"') == [1]
    assert await persistence.visibility.count_executions(NS, "") == 4  # table intact
