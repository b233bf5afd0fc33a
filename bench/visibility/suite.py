"""The measured operations: Temporal query strings through SqlVisibilityStore's public methods, each with its
parameters varied per repetition (seeded), and the visibility write path (upsert_execution)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.report import percentile
from bench.visibility import fixture as fx
from server.persistence.interface import VisibilityStore
from server.persistence.sql.tx import from_micros

PAGE = 100


@dataclass
class Case:
    name: str
    kind: str  # list | count | group: which target applies
    make: Callable[[random.Random], str]  # a query string for one repetition


@dataclass
class Result:
    name: str
    kind: str
    samples_ms: list[float] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)  # rows returned / counted, to show selectivity
    example: str = ""

    @property
    def p50(self) -> float:
        return percentile(self.samples_ms, 50)

    @property
    def p99(self) -> float:
        return percentile(self.samples_ms, 99)


TARGET_MS = {"list": 20.0, "count": 200.0, "group": 300.0}


def _rfc3339(micros: int) -> str:
    return from_micros(micros).strftime("%Y-%m-%dT%H:%M:%SZ")


def cases(layout: fx.Layout) -> list[Case]:
    lo, hi = layout.start_micros, layout.end_micros
    day = 86_400_000_000

    def type_status(r: random.Random) -> str:
        status = fx.STATUS_NAMES[r.choice(list(fx.STATUS_NAMES))]
        return f"WorkflowType = '{r.choice(fx.WORKFLOW_TYPES)}' AND ExecutionStatus = '{status}'"

    def customer_due(r: random.Random) -> str:
        a = r.randrange(lo, hi)
        return (f"CustomerId = '{fx.customer(r.randrange(fx.CUSTOMERS))}' AND DueAt BETWEEN '{_rfc3339(a)}' "
                f"AND '{_rfc3339(a + 14 * day)}'")  # fmt: skip

    def region_due(r: random.Random) -> str:
        a = r.randrange(lo, hi)
        return (
            f"Region = '{r.choice(fx.REGIONS)}' AND DueAt BETWEEN '{_rfc3339(a)}' AND '{_rfc3339(a + day)}'"
        )

    def amount(r: random.Random) -> str:
        width = int(fx.AMOUNT_MAX * r.uniform(0.01, 0.5))
        a = r.randrange(fx.AMOUNT_MAX - width)
        return f"Amount BETWEEN {a} AND {a + width}"

    def notes(r: random.Random) -> str:
        words = r.sample(fx.VOCABULARY, r.choice([1, 1, 2]))
        return f"Notes = '{' '.join(w.upper() if r.random() < 0.3 else w for w in words)}'"

    def tags(r: random.Random) -> str:
        if r.random() < 0.5:
            return f"Tags = '{fx.tag(r.randrange(fx.TAGS))}'"
        return f"Tags IN ('{fx.tag(r.randrange(fx.TAGS))}', '{fx.tag(r.randrange(fx.TAGS))}')"

    return [
        Case("list: WorkflowType + ExecutionStatus", "list", type_status),
        Case("list: CustomerId + DueAt 14-day range", "list", customer_due),
        Case("list: Region + DueAt 1-day range", "list", region_due),
        Case("list: all, newest first", "list", lambda r: ""),
        Case("list: Text match (Notes)", "list", notes),
        Case("list: KeywordList (Tags = / IN)", "list", tags),
        Case("count: all", "count", lambda r: ""),
        Case("count: ExecutionStatus = Running", "count", lambda r: "ExecutionStatus = 'Running'"),
        Case("count: WorkflowType + ExecutionStatus", "count", type_status),
        Case("count: Amount (Int) range 1-50%", "count", amount),
        Case("count: Text match (Notes)", "count", notes),
        Case("count: KeywordList (Tags = / IN)", "count", tags),
        Case("count: GROUP BY ExecutionStatus", "group", lambda r: "GROUP BY ExecutionStatus"),
        Case("count: GROUP BY Region (Keyword)", "group", lambda r: "GROUP BY Region"),
    ]


async def _once(store: VisibilityStore, case: Case, query: str) -> int:
    ns, aliases = fx.NAMESPACE_ID, fx.ALIASES
    if case.kind == "list":
        page, _ = await store.list_executions(ns, query, PAGE, None, aliases)
        return len(page)
    if query.startswith("GROUP BY ExecutionStatus"):  # what the frontend calls for it
        return sum((await store.count_executions_by_status(ns, query, aliases)).values())
    if "GROUP BY" in query:
        return sum(c for _, c in await store.count_executions_grouped(ns, query, aliases))
    return await store.count_executions(ns, query, aliases)


async def measure(store: VisibilityStore, case: Case, repetitions: int, warmup: int, seed: int) -> Result:
    """Sequential repetitions (one request at a time); the warm-up runs use other parameters and are dropped."""
    rng = random.Random(f"{seed}:{case.name}")
    result = Result(case.name, case.kind)
    for i in range(warmup + repetitions):
        query = case.make(rng)
        t0 = time.perf_counter()
        n = await _once(store, case, query)
        elapsed = (time.perf_counter() - t0) * 1000
        if i >= warmup:
            result.samples_ms.append(elapsed)
            result.rows.append(n)
            result.example = result.example or query
    return result


@dataclass
class WriteResult:
    label: str
    concurrency: int
    samples_ms: list[float]
    seconds: float

    @property
    def rows_per_s(self) -> float:
        return len(self.samples_ms) / self.seconds if self.seconds else 0.0


def write_plan(layout: fx.Layout, count: int, first_new: int, skip_open: int) -> list[tuple[int, int | None]]:
    """Half closes of open runs (status Running -> Completed/Failed: a non-HOT update that moves index entries),
    half new runs (inserts). (row number, status override)."""
    closes: list[tuple[int, int | None]] = []
    i, seen = 0, 0
    while len(closes) < count // 2 and i < layout.rows:
        if fx.is_open(layout, i):
            if seen >= skip_open:
                closes.append((i, 2 if i % 5 else 3))
            seen += 1
        i += 7
    news: list[tuple[int, int | None]] = [(first_new + k, None) for k in range(count - len(closes))]
    plan = [x for pair in zip(closes, news, strict=False) for x in pair]
    return plan + news[len(closes) :]


async def measure_writes(
    store: VisibilityStore,
    layout: fx.Layout,
    plan: list[tuple[int, int | None]],
    concurrency: int,
    label: str,
) -> WriteResult:
    records = [fx.record(layout, i, status=s) for i, s in plan]
    queue = iter(records)
    samples: list[float] = []

    async def worker() -> None:
        for r in queue:
            t0 = time.perf_counter()
            await store.upsert_execution(r)
            samples.append((time.perf_counter() - t0) * 1000)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return WriteResult(label, concurrency, samples, time.perf_counter() - t0)
