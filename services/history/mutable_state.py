"""Sans-IO mutable state of one run: the persisted record plus what one transaction adds to it.

A ``MutableState`` is built from the stored record, mutated by the engine functions (workflow tasks, commands,
activities, timers) and then handed to the shard, which writes new events + record + tasks in ONE persistence
call. Nothing here does I/O or reads the wall clock: ``now`` is injected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from google.protobuf import duration_pb2, timestamp_pb2
from google.protobuf.message import Message
from temporalio.api.enums.v1 import event_type_pb2, failed_cause_pb2, task_queue_pb2
from temporalio.api.enums.v1 import workflow_pb2 as wf_enums
from temporalio.api.history.v1 import message_pb2 as history_pb2
from temporalio.api.taskqueue.v1 import message_pb2 as taskqueue_pb2

from server.common.durations import from_duration
from server.gen.durata.internal.history.v1 import state_pb2
from server.persistence.interface import TaskCategory

from .events import make_event

CHILD_CLOSE_EVENT_TYPES = frozenset(
    {
        event_type_pb2.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED,
        event_type_pb2.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_FAILED,
        event_type_pb2.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_CANCELED,
        event_type_pb2.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TIMED_OUT,
        event_type_pb2.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TERMINATED,
    }
)
STATE_CREATED = 1
STATE_RUNNING = 2
STATE_COMPLETED = 3

T = state_pb2.HistoryTaskType
WFT_RETRY_INITIAL = timedelta(seconds=5)
WFT_RETRY_MAX = timedelta(minutes=10)


def to_ts(dt: datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(dt)
    return ts


def from_ts(ts: timestamp_pb2.Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)


def to_dur(td: timedelta) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromTimedelta(td)
    return d


def from_dur(d: duration_pb2.Duration) -> timedelta:
    return from_duration(d)


@dataclass
class TaskIntent:
    """A history task produced by a transaction; the shard assigns its task id at commit."""

    category: TaskCategory
    info: state_pb2.HistoryTaskInfo
    visibility_time: datetime


@dataclass
class MutableState:
    record: state_pb2.MutableState
    now: datetime
    db_record_version: int = 0
    retention: timedelta = timedelta(days=1)
    namespace_name: str = ""
    new_events: list[history_pb2.HistoryEvent] = field(default_factory=list)
    tasks: list[TaskIntent] = field(default_factory=list)
    # Set by anything that changes the record without adding events (heartbeats, sticky changes...).
    dirty: bool = False
    # Event 1's attributes, supplied by the caller when a retry may need them (sans-IO: no history reads here).
    started_attributes: history_pb2.WorkflowExecutionStartedEventAttributes | None = None
    # The next run of the chain, created in the same transaction (workflow retry).
    new_run: MutableState | None = None
    # initiated id -> event id of ChildWorkflowExecutionStarted events flushed in this transaction.
    _child_started_ids: dict[int, int] = field(default_factory=dict)
    # When a workflow task's Started event tells the SDK to continue as new (Temporal's
    # limit.historyCount/historySize.suggestContinueAsNew; the shard sets them from the history config).
    suggest_can_events: int = 4 * 1024
    suggest_can_bytes: int = 4 * 1024 * 1024
    # The namespace's custom search attributes (slot -> alias), supplied by the caller when commands may carry
    # search attributes to validate (sans-IO); None: not checked.
    search_attribute_aliases: dict[str, str] | None = None

    # ------------------------------------------------------------------ basics

    @property
    def changed(self) -> bool:
        return self.dirty or bool(self.new_events) or bool(self.tasks)

    @property
    def running(self) -> bool:
        return self.record.state != STATE_COMPLETED

    @property
    def paused(self) -> bool:
        """PauseWorkflowExecution holds the run back: no workflow task is scheduled until it is unpaused."""
        return self.running and self.record.status == wf_enums.WORKFLOW_EXECUTION_STATUS_PAUSED

    @property
    def wft(self) -> state_pb2.WorkflowTaskInfo:
        return self.record.workflow_task

    @property
    def wft_scheduled(self) -> bool:
        return self.wft.scheduled_event_id != 0

    @property
    def wft_started(self) -> bool:
        return self.wft.started_event_id != 0

    def next_stamp(self) -> int:
        self.record.stamp_counter += 1
        return self.record.stamp_counter

    def add_task(
        self, category: TaskCategory, type_: int, when: datetime | None = None, **fields: object
    ) -> state_pb2.HistoryTaskInfo:
        info = state_pb2.HistoryTaskInfo(type=type_, **fields)  # type: ignore[arg-type]
        self.tasks.append(TaskIntent(category, info, when or self.now))
        return info

    def add_timer_task(self, type_: int, when: datetime, **fields: object) -> None:
        self.add_task(TaskCategory.TIMER, type_, when, **fields)

    def normal_task_queue(self) -> taskqueue_pb2.TaskQueue:
        return taskqueue_pb2.TaskQueue(name=self.record.task_queue, kind=task_queue_pb2.TASK_QUEUE_KIND_NORMAL)

    def sticky_task_queue(self) -> taskqueue_pb2.TaskQueue | None:
        if not self.record.sticky_task_queue:
            return None
        return taskqueue_pb2.TaskQueue(
            name=self.record.sticky_task_queue,
            kind=task_queue_pb2.TASK_QUEUE_KIND_STICKY,
            normal_name=self.record.task_queue,
        )

    def clear_sticky(self) -> None:
        if self.record.sticky_task_queue:
            self.record.sticky_task_queue = ""
            self.record.ClearField("sticky_schedule_to_start_timeout")
            self.dirty = True

    # ------------------------------------------------------------------ events

    def append(self, attributes: Message, event_time: datetime | None = None) -> history_pb2.HistoryEvent:
        """Write an event now: it gets the next dense event id."""
        ev = make_event(attributes, event_time or self.now, self.record.next_event_id)
        self.record.next_event_id += 1
        self.record.history_size_bytes += ev.ByteSize()
        self.new_events.append(ev)
        return ev

    def append_or_buffer(self, attributes: Message) -> history_pb2.HistoryEvent | None:
        """External events wait in the buffer while a WFT is started (3.5); they get ids when flushed."""
        if self.wft_started:
            self.record.buffered_events.append(make_event(attributes, self.now))
            self.dirty = True
            return None
        return self.append(attributes)

    def flush_buffered(self) -> int:
        events = list(self.record.buffered_events)
        del self.record.buffered_events[:]
        for ev in events:
            ev.event_id = self.record.next_event_id
            self.record.next_event_id += 1
            self.record.history_size_bytes += ev.ByteSize()
            self.new_events.append(ev)
            attrs = getattr(ev, ev.WhichOneof("attributes") or "")
            if ev.HasField("child_workflow_execution_started_event_attributes"):
                child = self.record.children.get(attrs.initiated_event_id)
                if child is not None and child.started_event_id == -1:
                    child.started_event_id = ev.event_id
                self._child_started_ids[attrs.initiated_event_id] = ev.event_id
            elif ev.event_type in CHILD_CLOSE_EVENT_TYPES and attrs.started_event_id == -1:
                attrs.started_event_id = self._child_started_ids.get(attrs.initiated_event_id, 0)
            elif getattr(attrs, "started_event_id", 0) == -1:
                attrs.started_event_id = ev.event_id - 1  # lazy ActivityTaskStarted flushed right before it
        if events:
            self.dirty = True
        return len(events)

    # ------------------------------------------------------------------ workflow tasks

    def schedule_workflow_task(self, attempt: int = 1, *, speculative: bool = False) -> None:
        """Create the (single) pending WFT; attempt > 1 makes it transient (events not written, 3.3), and so
        does ``speculative`` (an update's own WFT, whose events are written only if the update is accepted)."""
        if self.paused:
            return  # UnpauseWorkflowExecution schedules it (api/workflow_pause.py)
        r = self.record
        queue = self.sticky_task_queue() or self.normal_task_queue()
        timeout = r.workflow_task_timeout
        transient = attempt > 1 or speculative
        wt = state_pb2.WorkflowTaskInfo(
            attempt=attempt, stamp=self.next_stamp(), transient=transient, speculative=speculative, task_queue=queue
        )
        wt.scheduled_time.CopyFrom(to_ts(self.now))
        wt.original_scheduled_time.CopyFrom(to_ts(self.now))
        wt.start_to_close_timeout.CopyFrom(timeout)
        if transient:
            wt.scheduled_event_id = r.next_event_id
        else:
            ev = self.append(self._wft_scheduled_attrs(queue, attempt))
            wt.scheduled_event_id = ev.event_id
        r.workflow_task.CopyFrom(wt)
        sticky_timeout = r.sticky_schedule_to_start_timeout if queue.kind == task_queue_pb2.TASK_QUEUE_KIND_STICKY else None
        self.add_task(
            TaskCategory.TRANSFER,
            T.HISTORY_TASK_TYPE_WORKFLOW_TASK,
            event_id=wt.scheduled_event_id,
            attempt=attempt,
            stamp=wt.stamp,
            task_queue=queue,
            schedule_to_start_timeout=sticky_timeout,
        )
        if sticky_timeout is not None and sticky_timeout.ToTimedelta() > timedelta(0):
            self.add_timer_task(
                T.HISTORY_TASK_TYPE_WORKFLOW_TASK_TIMEOUT,
                self.now + sticky_timeout.ToTimedelta(),
                event_id=wt.scheduled_event_id,
                attempt=attempt,
                stamp=wt.stamp,
                timeout_type=wf_enums.TIMEOUT_TYPE_SCHEDULE_TO_START,
            )

    def _wft_scheduled_attrs(
        self, queue: taskqueue_pb2.TaskQueue, attempt: int
    ) -> history_pb2.WorkflowTaskScheduledEventAttributes:
        return history_pb2.WorkflowTaskScheduledEventAttributes(
            task_queue=queue, start_to_close_timeout=self.record.workflow_task_timeout, attempt=attempt
        )

    def ensure_workflow_task(self, *, speculative: bool = False) -> None:
        """After new events: make sure one WFT will deliver them (at most one WFT per run). ``speculative``: the
        WFT is only for an update, so it writes no events unless the worker accepts it."""
        r = self.record
        if not self.running or r.wft_backoff_pending or r.awaiting_parent_started or self.wft_started:
            return
        if self.wft_scheduled:
            if self.wft.transient and self.wft.scheduled_event_id != self.record.next_event_id:
                # New events arrived before the transient WFT started: it becomes a normal one (3.3).
                self.schedule_workflow_task(1)
            return
        self.schedule_workflow_task(1, speculative=speculative)

    def start_workflow_task(self, request_id: str, identity: str) -> None:
        r = self.record
        wt = r.workflow_task
        if wt.transient and wt.scheduled_event_id != r.next_event_id:
            self.schedule_workflow_task(1)
            wt = r.workflow_task
        wt.request_id = request_id
        wt.started_identity = identity
        wt.started_time.CopyFrom(to_ts(self.now))
        if wt.transient:
            wt.started_event_id = wt.scheduled_event_id + 1
        else:
            ev = self.append(self._wft_started_attrs())
            wt.started_event_id = ev.event_id
        timeout = wt.start_to_close_timeout.ToTimedelta()
        if wt.attempt > 3:
            # Spaces out retries of a workflow task that keeps failing (core only reports attempt 1).
            timeout += min(WFT_RETRY_INITIAL * (2 ** (wt.attempt - 4)), WFT_RETRY_MAX)
        self.add_timer_task(
            T.HISTORY_TASK_TYPE_WORKFLOW_TASK_TIMEOUT,
            self.now + timeout,
            event_id=wt.scheduled_event_id,
            attempt=wt.attempt,
            stamp=wt.stamp,
            timeout_type=wf_enums.TIMEOUT_TYPE_START_TO_CLOSE,
        )
        self.dirty = True

    def _wft_started_attrs(self) -> history_pb2.WorkflowTaskStartedEventAttributes:
        wt = self.wft
        # The count is the Started event's own id, the size what is written so far (close enough, as Temporal's).
        count = wt.started_event_id or self.record.next_event_id
        reasons = []
        if self.record.history_size_bytes >= self.suggest_can_bytes:
            reasons.append(wf_enums.SUGGEST_CONTINUE_AS_NEW_REASON_HISTORY_SIZE_TOO_LARGE)
        if count >= self.suggest_can_events:
            reasons.append(wf_enums.SUGGEST_CONTINUE_AS_NEW_REASON_TOO_MANY_HISTORY_EVENTS)
        return history_pb2.WorkflowTaskStartedEventAttributes(
            scheduled_event_id=wt.scheduled_event_id,
            identity=wt.started_identity,
            request_id=wt.request_id,
            history_size_bytes=self.record.history_size_bytes,
            suggest_continue_as_new=bool(reasons),
            suggest_continue_as_new_reasons=reasons,
        )

    def transient_events(self) -> list[history_pb2.HistoryEvent]:
        """Synthetic Scheduled(+Started) events of a transient WFT, with the ids they will get (3.3)."""
        wt = self.wft
        if not wt.transient or not wt.scheduled_event_id:
            return []
        out = [
            make_event(
                self._wft_scheduled_attrs(wt.task_queue, wt.attempt), from_ts(wt.scheduled_time), wt.scheduled_event_id
            )
        ]
        if wt.started_event_id:
            out.append(make_event(self._wft_started_attrs(), from_ts(wt.started_time), wt.started_event_id))
        return out

    def persist_transient_events(self) -> None:
        """A transient WFT that completes gets its Scheduled/Started events written at the promised ids."""
        wt = self.wft
        if not wt.transient:
            return
        for ev in self.transient_events():
            assert ev.event_id == self.record.next_event_id, "transient WFT ids drifted"
            self.record.next_event_id += 1
            self.record.history_size_bytes += ev.ByteSize()
            self.new_events.append(ev)
        wt.transient = False
        wt.speculative = False

    def clear_workflow_task(self) -> None:
        self.record.ClearField("workflow_task")
        self.dirty = True

    def fail_workflow_task(
        self, cause: int, failure: Message | None, identity: str, *, timed_out: bool = False, schedule_next: bool = True
    ) -> None:
        """WFT failed or timed out (start-to-close): write the event unless transient, flush, reschedule. A
        speculative WFT that fails becomes a normal one first (its events are written), as Temporal does."""
        if self.wft.speculative:
            self.persist_transient_events()
        wt = state_pb2.WorkflowTaskInfo()
        wt.CopyFrom(self.wft)
        if not wt.transient:
            if timed_out:
                self.append(
                    history_pb2.WorkflowTaskTimedOutEventAttributes(
                        scheduled_event_id=wt.scheduled_event_id,
                        started_event_id=wt.started_event_id,
                        timeout_type=wf_enums.TIMEOUT_TYPE_START_TO_CLOSE,
                    )
                )
            else:
                attrs = history_pb2.WorkflowTaskFailedEventAttributes(
                    scheduled_event_id=wt.scheduled_event_id,
                    started_event_id=wt.started_event_id,
                    cause=cause,  # type: ignore[arg-type]
                    identity=identity,
                )
                if failure is not None:
                    attrs.failure.CopyFrom(failure)  # type: ignore[arg-type]
                self.append(attrs)
        self.clear_workflow_task()
        flushed = self.flush_buffered()
        if not schedule_next or not self.running:
            return
        if self.record.sticky_task_queue:
            self.clear_sticky()
            self.schedule_workflow_task(1)
        elif flushed:
            self.schedule_workflow_task(1)
        else:
            self.schedule_workflow_task(wt.attempt + 1)

    # ------------------------------------------------------------------ closing

    def close(self, status: int, close_attributes: Message) -> history_pb2.HistoryEvent:
        """Write the close event and retire everything pending. A chain's successor (``new_run``) must be
        attached before this is called: only a chain's final close notifies the parent. Retention is the
        internal worker's job (it deletes closed runs through DeleteWorkflowExecution)."""
        r = self.record
        ev = self.append(close_attributes)
        r.state = STATE_COMPLETED
        r.status = status
        r.completion_event_id = ev.event_id
        r.close_time.CopyFrom(to_ts(self.now))
        r.ClearField("workflow_task")
        r.activities.clear()
        r.timers.clear()
        del r.buffered_events[:]
        r.wft_backoff_pending = False
        r.awaiting_parent_started = False
        r.pending_signals.clear()
        r.pending_cancels.clear()
        self.add_task(TaskCategory.VISIBILITY, T.HISTORY_TASK_TYPE_VISIBILITY_CLOSE)
        notify_parent = r.HasField("parent") and self.new_run is None
        if notify_parent or any(
            c.parent_close_policy != wf_enums.PARENT_CLOSE_POLICY_ABANDON for c in r.children.values()
        ):
            # Parent notification and parent close policies (children.py); event_id 1 = notify the parent.
            self.add_task(TaskCategory.TRANSFER, T.HISTORY_TASK_TYPE_CLOSE_EXECUTION, event_id=int(notify_parent))
        return ev

    def force_close_started_wft(self) -> None:
        """Terminate / run timeout: a started WFT is failed with FORCE_CLOSE_COMMAND, then buffer flushed."""
        if self.wft_started and not self.wft.transient:
            self.append(
                history_pb2.WorkflowTaskFailedEventAttributes(
                    scheduled_event_id=self.wft.scheduled_event_id,
                    started_event_id=self.wft.started_event_id,
                    cause=failed_cause_pb2.WORKFLOW_TASK_FAILED_CAUSE_FORCE_CLOSE_COMMAND,
                )
            )
        self.clear_workflow_task()
        self.flush_buffered()
