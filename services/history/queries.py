"""Queries waiting for a workflow task (delivery path B, reference 2.10). In memory only: a caller whose
query is lost with the host simply times out, as with the real server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Hashable

from temporalio.api.query.v1 import message_pb2 as query_pb2


class QueryRegistry:
    def __init__(self) -> None:
        self._runs: dict[Hashable, dict[str, tuple[query_pb2.WorkflowQuery, asyncio.Future[query_pb2.WorkflowQueryResult | None]]]] = {}

    def add(self, run: Hashable, query: query_pb2.WorkflowQuery) -> tuple[str, asyncio.Future[query_pb2.WorkflowQueryResult | None]]:
        qid = str(uuid.uuid4())
        fut: asyncio.Future[query_pb2.WorkflowQueryResult | None] = asyncio.get_running_loop().create_future()
        self._runs.setdefault(run, {})[qid] = (query, fut)
        return qid, fut

    def remove(self, run: Hashable, qid: str) -> None:
        qs = self._runs.get(run)
        if qs is not None:
            qs.pop(qid, None)
            if not qs:
                del self._runs[run]

    def pending(self, run: Hashable) -> dict[str, query_pb2.WorkflowQuery]:
        return {qid: q for qid, (q, fut) in self._runs.get(run, {}).items() if not fut.done()}

    def resolve(self, run: Hashable, results: dict[str, query_pb2.WorkflowQueryResult]) -> None:
        qs = self._runs.get(run, {})
        for qid, res in results.items():
            entry = qs.get(qid)
            if entry is not None and not entry[1].done():
                entry[1].set_result(res)

    def redispatch_all(self, run: Hashable) -> None:
        """No WFT will carry these queries: their callers fall back to a legacy query task (result None)."""
        for _, fut in self._runs.get(run, {}).values():
            if not fut.done():
                fut.set_result(None)
