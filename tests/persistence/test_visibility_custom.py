"""Custom search attributes in the list query language, on both backends (the shared query-language suite)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from server.common.errors import InvalidArgument
from server.persistence.interface import Persistence, VisibilityRecord

from .helpers import NS, T0

# slot -> alias, as a namespace's config.custom_search_attribute_aliases holds them.
ALIASES = {
    "Keyword01": "CustomerId",
    "Keyword02": "Region",
    "Text01": "Notes",
    "Int01": "Amount",
    "Double01": "Score",
    "Bool01": "Vip",
    "Datetime01": "DueAt",
    "KeywordList01": "Tags",
}
D = datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC)

ROWS: dict[int, dict[str, object]] = {
    1: {"keyword01": "cust-a", "keyword02": "eu", "text01": "Rush order, fragile", "int01": 10, "double01": 1.5,
        "bool01": True, "datetime01": D, "keyword_list01": ["red", "big"]},
    2: {"keyword01": "cust-b", "keyword02": "us", "text01": "standard delivery", "int01": 20, "double01": 2.5,
        "bool01": False, "datetime01": D + timedelta(days=1), "keyword_list01": ["blue"]},
    3: {"keyword01": "other", "keyword02": "eu", "int01": 30, "double01": -1.0,
        "datetime01": D + timedelta(days=2), "keyword_list01": ["red", "Blue"]},
    4: {},
}  # fmt: skip


def record(i: int, values: dict[str, object], namespace_id: str = NS) -> VisibilityRecord:
    start = T0 + timedelta(minutes=i)
    return VisibilityRecord(
        namespace_id=namespace_id,
        workflow_id=f"wf-{i}",
        run_id=f"run-{i}",
        workflow_type="Order",
        task_queue="q",
        status=1,
        start_time=start,
        execution_time=start,
        custom_values=dict(values),
    )


async def seed(p: Persistence) -> None:
    for i, values in ROWS.items():
        await p.visibility.upsert_execution(record(i, values))
    # Another namespace using the same slots for other attributes: never visible here.
    await p.visibility.upsert_execution(
        record(9, {"keyword01": "cust-a", "int01": 10}, namespace_id="other-ns")
    )


async def ids(p: Persistence, query: str) -> list[int]:
    page, _ = await p.visibility.list_executions(NS, query, 100, None, ALIASES)
    found = sorted(int(r.workflow_id.split("-")[1]) for r in page)
    assert await p.visibility.count_executions(NS, query, ALIASES) == len(found)
    return found


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # Keyword
        ("CustomerId = 'cust-a'", [1]),
        ("CustomerId != 'cust-a'", [2, 3]),  # runs without a value match neither = nor !=, as in SQL
        ("CustomerId > 'cust-a'", [2, 3]),
        ("CustomerId >= 'cust-b'", [2, 3]),
        ("CustomerId < 'cust-b'", [1]),
        ("CustomerId <= 'cust-b'", [1, 2]),
        ("CustomerId IN ('cust-a', 'other')", [1, 3]),
        ("CustomerId NOT IN ('cust-a', 'other')", [2]),
        ("CustomerId BETWEEN 'cust-a' AND 'cust-b'", [1, 2]),
        ("CustomerId NOT BETWEEN 'cust-a' AND 'cust-b'", [3]),
        ("CustomerId STARTS_WITH 'cust-'", [1, 2]),
        ("CustomerId NOT STARTS_WITH 'cust-'", [3]),
        ("CustomerId IS NULL", [4]),
        ("CustomerId IS NOT NULL", [1, 2, 3]),
        ("`CustomerId` = 'cust-b'", [2]),
        # Int
        ("Amount = 20", [2]),
        ("Amount != 20", [1, 3]),
        ("Amount > 10", [2, 3]),
        ("Amount >= 20", [2, 3]),
        ("Amount < 20", [1]),
        ("Amount <= 20", [1, 2]),
        ("Amount IN (10, 30)", [1, 3]),
        ("Amount NOT IN (10, 30)", [2]),
        ("Amount BETWEEN 15 AND 30", [2, 3]),
        ("Amount > 19.5", [2, 3]),
        ("Amount IS NULL", [4]),
        # Double
        ("Score = 1.5", [1]),
        ("Score > 0", [1, 2]),
        ("Score < 0", [3]),
        ("Score BETWEEN -1 AND 1.5", [1, 3]),
        ("Score IN (2.5, -1.0)", [2, 3]),
        ("Score IS NOT NULL", [1, 2, 3]),
        # Bool
        ("Vip = true", [1]),
        ("Vip = FALSE", [2]),
        ("Vip != true", [2]),
        ("Vip IS NULL", [3, 4]),
        # Datetime
        ("DueAt = '2001-02-03T04:05:06Z'", [1]),
        ("DueAt = '2001-02-03T05:05:06+01:00'", [1]),
        ("DueAt > '2001-02-03T04:05:06Z'", [2, 3]),
        ("DueAt >= '2001-02-04T04:05:06Z'", [2, 3]),
        ("DueAt < '2001-02-04T00:00:00Z'", [1]),
        ("DueAt <= '2001-02-04T04:05:06Z'", [1, 2]),
        ("DueAt BETWEEN '2001-02-04T00:00:00Z' AND '2001-02-06T00:00:00Z'", [2, 3]),
        ("DueAt IN ('2001-02-03T04:05:06Z', '2001-02-05T04:05:06Z')", [1, 3]),
        ("DueAt != '2001-02-03T04:05:06Z'", [2, 3]),
        ("DueAt = 981173106000000000", [1]),  # nanoseconds since the epoch
        ("DueAt IS NULL", [4]),
        # KeywordList: = is "contains"
        ("Tags = 'red'", [1, 3]),
        ("Tags = 'blue'", [2]),  # case-sensitive
        ("Tags != 'red'", [2]),
        ("Tags IN ('big', 'Blue')", [1, 3]),
        ("Tags NOT IN ('big', 'Blue')", [2]),
        ("Tags = 're'", []),  # whole items only
        ("Tags IS NULL", [4]),
        ("Tags IS NOT NULL", [1, 2, 3]),
        # Text: every word of the value is a word of the attribute, case-insensitive
        ("Notes = 'rush'", [1]),
        ("Notes = 'FRAGILE order'", [1]),
        ("Notes = 'delivery'", [2]),
        ("Notes = 'deliv'", []),
        ("Notes != 'rush'", [2]),
        ("Notes IS NULL", [3, 4]),
        # Combined with system attributes and each other
        ("Region = 'eu' AND Amount > 10", [3]),
        ("(Region = 'us' OR Tags = 'big') AND WorkflowType = 'Order'", [1, 2]),
        ("NOT (Region = 'eu')", [2]),
        ("Region = 'eu' AND ExecutionStatus = 'Running' AND CustomerId IS NOT NULL", [1, 3]),
    ],
)
async def test_custom_attribute_operators(persistence: Persistence, query: str, expected: list[int]) -> None:
    await seed(persistence)
    assert await ids(persistence, query) == expected


async def test_upsert_replaces_and_clears_values(persistence: Persistence) -> None:
    await seed(persistence)
    await persistence.visibility.upsert_execution(record(1, {"keyword01": "changed"}))
    assert await ids(persistence, "CustomerId = 'changed'") == [1]
    assert await ids(persistence, "Amount = 10") == []
    assert await ids(persistence, "Tags = 'big'") == []


async def test_group_by_keyword(persistence: Persistence) -> None:
    await seed(persistence)
    groups = await persistence.visibility.count_executions_grouped(NS, "GROUP BY Region", ALIASES)
    assert groups == [("eu", 2), (None, 1), ("us", 1)] or groups == [("eu", 2), ("us", 1), (None, 1)]
    groups = await persistence.visibility.count_executions_grouped(NS, "Amount > 10 GROUP BY Region", ALIASES)
    assert sorted(groups, key=str) == [("eu", 1), ("us", 1)]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("Unknown = 'x'", "invalid query: invalid expression: column name 'Unknown' is not a valid search attribute"),
        ("Amount = 'ten'", 'invalid query: invalid expression: invalid value type for search attribute Amount of '
         'type Int: "ten" (type: string)'),
        ("Score = true", "invalid value type for search attribute Score of type Double: true (type: bool)"),
        ("Vip = 'yes'", 'invalid value type for search attribute Vip of type Bool: "yes" (type: string)'),
        ("CustomerId = 5", "invalid value type for search attribute CustomerId of type Keyword: 5 (type: int64)"),
        ("Tags = 1.5", "invalid value type for search attribute Tags of type KeywordList: 1.5 (type: float64)"),
        ("DueAt > 'tomorrow'", "invalid query: invalid expression: unable to parse datetime 'tomorrow'"),
        ("Tags > 'a'", "invalid query: operation is not supported: operator '>' not supported for KeywordList "
         "type search attribute 'Tags'"),
        ("Notes IN ('a')", "operator 'IN' not supported for Text type search attribute 'Notes'"),
        ("Notes < 'a'", "operator '<' not supported for Text type search attribute 'Notes'"),
        ("Amount STARTS_WITH 'a'", "operator 'STARTS_WITH' not supported for Int type search attribute 'Amount'"),
        ("Tags BETWEEN 'a' AND 'b'", "invalid query: invalid expression: cannot do range condition on search "
         "attribute 'Tags' of type KeywordList"),
        ("Vip BETWEEN true AND false", "cannot do range condition on search attribute 'Vip' of type Bool"),
        ("GROUP BY Amount", "invalid query: operation is not supported: 'GROUP BY' clause is not supported for "
         "search attribute Amount"),
    ],
)  # fmt: skip
async def test_custom_attribute_errors(persistence: Persistence, query: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        await persistence.visibility.count_executions(NS, query, ALIASES)
    assert message in err.value.message


async def test_unregistered_attribute_is_unknown_even_if_slot_has_data(persistence: Persistence) -> None:
    await seed(persistence)
    with pytest.raises(InvalidArgument, match="column name 'CustomerId' is not a valid search attribute"):
        await persistence.visibility.list_executions(NS, "CustomerId = 'cust-a'", 10, None)
