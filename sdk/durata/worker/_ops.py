"""Workflow operations (activities, children, external signals, patches, memo/SA upserts).

Mixed into WorkflowInstance; each operation emits a command and registers a resolver keyed by the
event id of the command's history event, which result events (ActivityTaskCompleted, ...) refer to.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from temporalio.api.command.v1 import message_pb2 as command_pb
from temporalio.api.common.v1 import message_pb2 as common_pb
from temporalio.api.enums.v1 import command_type_pb2 as ct
from temporalio.api.enums.v1 import event_type_pb2 as et
from temporalio.api.enums.v1 import workflow_pb2 as wf_enums
from temporalio.api.history.v1 import message_pb2 as history_pb

from .. import exceptions as exc
from .. import workflow as wf
from ..common import RetryPolicy, SearchAttributeKey, decode_search_attributes, encode_search_attributes
from ..failure import from_failure
from ._commands import CHANGE_VERSION_SA, PATCH_DETAILS_KEY, PATCH_MARKER
from ._loop import WorkflowLoop, decode_sas

E = et.EventType
C = ct.CommandType


# sdk-core's internal flag announcing that patch markers are followed by a TemporalChangeVersion upsert; sent in
# WorkflowTaskCompleted.sdk_metadata so the official SDK can replay Durata histories that use patches.
UPSERT_SEARCH_ATTRIBUTE_ON_PATCH_FLAG = 2


class WorkflowOps(WorkflowLoop):
    def wf_info(self) -> wf.Info:
        assert self._info is not None
        return self._info

    def wf_now(self) -> datetime:
        return self._now

    def wf_is_replaying(self) -> bool:
        return self._replaying

    def wf_memo_raw(self) -> dict[str, common_pb.Payload]:
        return self._memo

    def wf_memo(self) -> dict[str, Any]:
        return {k: self.converter.payload_converter.from_payload(v) for k, v in self._memo.items()}

    def wf_all_handlers_finished(self) -> bool:
        return not self._handlers

    def wf_has_last_completion_result(self) -> bool:
        return bool(self._start and self._start.last_completion_result.payloads)

    def wf_last_completion_result(self, type_hint: Any) -> Any:
        if not self._start:
            return None
        return self.converter.decode_one(self._start.last_completion_result, type_hint)

    def wf_upsert_memo(self, updates: Mapping[str, Any]) -> None:
        c = command_pb.Command(command_type=C.COMMAND_TYPE_MODIFY_WORKFLOW_PROPERTIES)
        for k, v in updates.items():
            p = self.converter.payload_converter.to_payload(v)
            c.modify_workflow_properties_command_attributes.upserted_memo.fields[k].CopyFrom(p)
            if v is None:
                self._memo.pop(k, None)
            else:
                self._memo[k] = p
        self._emit(c)

    def wf_upsert_search_attributes(self, attrs: Any) -> None:
        c = command_pb.Command(command_type=C.COMMAND_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES)
        sa = encode_search_attributes(attrs)
        c.upsert_workflow_search_attributes_command_attributes.search_attributes.CopyFrom(sa)
        assert self._info is not None
        for k, p in sa.indexed_fields.items():
            if json.loads(p.data) is None:
                self._search_attributes.pop(k, None)
            else:
                self._search_attributes[k] = p
        object.__setattr__(self._info, "search_attributes", decode_sas(self.converter, self._search_attributes))
        object.__setattr__(self._info, "typed_search_attributes", decode_search_attributes(self._search_attributes))
        self._emit(c)

    def wf_patch(self, patch_id: str, deprecated: bool) -> bool:
        """Memoized per run; on replay a patch is 'on' only if its marker is in history."""
        if patch_id in self._patches_memo:
            return self._patches_memo[patch_id]
        on = (not self._replaying) or patch_id in self._patches_in_history
        if on:
            c = command_pb.Command(command_type=C.COMMAND_TYPE_RECORD_MARKER)
            a = c.record_marker_command_attributes
            a.marker_name = PATCH_MARKER
            a.details[PATCH_DETAILS_KEY].payloads.append(
                self.converter.payload_converter.to_payload({"id": patch_id, "deprecated": deprecated}))
            self._emit(c)
            # Like sdk-core: record the change ids in TemporalChangeVersion so runs can be found by version.
            self._change_versions.append(patch_id)
            self.used_flags.add(UPSERT_SEARCH_ATTRIBUTE_ON_PATCH_FLAG)
            u = command_pb.Command(command_type=C.COMMAND_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES)
            u.upsert_workflow_search_attributes_command_attributes.search_attributes.CopyFrom(encode_search_attributes(
                [SearchAttributeKey.for_keyword_list(CHANGE_VERSION_SA).value_set(list(self._change_versions))]))
            self._emit(u)
        self._patches_memo[patch_id] = on or deprecated
        return on or deprecated

    def wf_wait_condition(self, fn: Callable[[], bool]) -> asyncio.Future[Any]:
        fut = self.create_future()
        self._conditions.append((fn, fut))
        return fut

    # ---------------------------------------------------------------- activities

    def wf_start_activity(self, name: str, args: Sequence[Any], *, task_queue: str | None,
                          result_type: Any, schedule_to_close_timeout: timedelta | None,
                          schedule_to_start_timeout: timedelta | None, start_to_close_timeout: timedelta | None,
                          heartbeat_timeout: timedelta | None, retry_policy: RetryPolicy | None,
                          cancellation_type: wf.ActivityCancellationType, activity_id: str | None) -> asyncio.Task[Any]:
        self._seq["activity"] += 1
        c = command_pb.Command(command_type=C.COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK)
        a = c.schedule_activity_task_command_attributes
        a.activity_id = activity_id or str(self._seq["activity"])
        a.activity_type.name = name
        assert self._info is not None
        a.task_queue.name = task_queue or self._info.task_queue
        a.input.CopyFrom(self.converter.encode_payloads(args))
        for field, td in (("schedule_to_close_timeout", schedule_to_close_timeout),
                          ("schedule_to_start_timeout", schedule_to_start_timeout),
                          ("start_to_close_timeout", start_to_close_timeout),
                          ("heartbeat_timeout", heartbeat_timeout)):
            if td is not None:
                getattr(a, field).FromTimedelta(td)
        if retry_policy is not None:
            retry_policy.apply_to_proto(a.retry_policy)
        fut = self.create_future()
        info = {"started_event_id": 0}

        def resolve(ev: history_pb.HistoryEvent) -> None:
            if fut.done():
                return
            t = ev.event_type
            rs: int
            if t == E.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                info["started_event_id"] = ev.event_id
                return
            if t == E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
                try:
                    fut.set_result(self.converter.decode_one(ev.activity_task_completed_event_attributes.result,
                                                             result_type))
                except Exception as err:
                    fut.set_exception(err)
                return
            if t == E.EVENT_TYPE_ACTIVITY_TASK_FAILED:
                cause: BaseException = from_failure(ev.activity_task_failed_event_attributes.failure, self.converter)
                rs = ev.activity_task_failed_event_attributes.retry_state
            elif t == E.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
                cause = from_failure(ev.activity_task_timed_out_event_attributes.failure, self.converter)
                rs = ev.activity_task_timed_out_event_attributes.retry_state
            elif t == E.EVENT_TYPE_ACTIVITY_TASK_CANCELED:
                cause = exc.CancelledError("Activity cancelled", *self.converter.decode(
                    ev.activity_task_canceled_event_attributes.details.payloads))
                rs = exc.RetryState.CANCEL_REQUESTED
            else:
                return
            fut.set_exception(activity_error(rs, cause))

        def activity_error(rs: int, cause: BaseException) -> exc.ActivityError:
            err = exc.ActivityError("Activity task failed", scheduled_event_id=cmd.event_id,
                                    started_event_id=info["started_event_id"], identity="", activity_type=name,
                                    activity_id=a.activity_id, retry_state=exc.RetryState(rs) if rs else None)
            err.__cause__ = cause
            return err

        def on_matched(ev: history_pb.HistoryEvent) -> None:
            self._by_event[ev.event_id] = resolve

        cmd = self._emit(c, on_matched=on_matched)

        async def run() -> Any:
            try:
                return await asyncio.shield(fut)
            except asyncio.CancelledError:
                if fut.done():
                    return fut.result()
                cancelled = exc.CancelledError("Activity cancelled")
                if self._drop_if_unsent(cmd):
                    fut.cancel()
                    raise activity_error(exc.RetryState.CANCEL_REQUESTED, cancelled) from cancelled
                if cancellation_type != wf.ActivityCancellationType.ABANDON:
                    cc = command_pb.Command(command_type=C.COMMAND_TYPE_REQUEST_CANCEL_ACTIVITY_TASK)
                    cc.request_cancel_activity_task_command_attributes.scheduled_event_id = cmd.event_id
                    self._emit(cc)
                if cancellation_type == wf.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED:
                    return await fut
                fut.cancel()
                raise activity_error(exc.RetryState.CANCEL_REQUESTED, cancelled) from cancelled

        return self.create_task(run())

    # ---------------------------------------------------------------- child workflows

    async def wf_start_child(self, workflow_type: str, args: Sequence[Any], *, id: str,
                             task_queue: str | None, result_type: Any,
                             cancellation_type: wf.ChildWorkflowCancellationType,
                             parent_close_policy: wf.ParentClosePolicy, execution_timeout: timedelta | None,
                             run_timeout: timedelta | None, task_timeout: timedelta | None, id_reuse_policy: int,
                             retry_policy: RetryPolicy | None, cron_schedule: str, memo: Mapping[str, Any] | None,
                             search_attributes: Any) -> wf.ChildWorkflowHandle:
        assert self._info is not None
        c = command_pb.Command(command_type=C.COMMAND_TYPE_START_CHILD_WORKFLOW_EXECUTION)
        a = c.start_child_workflow_execution_command_attributes
        a.namespace = self.namespace
        a.workflow_id = id
        a.workflow_type.name = workflow_type
        a.task_queue.name = task_queue or self._info.task_queue
        a.input.CopyFrom(self.converter.encode_payloads(args))
        for field, td in (("workflow_execution_timeout", execution_timeout), ("workflow_run_timeout", run_timeout),
                          ("workflow_task_timeout", task_timeout)):
            if td is not None:
                getattr(a, field).FromTimedelta(td)
        a.parent_close_policy = wf_enums.ParentClosePolicy.ValueType(parent_close_policy)
        a.workflow_id_reuse_policy = wf_enums.WorkflowIdReusePolicy.ValueType(id_reuse_policy)
        if retry_policy:
            retry_policy.apply_to_proto(a.retry_policy)
        a.cron_schedule = cron_schedule
        for k, v in (memo or {}).items():
            a.memo.fields[k].CopyFrom(self.converter.payload_converter.to_payload(v))
        if search_attributes:
            a.search_attributes.CopyFrom(encode_search_attributes(search_attributes))
        started = self.create_future()
        result = self.create_future()
        child_run_id = ""
        child_started_event_id = 0

        def child_error(rs: int, cause: BaseException) -> exc.ChildWorkflowError:
            err = exc.ChildWorkflowError("Child Workflow execution failed", namespace=self.namespace,
                                         workflow_id=id, run_id=child_run_id, workflow_type=workflow_type,
                                         initiated_event_id=cmd.event_id,
                                         started_event_id=child_started_event_id,
                                         retry_state=exc.RetryState(rs) if rs else None)
            err.__cause__ = cause
            return err

        def resolve(ev: history_pb.HistoryEvent) -> None:
            nonlocal child_run_id, child_started_event_id
            t = ev.event_type
            if t == E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
                child_started_event_id = ev.event_id
                child_run_id = ev.child_workflow_execution_started_event_attributes.workflow_execution.run_id
                if not started.done():
                    started.set_result(child_run_id)
                return
            if t == E.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_FAILED:
                if not started.done():
                    started.set_exception(exc.WorkflowAlreadyStartedError(id, workflow_type))
                return
            if result.done():
                return
            if t == E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED:
                try:
                    result.set_result(self.converter.decode_one(
                        ev.child_workflow_execution_completed_event_attributes.result, result_type))
                except Exception as err:
                    result.set_exception(err)
            elif t == E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_FAILED:
                at = ev.child_workflow_execution_failed_event_attributes
                result.set_exception(child_error(at.retry_state, from_failure(at.failure, self.converter)))
            elif t == E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_CANCELED:
                result.set_exception(child_error(0, exc.CancelledError("Child workflow cancelled")))
            elif t == E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TIMED_OUT:
                result.set_exception(child_error(
                    ev.child_workflow_execution_timed_out_event_attributes.retry_state,
                    exc.TimeoutError("Child workflow timed out", type=None, last_heartbeat_details=[])))
            elif t == E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TERMINATED:
                result.set_exception(child_error(0, exc.TerminatedError("Child workflow terminated")))

        def on_matched(ev: history_pb.HistoryEvent) -> None:
            self._by_event[ev.event_id] = resolve

        cmd = self._emit(c, on_matched=on_matched)
        try:
            run_id = await asyncio.shield(started)
        except asyncio.CancelledError:
            if self._drop_if_unsent(cmd):
                raise
            raise

        async def wait_result() -> Any:
            try:
                return await asyncio.shield(result)
            except asyncio.CancelledError:
                if result.done():
                    return result.result()
                if cancellation_type == wf.ChildWorkflowCancellationType.ABANDON:
                    raise
                await self.wf_cancel_external(id, "", child_only=True)
                if cancellation_type == wf.ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED:
                    return await result
                cancelled = exc.CancelledError("Child workflow cancelled")
                raise child_error(0, cancelled) from cancelled

        return wf.ChildWorkflowHandle(id, run_id, self.create_task(wait_result()))

    # ---------------------------------------------------------------- external workflows

    async def wf_signal_external(self, workflow_id: str, run_id: str, signal: str,
                                 args: Sequence[Any], child_only: bool) -> None:
        c = command_pb.Command(command_type=C.COMMAND_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION)
        a = c.signal_external_workflow_execution_command_attributes
        a.namespace = self.namespace
        a.execution.workflow_id = workflow_id
        a.execution.run_id = run_id
        a.signal_name = signal
        a.input.CopyFrom(self.converter.encode_payloads(args))
        a.child_workflow_only = child_only
        await self._external(c, E.EVENT_TYPE_EXTERNAL_WORKFLOW_EXECUTION_SIGNALED,
                             "Unable to signal external workflow because it was not found")

    async def wf_cancel_external(self, workflow_id: str, run_id: str, child_only: bool) -> None:
        c = command_pb.Command(command_type=C.COMMAND_TYPE_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION)
        a = c.request_cancel_external_workflow_execution_command_attributes
        a.namespace = self.namespace
        a.workflow_id = workflow_id
        a.run_id = run_id
        a.child_workflow_only = child_only
        await self._external(c, E.EVENT_TYPE_EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED,
                             "Unable to cancel external workflow because it was not found")

    async def _external(self, c: command_pb.Command, ok_type: int, not_found: str) -> None:
        fut = self.create_future()

        def resolve(ev: history_pb.HistoryEvent) -> None:
            if not fut.done():
                if ev.event_type == ok_type:
                    fut.set_result(None)
                else:
                    fut.set_exception(exc.ApplicationError(not_found, type="ExternalWorkflowExecutionNotFound"))

        def on_matched(ev: history_pb.HistoryEvent) -> None:
            self._by_event[ev.event_id] = resolve

        self._emit(c, on_matched=on_matched)
        await fut
