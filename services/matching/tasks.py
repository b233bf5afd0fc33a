"""In-memory task objects that move between adders, the backlog and pollers."""

from __future__ import annotations

import asyncio
import enum
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from temporalio.api.query.v1 import message_pb2 as query_pb

from server.gen.durata.internal.matching.v1 import service_pb2 as mpb


class TaskSource(enum.Enum):
    SYNC = "sync"  # handed straight from AddTask to a waiting poller; never written to the database
    BACKLOG = "backlog"  # persisted row (normal queues) or in-memory entry (sticky queues)
    QUERY = "query"  # legacy query task: in memory only, answered through RespondQueryTaskCompleted


@dataclass
class PendingQuery:
    """A QueryWorkflow caller waiting for the worker's RespondQueryTaskCompleted."""

    query_id: str
    query: query_pb.WorkflowQuery
    result: asyncio.Future[mpb.QueryWorkflowResponse]


@dataclass(eq=False)
class MatchTask:
    """One dispatchable unit. ``request_id`` stays fixed while the object lives, so a re-dispatch after a
    lost History answer is idempotent on History's side."""

    info: mpb.TaskInfo
    source: TaskSource
    # Backlog row id (0 = not persisted: sync, sticky or query task).
    task_id: int = 0
    # SYNC: resolved by the poller with True (delivered or stale: done) or False (not delivered: persist it).
    sync_outcome: asyncio.Future[bool] | None = None
    # SYNC: set once AddTask stopped waiting and persisted the task itself; the poller then only drops it.
    abandoned: bool = False
    query: PendingQuery | None = None
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    # The TaskQueueManager (partition) the task belongs to: it is completed or requeued there even when a poller
    # parked on another partition of the same queue on this host took it.
    owner: Any = None

    def expired(self, now: datetime) -> bool:
        return (
            self.info.HasField("expiry_time") and self.info.expiry_time.ToDatetime(tzinfo=now.tzinfo) <= now
        )
