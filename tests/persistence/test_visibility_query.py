"""The list-filter parser on its own: SQL shape, bound values, time and duration parsing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from server.common.errors import InvalidArgument
from server.persistence.sql.tx import to_micros
from server.persistence.visibility_query import parse_query, parse_time


def test_empty_query_matches_everything() -> None:
    for q in ("", "   "):
        flt = parse_query(q)
        assert (flt.where, flt.params, flt.group_by_status) == ("1 = 1", [], False)


def test_values_become_parameters() -> None:
    flt = parse_query("WorkflowId = 'a''b' and WorkflowType in ('X', \"Y\") or RunId != 'r'")
    assert flt.where == "((workflow_id = ? AND workflow_type IN (?, ?)) OR run_id != ?)"
    assert flt.params == ["a'b", "X", "Y", "r"]


def test_precedence_and_parentheses() -> None:
    flt = parse_query("WorkflowId = 'a' AND (RunId = 'b' OR NOT RunId = 'c')")
    assert flt.where == "(workflow_id = ? AND ((run_id = ? OR (NOT run_id = ?))))"


def test_status_names_and_numbers() -> None:
    assert parse_query("ExecutionStatus = 'TimedOut'").params == [7]
    assert parse_query("ExecutionStatus IN ('Running', 6)").params == [1, 6]


def test_times() -> None:
    base = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    assert parse_time("2024-05-06T07:08:09.123456789Z") == to_micros(base)  # nanoseconds truncated
    assert parse_time("2024-05-06T09:08:09.123456+02:00") == to_micros(base)
    assert parse_query("StartTime > 1714979289123456789").params == [to_micros(base)]  # int = epoch nanos
    flt = parse_query("CloseTime BETWEEN '2024-01-01T00:00:00Z' AND '2024-01-02T00:00:00Z'")
    assert flt.where == "close_time BETWEEN ? AND ?"
    assert flt.params[1] - flt.params[0] == 86_400_000_000


def test_durations() -> None:
    assert parse_query("ExecutionDuration >= '1h30m'").params == [5_400_000_000]
    assert parse_query("ExecutionDuration < '250ms'").params == [250_000]
    assert parse_query("ExecutionDuration < 2000").params == [2]  # nanoseconds
    with pytest.raises(InvalidArgument, match="duration"):
        parse_query("ExecutionDuration > 'soon'")


def test_starts_with_and_null() -> None:
    flt = parse_query("WorkflowType STARTS_WITH 'Ord' AND ParentWorkflowId IS NOT NULL AND CloseTime IS NULL")
    assert flt.params == [3, "Ord"]
    assert "substr(workflow_type, 1, ?) = ?" in flt.where
    assert "(parent_workflow_id IS NOT NULL AND parent_workflow_id <> '')" in flt.where
    assert "close_time IS NULL" in flt.where


def test_group_by() -> None:
    flt = parse_query("WorkflowType = 'x' group by ExecutionStatus")
    assert flt.group_by_status and flt.params == ["x"]
    assert parse_query("GROUP BY ExecutionStatus").where == "1 = 1"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("CustomKeywordField = 'x'", "column name 'CustomKeywordField' is not a valid search attribute"),
        ("WorkflowId", "unsupported operator 'end of query'"),
        ("WorkflowId = 'x' WorkflowType = 'y'", "unexpected 'WorkflowType'"),
        ("WorkflowId IN ()", "expected a value"),
        ("HistoryLength = 'many'", 'HistoryLength of type Int: "many" (type: string)'),
        ("HistoryLength = true", "HistoryLength of type Int: true (type: bool)"),
        ("WorkflowId = 5", "WorkflowId of type Keyword: 5 (type: int64)"),
        ("WorkflowId NOT = 'x'", "expected IN, BETWEEN or STARTS_WITH"),
        ("StartTime BETWEEN '2024-01-01T00:00:00Z'", "expected AND"),
        ("WorkflowId = 'unterminated", "unexpected character"),
        ("ORDER BY StartTime SIDEWAYS", "unexpected 'SIDEWAYS'"),
        ("GROUP BY ExecutionStatus ORDER BY StartTime", "'ORDER BY' clause is not supported with 'GROUP BY'"),
        ("ORDER BY StartTime, ", "expected a search attribute after ORDER BY"),
        ("GROUP BY StartTime", "'GROUP BY' clause is not supported for search attribute StartTime"),
        ("GROUP BY WorkflowType", "'GROUP BY' clause is not supported for search attribute WorkflowType"),
    ],
)
def test_errors_name_the_problem(query: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_query(query)
    assert message in err.value.message
