"""The batch system workflow and its one long activity, on Durata's SDK.

The workflow runs the activity to completion and records the final counts in its memo (what Describe shows once
the job is done). The activity lists the selected runs page by page and applies the operation to each at the
job's rate; its heartbeat carries Temporal's progress record (page token, total estimate, success and error
counts), so a crash of the internal worker resumes at the page it was on, and Describe shows progress while it
runs. A page redone after a crash is harmless: terminated runs no longer match the query, and every other call
carries a request id derived from the job that the server deduplicates."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import durata.activity as activity
import durata.workflow as workflow
import structlog
from durata.common import RetryPolicy
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv

from server.common.errors import ServiceError
from server.common.system_workflows import BATCH_STATS_MEMO, BATCH_WORKFLOW_TYPE
from server.gen.durata.internal.batch.v1 import batch_pb2

from . import operations

log = structlog.get_logger("durata.internal_worker.batch")

ACTIVITY_NAME = "BatchActivityWithProtobuf"
PAGE_SIZE = 1000
OP_ATTEMPTS = 5


@workflow.defn(name=BATCH_WORKFLOW_TYPE)
class BatchWorkflow:
    @workflow.run
    async def run(self, job: batch_pb2.BatchOperationInput) -> dict[str, Any]:
        result: dict[str, Any] = await workflow.execute_activity(
            ACTIVITY_NAME, job, result_type=dict,
            start_to_close_timeout=timedelta(days=20 * 365), heartbeat_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=1.7,
                                     maximum_interval=timedelta(minutes=1)),
        )  # fmt: skip
        workflow.upsert_memo({
            BATCH_STATS_MEMO: {"NumSuccess": result.get("SuccessCount", 0), "NumFailure": result.get("ErrorCount", 0)}
        })  # fmt: skip
        return result


class _Pacer:
    """At most ``rate`` operations per second across the job's concurrent calls."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next = 0.0

    async def wait(self) -> None:
        now = time.monotonic()
        at = max(self.next, now)
        self.next = at + self.interval
        if at > now:
            await asyncio.sleep(at - now)


class BatchActivities:
    """Bound to the internal worker's frontend client (in-process handler or gRPC) for the calls it makes."""

    def __init__(self, client: Any, rpc_timeout_seconds: float = 10.0) -> None:
        self.client = client
        self.rpc_timeout_seconds = rpc_timeout_seconds

    def _deadline(self) -> float:
        return time.monotonic() + self.rpc_timeout_seconds

    @activity.defn(name=ACTIVITY_NAME)
    async def run_batch(self, job: batch_pb2.BatchOperationInput) -> dict[str, Any]:
        details = activity.info().heartbeat_details
        progress: dict[str, Any] = dict(details[0]) if details and isinstance(details[0], dict) else {}
        req = job.request
        query = operations.adjusted_query(req)
        targets = [(e.workflow_id, e.run_id) for e in req.executions] or [
            (e.business_id, e.run_id) for e in req.target_executions
        ]
        if not progress:
            total = len(targets)
            if query:
                count = await self.client.CountWorkflowExecutions(
                    wsv.CountWorkflowExecutionsRequest(namespace=req.namespace, query=query), deadline=self._deadline()
                )
                total = int(count.count)
            progress = {"PageToken": "", "CurrentPage": 0, "TotalEstimate": total, "SuccessCount": 0, "ErrorCount": 0}
        # Counts as they were when the current page began: a resumed page is counted once.
        progress["SuccessCount"] = progress.get("PageStartSuccess", progress["SuccessCount"])
        progress["ErrorCount"] = progress.get("PageStartError", progress["ErrorCount"])
        pacer = _Pacer(req.max_operations_per_second or job.default_rps)
        limit = asyncio.Semaphore(max(1, job.concurrency or 1))
        while True:
            progress["PageStartSuccess"], progress["PageStartError"] = progress["SuccessCount"], progress["ErrorCount"]
            activity.heartbeat(progress)
            if query:
                page = await self.client.ListWorkflowExecutions(wsv.ListWorkflowExecutionsRequest(
                    namespace=req.namespace, query=query, page_size=PAGE_SIZE,
                    next_page_token=bytes.fromhex(progress["PageToken"]),
                ), deadline=self._deadline())  # fmt: skip
                runs = [(e.execution.workflow_id, e.execution.run_id) for e in page.executions]
                next_token = page.next_page_token
            else:
                start = progress["CurrentPage"] * PAGE_SIZE
                runs, next_token = targets[start:start + PAGE_SIZE], b""
                if start + PAGE_SIZE < len(targets):
                    next_token = b"more"
            await asyncio.gather(*(self._one(job, wid, rid, pacer, limit, progress) for wid, rid in runs))
            progress["CurrentPage"] += 1
            progress["PageToken"] = next_token.hex() if query else ""
            if not next_token or not runs:
                break
        progress.pop("PageStartSuccess", None)
        progress.pop("PageStartError", None)
        return progress

    async def _one(self, job: batch_pb2.BatchOperationInput, workflow_id: str, run_id: str, pacer: _Pacer,
                   limit: asyncio.Semaphore, progress: dict[str, Any]) -> None:
        async with limit:
            ok = await self._attempts(job, workflow_id, run_id, pacer)
            progress["SuccessCount" if ok else "ErrorCount"] += 1
            activity.heartbeat(progress)

    async def _attempts(self, job: batch_pb2.BatchOperationInput, workflow_id: str, run_id: str,
                        pacer: _Pacer) -> bool:
        for attempt in range(OP_ATTEMPTS):
            await pacer.wait()
            try:
                await operations.apply(self.client, self._deadline(), job, workflow_id, run_id)
                return True
            except operations.Skip as err:
                log.info("batch operation skipped a run", job_id=job.request.job_id, workflow_id=workflow_id,
                         reason=str(err))  # fmt: skip
                return False
            except ServiceError as err:
                if operations.is_done(err):
                    return True
                if not operations.is_retryable(err) or attempt == OP_ATTEMPTS - 1:
                    log.info("batch operation failed on a run", job_id=job.request.job_id, workflow_id=workflow_id,
                             error=str(err))  # fmt: skip
                    return False
                await asyncio.sleep(min(0.2 * 2**attempt, 5.0))
        return False
