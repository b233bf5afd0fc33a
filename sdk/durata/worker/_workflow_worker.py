"""Workflow task polling: normal + sticky queues, a run cache with LRU eviction, queries and failures.

Workflow code runs on the workflow-task executor's threads with deadlock detection (``_deadlock.py``); local
activities run on the worker loop and heartbeat the workflow task when they outlast 80% of its timeout.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import functools
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from temporalio.api.command.v1 import message_pb2 as command_pb
from temporalio.api.common.v1 import message_pb2 as common_pb
from temporalio.api.enums.v1 import command_type_pb2 as command_type_enums
from temporalio.api.enums.v1 import failed_cause_pb2 as cause_enums
from temporalio.api.enums.v1 import query_pb2 as query_enums
from temporalio.api.enums.v1 import task_queue_pb2 as tq_enums
from temporalio.api.history.v1 import message_pb2 as history_pb
from temporalio.api.query.v1 import message_pb2 as query_pb
from temporalio.api.taskqueue.v1 import message_pb2 as tq_pb
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv

from .. import __version__
from .. import activity as act
from .. import exceptions as exc
from .. import workflow as wf
from .._service import CLIENT_NAME
from ..failure import to_failure
from ._deadlock import DEADLOCK_TIMEOUT, DeadlockError, run_activation
from ._local import LocalOutcome, execute_local
from ._poller import TaskPoller
from ._workflow_instance import NondeterminismError, WorkflowInstance

if TYPE_CHECKING:
    from ..client import Client
    from ._activity_worker import ActivityWorker

logger = logging.getLogger("durata.worker")
T = TypeVar("T")
MAX_EAGER_ACTIVITIES = 3  # per workflow-task completion, like sdk-core's default
COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK = command_type_enums.COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK
LOCAL_ACTIVITY_HEARTBEAT_FRACTION = 0.8  # of the workflow task timeout, like sdk-core


class WorkflowWorker(TaskPoller):
    def __init__(self, client: Client, task_queue: str, workflows: Sequence[type], *, identity: str,
                 max_concurrent: int, max_cached: int, sticky_timeout: timedelta, pollers: int,
                 activities: Sequence[Any] = (), executor: Any = None,
                 task_executor: concurrent.futures.ThreadPoolExecutor | None = None, debug_mode: bool = False) -> None:
        self.client = client
        self.task_queue = task_queue
        self.identity = identity
        self.defns: dict[str, wf._Definition] = {}
        for w in workflows:
            d = wf._get_definition(w)
            if d.name in self.defns:
                raise ValueError(f"More than one workflow named {d.name}")
            self.defns[d.name] = d
        self.local_defns = {act._get_definition(a).name: act._get_definition(a) for a in activities}
        self.executor = executor
        # Debug mode (like temporalio's): workflow code runs inline on the loop, without deadlock detection.
        self.task_executor = None if debug_mode else task_executor
        self.deadlock_timeout = None if debug_mode else DEADLOCK_TIMEOUT
        self.max_cached = max_cached
        self.sticky_timeout = sticky_timeout
        self.sticky_queue = f"{identity}-{uuid.uuid4().hex}" if max_cached > 0 else ""
        self.cache: collections.OrderedDict[str, WorkflowInstance] = collections.OrderedDict()
        self.locks: dict[str, asyncio.Lock] = collections.defaultdict(asyncio.Lock)
        self.lock_users: collections.Counter[str] = collections.Counter()
        super().__init__(max_concurrent)
        self.pollers = pollers
        # The same worker's activity side, when it may run activities this worker schedules eagerly.
        self.eager_activities: ActivityWorker | None = None

    # ---------------------------------------------------------------- polling

    async def run(self) -> None:
        queues = [tq_pb.TaskQueue(name=self.task_queue, kind=tq_enums.TASK_QUEUE_KIND_NORMAL)] * self.pollers
        if self.sticky_queue:
            queues.append(tq_pb.TaskQueue(name=self.sticky_queue, kind=tq_enums.TASK_QUEUE_KIND_STICKY,
                                          normal_name=self.task_queue))
        await asyncio.gather(*(self._poll_loop(q) for q in queues))

    async def _poll_loop(self, queue: tq_pb.TaskQueue) -> None:
        def poll() -> Any:
            return self.client._call("PollWorkflowTaskQueue", wsv.PollWorkflowTaskQueueRequest(
                namespace=self.client.namespace, task_queue=queue, identity=self.identity), timeout=70)

        def handle(resp: Any) -> Any:
            return self._handle(resp, time.monotonic())

        await self._run_poll_loop("Workflow", poll, handle)

    # ---------------------------------------------------------------- task handling

    async def _handle(self, task: wsv.PollWorkflowTaskQueueResponse, received: float) -> None:
        run_id = task.workflow_execution.run_id
        lock = self.locks[run_id]
        self.lock_users[run_id] += 1
        try:
            async with lock:  # a legacy query task may arrive while a workflow task for the run is in progress
                if task.HasField("query"):
                    await self._legacy_query(task)
                else:
                    await self._workflow_task(task, received)
        finally:
            self.lock_users[run_id] -= 1
            if not self.lock_users[run_id]:
                self.lock_users.pop(run_id, None)
                self.locks.pop(run_id, None)

    async def _history(self, task: wsv.PollWorkflowTaskQueueResponse, need_full: bool) -> list[history_pb.HistoryEvent]:
        events = list(task.history.events)
        token = task.next_page_token
        if need_full and (not events or events[0].event_id != 1):
            fetched = await self._fetch(task.workflow_execution, b"")
            last = fetched[-1].event_id if fetched else 0
            return fetched + [e for e in events if e.event_id > last]
        if token:
            more = await self._fetch(task.workflow_execution, token)
            last = events[-1].event_id if events else 0
            events += [e for e in more if e.event_id > last]
        return events

    async def _fetch(self, execution: common_pb.WorkflowExecution, token: bytes) -> list[history_pb.HistoryEvent]:
        out: list[history_pb.HistoryEvent] = []
        while True:
            resp = await self.client._call("GetWorkflowExecutionHistory", wsv.GetWorkflowExecutionHistoryRequest(
                namespace=self.client.namespace, execution=execution, next_page_token=token))
            out.extend(resp.history.events)
            token = resp.next_page_token
            if not token:
                return out

    def _new_instance(self, task: wsv.PollWorkflowTaskQueueResponse) -> WorkflowInstance:
        name = task.workflow_type.name
        defn = self.defns.get(name)
        if defn is None:
            raise _NotRegistered(
                f'Workflow class {name} is not registered on this worker (task queue {self.task_queue!r}), '
                f'available workflows: {", ".join(sorted(self.defns)) or "(none)"}')
        return WorkflowInstance.create(defn, self.client.namespace, task.workflow_execution.workflow_id,
                                       task.workflow_execution.run_id, self.client.data_converter)

    def evict(self, run_id: str) -> None:
        inst = self.cache.pop(run_id, None)
        if inst is not None:
            self._dispose(inst)

    def _dispose(self, inst: WorkflowInstance) -> None:
        """Tear a run down; after a deadlock only once its blocked thread has returned (and not on the loop)."""
        busy = inst.activation_future
        if busy is None or busy.done():
            inst.dispose()
            return
        loop = asyncio.get_running_loop()

        def later(_: object) -> None:
            try:
                loop.run_in_executor(self.task_executor, inst.dispose)
            except RuntimeError:  # the executor was shut down with the worker: nothing left to clean up
                pass

        busy.add_done_callback(later)

    async def _activation(self, inst: WorkflowInstance, fn: Callable[[], T]) -> T:
        """Run workflow code for ``inst`` with deadlock detection; a deadlocked run leaves the cache."""
        try:
            return await run_activation(inst, fn, self.task_executor, self.deadlock_timeout)
        except DeadlockError:
            if self.cache.get(inst.run_id) is inst:
                self.evict(inst.run_id)
            raise

    async def _workflow_task(self, task: wsv.PollWorkflowTaskQueueResponse, received: float) -> None:
        run_id = task.workflow_execution.run_id
        inst = self.cache.get(run_id)
        try:
            events = await self._history(task, need_full=inst is None)
            if inst is not None and events and events[0].event_id > inst.last_event_id + 1:
                self.evict(run_id)  # gap: rebuild from full history
                inst = None
                events = await self._history(task, need_full=True)
            if inst is None:
                inst = self._new_instance(task)
                self.cache[run_id] = inst
            self.cache.move_to_end(run_id)
            self._evict_lru()
            commands = await self._activation(inst, functools.partial(
                inst.process_history, events, task.started_event_id, task.messages))
            if inst.pending_local and inst.task_failure is None:
                next_task = await self._run_local_activities(inst, task, received, commands or [])
                if next_task is None:
                    return  # the task was lost or failed after a heartbeat; the run was evicted
                task, commands = next_task
            if inst.task_failure is not None:
                raise inst.task_failure
        except Exception as err:
            await self._fail_task(task, err)
            self.evict(run_id)
            return
        try:
            resp, messages = await self._complete(inst, task, commands or [])
        except exc.RPCError as err:
            if err.message != "UnhandledCommand":
                logger.warning("Workflow task completion for %s rejected: %s", task.workflow_execution.workflow_id,
                               err.message)
            self.evict(run_id)
            return
        only_rejections = not commands and any(m.id.endswith("/reject") for m in messages)
        if inst.closed or not self.sticky_queue or resp.reset_history_event_id or only_rejections:
            self.evict(run_id)

    def _evict_lru(self) -> None:
        """Keep the cache within its size, evicting least recently used runs that no task is working on."""
        excess = len(self.cache) - max(self.max_cached, 1)
        for run_id in [r for r in self.cache if not self.lock_users.get(r)][:max(excess, 0)]:
            self.evict(run_id)

    async def _complete(self, inst: WorkflowInstance, task: wsv.PollWorkflowTaskQueueResponse,
                        commands: list[command_pb.Command], heartbeat: bool = False
                        ) -> tuple[wsv.RespondWorkflowTaskCompletedResponse, list[Any]]:
        messages = list(inst.messages)
        inst.messages.clear()
        req = wsv.RespondWorkflowTaskCompletedRequest(
            task_token=task.task_token, commands=commands, messages=messages, identity=self.identity,
            namespace=self.client.namespace, force_create_new_workflow_task=heartbeat,
            return_new_workflow_task=heartbeat)
        if inst.used_flags:
            req.sdk_metadata.core_used_flags.extend(sorted(inst.used_flags))
            inst.used_flags.clear()
        req.sdk_metadata.sdk_name = CLIENT_NAME
        req.sdk_metadata.sdk_version = __version__
        for qid, q in task.queries.items():
            req.query_results[qid].CopyFrom(await self._answer(inst, q))
        if self.sticky_queue and not inst.closed:
            req.sticky_attributes.worker_task_queue.name = self.sticky_queue
            req.sticky_attributes.worker_task_queue.kind = tq_enums.TASK_QUEUE_KIND_STICKY
            req.sticky_attributes.worker_task_queue.normal_name = self.task_queue
            req.sticky_attributes.schedule_to_start_timeout.FromTimedelta(self.sticky_timeout)
        acts = self.eager_activities
        reserved = await self._request_eager(acts, req.commands) if acts is not None else 0
        try:
            resp = await self.client._call("RespondWorkflowTaskCompleted", req)
        except BaseException:
            if acts is not None:
                for _ in range(reserved):
                    acts.release_reservation()
            raise
        if acts is not None:
            handed = list(resp.activity_tasks)[:reserved]
            for activity_task in handed:
                acts.run_eager(activity_task)
            for _ in range(reserved - len(handed)):
                acts.release_reservation()
        return resp, messages

    async def _request_eager(self, acts: ActivityWorker, commands: Any) -> int:
        """Ask for eager execution of activities on this task queue that this worker runs and has a free slot
        for (at most MAX_EAGER_ACTIVITIES per completion); returns the number of slots reserved."""
        reserved = 0
        for cmd in commands:
            if reserved >= MAX_EAGER_ACTIVITIES:
                break
            if cmd.command_type != COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK:
                continue
            a = cmd.schedule_activity_task_command_attributes
            if a.task_queue.name not in ("", self.task_queue) or not acts.can_run(a.activity_type.name):
                continue
            if not await acts.try_reserve():
                break
            a.request_eager_execution = True
            reserved += 1
        return reserved

    async def _run_local_activities(self, inst: WorkflowInstance, task: wsv.PollWorkflowTaskQueueResponse,
                                    received: float, commands: list[command_pb.Command]
                                    ) -> tuple[wsv.PollWorkflowTaskQueueResponse, list[command_pb.Command]] | None:
        """Run local activities until none is pending; returns the (possibly newer) task and its commands.

        When they outlast 80% of the workflow task timeout, the task is heartbeated: completed with the commands
        so far and force_create_new_workflow_task, continuing with the task the server returns. None when that
        continuation failed or was lost (already handled: task failed, run evicted).
        """
        first = task
        running: dict[int, asyncio.Task[LocalOutcome]] = {}
        try:
            while inst.pending_local and inst.task_failure is None:
                base = self._local_info(task)
                for seq, la in inst.pending_local.items():
                    if seq not in running:
                        running[seq] = asyncio.create_task(execute_local(
                            self.local_defns.get(la.activity_type), la, self.client.data_converter, base,
                            self.executor))
                for seq in [s for s in running if s not in inst.pending_local]:
                    running.pop(seq).cancel()  # cancelled by the workflow
                deadline = received + LOCAL_ACTIVITY_HEARTBEAT_FRACTION * inst.wf_info().task_timeout.total_seconds()
                _, pending = await asyncio.wait(running.values(), timeout=max(deadline - time.monotonic(), 0))
                if not pending:
                    outcomes = {seq: t.result() for seq, t in running.items()}
                    running.clear()
                    commands = await self._activation(inst, functools.partial(inst.resolve_locals, outcomes))
                    continue
                new_task = await self._heartbeat(inst, task, commands)
                if new_task is None:
                    self.evict(inst.run_id)
                    return None
                task, received = new_task, time.monotonic()
                events = await self._history(task, need_full=False)
                if events and events[0].event_id > inst.last_event_id + 1:
                    events = await self._history(task, need_full=True)
                live = await self._activation(inst, functools.partial(
                    inst.process_history, events, task.started_event_id, task.messages))
                commands = live or []
        except Exception as err:
            if task is first:
                raise
            await self._fail_task(task, err)
            self.evict(inst.run_id)
            return None
        finally:
            for t in running.values():
                t.cancel()
        return task, commands

    async def _heartbeat(self, inst: WorkflowInstance, task: wsv.PollWorkflowTaskQueueResponse,
                         commands: list[command_pb.Command]) -> wsv.PollWorkflowTaskQueueResponse | None:
        try:
            resp, _ = await self._complete(inst, task, commands, heartbeat=True)
        except exc.RPCError as err:
            logger.warning("Workflow task heartbeat for %s (long local activity) rejected: %s",
                           task.workflow_execution.workflow_id, err.message)
            return None
        if not resp.workflow_task.task_token:
            logger.warning("Workflow task heartbeat for %s returned no new workflow task; the run will replay",
                           task.workflow_execution.workflow_id)
            return None
        return resp.workflow_task

    def _local_info(self, task: wsv.PollWorkflowTaskQueueResponse) -> dict[str, Any]:
        now = datetime.now(UTC)
        return {"current_attempt_scheduled_time": now, "scheduled_time": now, "started_time": now,
                "task_queue": self.task_queue, "workflow_id": task.workflow_execution.workflow_id,
                "workflow_namespace": self.client.namespace, "workflow_run_id": task.workflow_execution.run_id,
                "workflow_type": task.workflow_type.name}

    async def _fail_task(self, task: wsv.PollWorkflowTaskQueueResponse, err: BaseException) -> None:
        nde = isinstance(err, NondeterminismError)
        logger.warning("Failing workflow task for %s (%s, attempt %d): %s", task.workflow_execution.workflow_id,
                       task.workflow_type.name, task.attempt, err, exc_info=not nde and not isinstance(err, _NotRegistered))
        if task.attempt > 1:
            return  # like sdk-core: later attempts are left to time out, which spaces retries out
        cause = (cause_enums.WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR if nde
                 else cause_enums.WORKFLOW_TASK_FAILED_CAUSE_WORKFLOW_WORKER_UNHANDLED_FAILURE)
        failure = to_failure(err, self.client.data_converter)
        try:
            await self.client._call("RespondWorkflowTaskFailed", wsv.RespondWorkflowTaskFailedRequest(
                task_token=task.task_token, cause=cause, failure=failure, identity=self.identity,
                namespace=self.client.namespace))
        except exc.RPCError as rpc_err:
            logger.warning("RespondWorkflowTaskFailed failed: %s", rpc_err.message)

    async def _answer(self, inst: WorkflowInstance, q: query_pb.WorkflowQuery) -> query_pb.WorkflowQueryResult:
        try:
            payloads = await self._activation(inst, functools.partial(inst.query, q.query_type, q.query_args.payloads))
            return query_pb.WorkflowQueryResult(result_type=query_enums.QUERY_RESULT_TYPE_ANSWERED, answer=payloads)
        except Exception as err:
            return query_pb.WorkflowQueryResult(result_type=query_enums.QUERY_RESULT_TYPE_FAILED,
                                                error_message=str(err),
                                                failure=to_failure(err, self.client.data_converter))

    async def _legacy_query(self, task: wsv.PollWorkflowTaskQueueResponse) -> None:
        run_id = task.workflow_execution.run_id
        inst = self.cache.get(run_id)
        temp = None
        try:
            if inst is None:
                events = await self._history(task, need_full=True)
                temp = inst = self._new_instance(task)
                await self._activation(inst, functools.partial(inst.process_history, events, 0))
            result = await self._answer(inst, task.query)
        except Exception as err:
            result = query_pb.WorkflowQueryResult(result_type=query_enums.QUERY_RESULT_TYPE_FAILED,
                                                  error_message=str(err))
        finally:
            if temp is not None:
                self._dispose(temp)
        req = wsv.RespondQueryTaskCompletedRequest(task_token=task.task_token, namespace=self.client.namespace)
        if result.result_type == query_enums.QUERY_RESULT_TYPE_ANSWERED:
            req.completed_type = query_enums.QUERY_RESULT_TYPE_ANSWERED
            req.query_result.CopyFrom(result.answer)
        else:
            req.completed_type = query_enums.QUERY_RESULT_TYPE_FAILED
            req.error_message = result.error_message
            if result.HasField("failure"):
                req.failure.CopyFrom(result.failure)
        try:
            await self.client._call("RespondQueryTaskCompleted", req)
        except exc.RPCError as err:
            logger.warning("RespondQueryTaskCompleted failed: %s", err.message)

    async def shutdown(self) -> None:
        self.stopping = True
        if self.inflight:
            await asyncio.gather(*self.inflight, return_exceptions=True)
        for run_id in list(self.cache):
            self.evict(run_id)


class _NotRegistered(Exception):
    pass
