"""Workflows for tests/e2e/test_search_attributes.py."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from temporalio import workflow
from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    SearchAttributeUpdate,
    TypedSearchAttributes,
)

KEYWORD = SearchAttributeKey.for_keyword("SaKeyword")
TEXT = SearchAttributeKey.for_text("SaText")
INT = SearchAttributeKey.for_int("SaInt")
DOUBLE = SearchAttributeKey.for_float("SaDouble")
BOOL = SearchAttributeKey.for_bool("SaBool")
DATETIME = SearchAttributeKey.for_datetime("SaDatetime")
KEYWORD_LIST = SearchAttributeKey.for_keyword_list("SaKeywordList")
# The Keyword attribute written as an Int: a wrong-type upsert.
KEYWORD_AS_INT = SearchAttributeKey.for_int("SaKeyword")


def _own_view() -> dict[str, Any]:
    typed = workflow.info().typed_search_attributes
    out: dict[str, Any] = {}
    for pair in typed:
        value = pair.value
        out[pair.key.name] = value.isoformat() if isinstance(value, datetime) else value
    return out


@workflow.defn
class Upserter:
    """Waits for signals: "upsert" applies [name, value] pairs (value None removes the attribute), "bad" upserts
    an Int into the Keyword attribute, "finish" ends the run. The query "own" returns the workflow's own view of
    its typed search attributes."""

    def __init__(self) -> None:
        self.done = False
        self.applied = 0

    @workflow.signal
    def upsert(self, pairs: Any) -> None:
        keys = {k.name: k for k in (KEYWORD, TEXT, INT, DOUBLE, BOOL, DATETIME, KEYWORD_LIST)}
        updates: list[SearchAttributeUpdate] = []
        for name, value in pairs:
            key = keys[str(name)]
            if value is None:
                updates.append(key.value_unset())
            elif key is DATETIME:
                updates.append(DATETIME.value_set(datetime.fromisoformat(str(value))))
            else:
                updates.append(key.value_set(value))  # type: ignore[arg-type]
        workflow.upsert_search_attributes(updates)
        self.applied += 1

    @workflow.signal
    def bad(self) -> None:
        workflow.upsert_search_attributes([KEYWORD_AS_INT.value_set(5)])

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.query
    def own(self) -> dict[str, Any]:
        return _own_view()

    @workflow.query
    def upserts(self) -> int:
        return self.applied

    @workflow.run
    async def run(self) -> dict[str, Any]:
        await workflow.wait_condition(lambda: self.done)
        return _own_view()


INT_AS_KEYWORD = SearchAttributeKey.for_keyword("SaInt")


@workflow.defn
class BadChild:
    """Starts a child whose Int attribute is given a string: the command fails the workflow task."""

    @workflow.run
    async def run(self) -> None:
        await workflow.execute_child_workflow(
            Upserter.run, id=f"{workflow.info().workflow_id}-child",
            search_attributes=TypedSearchAttributes([SearchAttributePair(INT_AS_KEYWORD, "abc")]),
        )  # fmt: skip


@workflow.defn
class Quick:
    """Completes in its first workflow task (test_visibility_queries: BuildIds)."""

    @workflow.run
    async def run(self) -> str:
        return "done"


@workflow.defn
class Patched:
    """Takes two patches: the SDK records them in TemporalChangeVersion (test_visibility_queries)."""

    @workflow.run
    async def run(self) -> str:
        workflow.patched("fix-1")
        workflow.patched("fix-2")
        return "done"


@workflow.defn
class Counter:
    """Returns one more than the last completion result a schedule handed it (test_schedules)."""

    @workflow.run
    async def run(self) -> int:
        last = workflow.get_last_completion_result(int) if workflow.has_last_completion_result() else 0
        return int(last or 0) + 1
