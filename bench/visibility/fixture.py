"""The benchmark's runs: deterministic rows (several workflow types and statuses, open and closed, custom
attributes of every type), bulk-loaded with COPY, and VisibilityRecords for the measured write path.

Start times grow with the row number (runs are recorded roughly in start order, as in a live cluster).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from server.persistence.interface import VisibilityRecord
from server.persistence.sql.tx import from_micros
from server.persistence.visibility_query import slot_value

NAMESPACE_ID = "3f1c6a0e-7d2b-4c55-9a1e-5b0f1d2c3e4f"
# slot -> alias, as a namespace's custom_search_attribute_aliases holds them: one or more slots of every type.
ALIASES = {
    "Keyword01": "CustomerId",
    "Keyword02": "Region",
    "Keyword03": "Env",
    "Keyword04": "OrderId",
    "Int01": "Amount",
    "Int02": "Priority",
    "Double01": "Score",
    "Bool01": "Vip",
    "Datetime01": "DueAt",
    "KeywordList01": "Tags",
    "Text01": "Notes",
}
WORKFLOW_TYPES = ["OrderWorkflow", "PaymentWorkflow", "ShipmentWorkflow", "RefundWorkflow", "ReportWorkflow",
                  "SyncWorkflow", "EmailWorkflow", "AuditWorkflow"]  # fmt: skip
TYPE_WEIGHTS = [30, 20, 15, 10, 10, 8, 5, 2]
# WorkflowExecutionStatus -> share of runs (1 = Running: the open ones).
STATUS_WEIGHTS = {1: 10, 2: 70, 3: 7, 4: 3, 5: 4, 6: 3, 7: 3}
STATUS_NAMES = {1: "Running", 2: "Completed", 3: "Failed", 4: "Canceled", 5: "Terminated", 6: "ContinuedAsNew",
                7: "TimedOut"}  # fmt: skip
REGIONS = ["eu-west", "eu-north", "us-east", "us-west", "ap-south", "ap-east", "sa-east", "af-south"]
ENVS = ["prod", "staging", "dev"]
CUSTOMERS = 10_000
TAGS = 200
AMOUNT_MAX = 100_000
SPAN_MICROS = 90 * 86_400_000_000  # start times spread over 90 days
END_TIME = datetime(2026, 12, 1, tzinfo=UTC)
DUE_MAX_MICROS = 30 * 86_400_000_000
_SYLLABLES = [
    "ka",
    "to",
    "ri",
    "mu",
    "sel",
    "van",
    "dor",
    "pi",
    "len",
    "qu",
    "zo",
    "bar",
    "nit",
    "e",
    "os",
    "tra",
]
VOCABULARY = sorted({a + b + c for a in _SYLLABLES for b in _SYLLABLES for c in _SYLLABLES})[:2000]
TASK_QUEUES = ["orders", "payments", "default", "reports"]


def customer(k: int) -> str:
    return f"cust-{k:05d}"


def tag(k: int) -> str:
    return f"tag-{k:03d}"


@dataclass(frozen=True)
class Layout:
    """Where the generated timeline sits (start times in microseconds)."""

    rows: int

    @property
    def end_micros(self) -> int:
        return int(END_TIME.timestamp()) * 1_000_000

    @property
    def start_micros(self) -> int:
        return self.end_micros - SPAN_MICROS

    def start_of(self, i: int) -> int:
        return self.start_micros + (i * SPAN_MICROS) // max(self.rows, 1)


def run_id(i: int) -> str:
    return str(uuid.UUID(int=random.Random(i).getrandbits(128), version=4))


def custom_values(rng: random.Random, start: int) -> dict[str, object]:
    """Decoded values by slot column, as VisibilityRecord.custom_values holds them."""
    out: dict[str, object] = {}
    if rng.random() < 0.9:
        out["keyword01"] = customer(rng.randrange(CUSTOMERS))
        out["keyword02"] = rng.choice(REGIONS)
        out["keyword03"] = rng.choice(ENVS)
        out["int01"] = rng.randrange(AMOUNT_MAX)
        out["datetime01"] = from_micros(start + rng.randrange(DUE_MAX_MICROS))
    if rng.random() < 0.3:
        out["keyword04"] = f"order-{rng.getrandbits(48):012x}"
    if rng.random() < 0.5:
        out["int02"] = rng.randint(1, 5)
    if rng.random() < 0.4:
        out["double01"] = round(rng.gauss(50.0, 15.0), 3)
    if rng.random() < 0.7:
        out["bool01"] = rng.random() < 0.1
    if rng.random() < 0.6:
        out["keyword_list01"] = [tag(t) for t in sorted(rng.sample(range(TAGS), rng.randint(1, 4)))]
    if rng.random() < 0.5:
        out["text01"] = " ".join(rng.choice(VOCABULARY) for _ in range(rng.randint(3, 10))).capitalize()
    return out


def record(layout: Layout, i: int, *, status: int | None = None) -> VisibilityRecord:
    """Run number ``i`` (``status`` overrides the generated one: closing an open run)."""
    rng = random.Random(i * 7919 + 1)
    start = layout.start_of(i) + rng.randrange(60_000_000)
    generated = rng.choices(list(STATUS_WEIGHTS), weights=list(STATUS_WEIGHTS.values()))[0]
    status = generated if status is None else status
    close = None if status == 1 else start + int(rng.expovariate(1 / 600) * 1_000_000) + 1000
    workflow_type = rng.choices(WORKFLOW_TYPES, weights=TYPE_WEIGHTS)[0]
    return VisibilityRecord(
        namespace_id=NAMESPACE_ID,
        workflow_id=f"wf-{i:09d}",
        run_id=run_id(i),
        workflow_type=workflow_type,
        task_queue=rng.choice(TASK_QUEUES),
        status=status,
        start_time=from_micros(start),
        execution_time=from_micros(start),
        close_time=None if close is None else from_micros(close),
        history_length=rng.randint(5, 200),
        history_size_bytes=rng.randint(1_000, 200_000),
        state_transition_count=rng.randint(3, 100),
        memo=b"",
        search_attributes=rng.randbytes(rng.randint(60, 200)),  # stands in for the serialized payloads
        custom_values=custom_values(rng, start),
    )


def is_open(layout: Layout, i: int) -> bool:
    return record(layout, i).status == 1


_BASE_COLUMNS = [
    "namespace_id", "run_id", "workflow_id", "workflow_type", "task_queue", "status", "start_time",
    "execution_time", "close_time", "history_length", "history_size_bytes", "state_transition_count",
    "parent_workflow_id", "parent_run_id", "root_workflow_id", "root_run_id", "memo", "search_attributes",
]  # fmt: skip
SLOT_COLUMNS = sorted({c for slot in ALIASES for c in [slot.lower().replace("keywordlist", "keyword_list")]})
COPY_COLUMNS = [*_BASE_COLUMNS, *SLOT_COLUMNS]


def _micros(d: datetime) -> int:
    return int((d - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1))


def copy_row(r: VisibilityRecord) -> tuple[object, ...]:
    """A record in its stored form (the store's own slot encoding), in COPY_COLUMNS order."""
    slots = [
        None if r.custom_values.get(c) is None else slot_value(c[:-2], r.custom_values[c])
        for c in SLOT_COLUMNS
    ]
    return (
        r.namespace_id, r.run_id, r.workflow_id, r.workflow_type, r.task_queue, r.status, _micros(r.start_time),
        _micros(r.execution_time), None if r.close_time is None else _micros(r.close_time), r.history_length,
        r.history_size_bytes, r.state_transition_count, r.parent_workflow_id, r.parent_run_id,
        r.root_workflow_id, r.root_run_id, r.memo, r.search_attributes, *slots,
    )  # fmt: skip


def batches(layout: Layout, size: int = 20_000) -> Iterator[list[tuple[object, ...]]]:
    for lo in range(0, layout.rows, size):
        yield [copy_row(record(layout, i)) for i in range(lo, min(lo + size, layout.rows))]


async def bulk_load(conn: asyncpg.Connection, layout: Layout) -> None:
    """COPY the fixture in batches (the indexes of the migrated schema are in place while loading)."""
    for rows in batches(layout):
        await conn.copy_records_to_table("executions_visibility", records=rows, columns=COPY_COLUMNS)
