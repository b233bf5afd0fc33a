"""The scheduler core: one schedule's state machine, sans-IO, driven by the scheduler system workflow.

Temporal's scheduler workflow is the reference. Every entry point takes ``now`` (the workflow's time) and
returns the actions the wrapper must execute (see actions.py); outcomes come back through ``started``,
``start_failed``, ``closed`` and ``refreshed``. Each entry point runs one pass as Temporal's loop does: take the
matching times that have come (catch-up window, pause, remaining actions), apply the request, feed backfills,
then resolve the buffer with the overlap policies.

Determinism: no clock, no randomness, no set iteration; request ids are derived from the schedule and the
nominal time (manual starts add a sequence number), so a replayed or retried decision repeats itself exactly.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from temporalio.api.common.v1 import message_pb2 as common
from temporalio.api.enums.v1 import workflow_pb2 as wf_enums
from temporalio.api.failure.v1 import message_pb2 as failure_pb
from temporalio.api.schedule.v1 import message_pb2 as sched
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv

from server.common.errors import InvalidArgument
from server.gen.durata.internal.schedule.v1 import schedule_pb2

from . import listing
from .actions import (
    MANUAL_START_TIMEOUT,
    MAX_START_TIMEOUT,
    MIN_START_TIMEOUT,
    Action,
    CancelWorkflow,
    RefreshWorkflows,
    StartWorkflow,
    TerminateWorkflow,
    WatchWorkflow,
    build_start_request,
    derived_request_id,
    identity,
    scheduled_workflow_id,
)
from .buffer import ALLOW_ALL, UNSPECIFIED, BufferedStart, process_buffer, resolve_policy
from .listing import FUTURE_ACTION_COUNT_FOR_LIST
from .spec import CompiledSpec, ComputeLimitExceeded, NextTime, compile_spec, describe_form, jitter_seed
from .state import Backfill, CoreState, InFlight, copy_proto, ts_time, utc

WS = wf_enums.WorkflowExecutionStatus
# Temporal's tunables for its scheduler workflow.
DEFAULT_CATCHUP_WINDOW = timedelta(days=365)
MIN_CATCHUP_WINDOW = timedelta(seconds=10)
RETENTION = timedelta(days=7)  # an idle schedule (nothing left to do, not paused) ends this long after its last event
MAX_BUFFER_SIZE = 1000
BACKFILLS_PER_PASS = 10
FUTURE_ACTION_COUNT = 10
RECENT_ACTION_COUNT = 10
ALLOW_ALL_BACKFILL_PAUSE = timedelta(seconds=1)
# Passes before the core asks for a continue-as-new on its own (the wrapper may also pass the server's hint).
PASSES_BEFORE_CONTINUE_AS_NEW = 250
# Scheduled times examined per pass at most (about a quarter of a second): a long outage of a per-second schedule
# is caught up over several workflow tasks instead of one that would time out.
MAX_TIMES_PER_PASS = 50_000


class Scheduler:
    """One schedule. Construct it from the workflow's input; keep calling it with the workflow's time."""

    def __init__(
        self,
        namespace: str,
        namespace_id: str,
        schedule_id: str,
        schedule: sched.Schedule,
        info: sched.ScheduleInfo | None,
        state: bytes | None,
        now: datetime,
        *,
        conflict_token: int = 1,
        initial_patch: sched.SchedulePatch | None = None,
    ) -> None:
        now = utc(now)
        self.namespace, self.namespace_id, self.schedule_id = namespace, namespace_id, schedule_id
        self.schedule = sched.Schedule()
        self.schedule.CopyFrom(schedule)
        self.info = sched.ScheduleInfo()
        if info is not None:
            self.info.CopyFrom(info)
        self.conflict_token = conflict_token
        self._identity = identity(namespace, schedule_id)
        self._buffer: list[BufferedStart] = []
        self._backfills: list[Backfill] = []
        self._in_flight: dict[str, InFlight] = {}
        self._last_completion_result: common.Payloads | None = None
        self._continued_failure: failure_pb.Failure | None = None
        self._need_refresh = False
        self._awaiting_refresh = False
        self._seq = 0
        self._passes = 0
        self._pending_patch = initial_patch
        if state:
            self._load(state)
        else:
            # from the moment Create accepted the schedule, not from this first run's start: times that came
            # while the internal worker was slow to pick the schedule up are taken (catch-up window permitting)
            self._cursor = min(now, ts_time(self.info.create_time)) if self.info.HasField("create_time") else now
            if not self.info.HasField("create_time"):
                self.info.create_time.FromDatetime(now)
        # a new workflow run has no watcher yet: the first pass asks for one per tracked run
        self._watches_owed = True
        self._spec: CompiledSpec | None = None
        self._ensure_fields()
        self._compile()

    # ------------------------------------------------------------ construction helpers

    @classmethod
    def from_args(cls, args: schedule_pb2.StartScheduleArgs, now: datetime) -> Scheduler:
        info = copy_proto(args.info, sched.ScheduleInfo) if args.HasField("info") else None
        if args.HasField("create_time") and (info is None or not info.HasField("create_time")):
            info = info or sched.ScheduleInfo()
            info.create_time.CopyFrom(args.create_time)
        return cls(
            args.namespace, args.namespace_id, args.schedule_id, args.schedule, info, args.state or None, now,
            conflict_token=args.conflict_token or 1,
            initial_patch=args.initial_patch if args.HasField("initial_patch") else None,
        )  # fmt: skip

    def to_args(self) -> schedule_pb2.StartScheduleArgs:
        """The input of the next run after continue-as-new."""
        args = schedule_pb2.StartScheduleArgs(
            schedule=self.schedule, info=self.info, namespace=self.namespace, namespace_id=self.namespace_id,
            schedule_id=self.schedule_id, conflict_token=self.conflict_token, state=self.snapshot(),
            create_time=self.info.create_time,
        )  # fmt: skip
        if self._pending_patch is not None:
            args.initial_patch.CopyFrom(self._pending_patch)
        return args

    def _ensure_fields(self) -> None:
        """Temporal fills the defaults in eagerly so that Describe shows them."""
        policies = self.schedule.policies
        policies.overlap_policy = resolve_policy(policies.overlap_policy, UNSPECIFIED)  # type: ignore[assignment]
        window = self.catchup_window()
        policies.catchup_window.FromTimedelta(window)
        self.schedule.state.SetInParent()
        self.schedule.spec.SetInParent()
        self.schedule.action.SetInParent()

    def _compile(self) -> None:
        try:
            self._spec = compile_spec(self.schedule.spec, jitter_seed(self.namespace_id, self.schedule_id))
            self.info.invalid_schedule_error = ""
        except InvalidArgument as err:
            self._spec = None
            self.info.invalid_schedule_error = err.message

    # ------------------------------------------------------------ policies

    def catchup_window(self) -> timedelta:
        policies = self.schedule.policies
        if not policies.HasField("catchup_window"):
            return DEFAULT_CATCHUP_WINDOW
        window = timedelta(seconds=policies.catchup_window.seconds, microseconds=policies.catchup_window.nanos // 1000)
        return max(window, MIN_CATCHUP_WINDOW)

    def _resolve(self, policy: int) -> int:
        return resolve_policy(policy, self.schedule.policies.overlap_policy)

    def _can_take_scheduled_action(self, manual: bool, decrement: bool) -> bool:
        if manual:
            return True
        state = self.schedule.state
        if state.paused:
            return False
        if not state.limited_actions:
            return True
        if state.remaining_actions > 0:
            if decrement:
                state.remaining_actions -= 1
                self.conflict_token += 1
            return True
        return False

    def _next(self, after: datetime) -> NextTime | None:
        if self._spec is None:
            return None
        try:
            return self._spec.get_next_time(after)
        except ComputeLimitExceeded:
            return None  # an over-excluded spec takes no action until it is changed, as in Temporal

    # ------------------------------------------------------------ the pass

    def _pass(self, now: datetime, request: Any = None) -> list[Action]:
        """One iteration of Temporal's loop, with ``request`` (a callable) applied after the elapsed time."""
        now = max(utc(now), self._cursor)
        self._passes += 1
        out: list[Action] = []
        if self._watches_owed:
            self._watches_owed = False
            out.extend(WatchWorkflow(ex.workflow_id, ex.run_id) for ex in self.info.running_workflows)
        self._process_time(now)
        if self._pending_patch is not None:
            patch, self._pending_patch = self._pending_patch, None
            self._apply_patch(patch, now)
        if request is not None:
            request()
            self._process_time(now)
        self._process_backfills()
        out.extend(self._process_buffer(now))
        return out

    def _process_time(self, end: datetime) -> None:
        """Queue every scheduled time whose actual time is in (cursor, end]."""
        if self._spec is None or not self._can_take_scheduled_action(False, False):
            # paused or out of actions: the elapsed time is skipped, not counted as missed
            self._cursor = max(self._cursor, end)
            return
        window = self.catchup_window()
        update_time = ts_time(self.info.update_time) if self.info.HasField("update_time") else None
        cursor = self._cursor
        self._behind = False
        for _ in range(MAX_TIMES_PER_PASS):
            found = self._next(cursor)
            if found is None or found.actual > end:
                break
            cursor = found.actual
            if update_time is not None and update_time > found.actual:
                continue  # before the latest update: the old spec owned that time
            if end - found.actual > window:
                self.info.missed_catchup_window += 1
                continue
            self._add_start(found.nominal, found.actual, UNSPECIFIED, manual=False)
        else:
            self._behind = True  # more times are due: next_wakeup says "now"
        # resume after the last time taken, not at end: a time whose nominal is before end and whose jittered
        # actual time is after it must still come
        self._cursor = cursor

    def _add_start(self, nominal: datetime, actual: datetime, policy: int, manual: bool) -> None:
        if len(self._buffer) >= MAX_BUFFER_SIZE:
            self.info.buffer_dropped += 1
            return
        self._buffer.append(BufferedStart(nominal, actual, policy, manual))
        self._need_refresh = True

    def _process_backfills(self) -> None:
        """Feed a bounded number of backfilled times per pass, using at most half of the buffer."""
        budget = BACKFILLS_PER_PASS
        while self._backfills and budget > 0 and len(self._buffer) < MAX_BUFFER_SIZE // 2:
            bf = self._backfills[0]
            cursor: datetime | None = bf.start
            while budget > 0 and cursor is not None:
                found = self._next(cursor)
                if found is None or found.actual > bf.end:
                    cursor = None
                    break
                self._add_start(found.nominal, found.actual, bf.overlap_policy, manual=True)
                cursor = found.actual
                budget -= 1
            if cursor is None:
                self._backfills.pop(0)
            else:
                bf.start = cursor

    def _process_buffer(self, now: datetime) -> list[Action]:
        """Resolve the buffer until nothing more can happen now; waits while starts or a refresh are out."""
        out: list[Action] = []
        if self._in_flight or self._awaiting_refresh:
            return out
        if not self.schedule.action.HasField("start_workflow"):
            self._buffer = []
            return out
        while self._buffer:
            running = list(self.info.running_workflows)
            if self._need_refresh and running and any(self._resolve(b.overlap_policy) != ALLOW_ALL for b in self._buffer):
                # decide on fresh facts: a run may have closed without the watcher having said so yet
                self._need_refresh = False
                self._awaiting_refresh = True
                out.append(RefreshWorkflows(tuple(_copy_execution(ex) for ex in running)))
                return out
            self._need_refresh = False
            result = process_buffer(self._buffer, bool(running), self._resolve)
            self._buffer = result.new_buffer
            self.info.overlap_skipped += result.overlap_skipped
            self.overlap_replaced += result.replaced
            starts = [(s, False) for s in result.overlapping]
            if result.non_overlapping is not None:
                starts.append((result.non_overlapping, True))
            try_again = False
            for start, non_overlapping in starts:
                if not self._can_take_scheduled_action(start.manual, decrement=True):
                    try_again = True  # paused or out of actions: this start is dropped
                    continue
                out.append(self._start(start, non_overlapping, now))
            if result.need_terminate:
                out.extend(TerminateWorkflow(ex.workflow_id, ex.run_id, self._identity) for ex in running)
            elif result.need_cancel:
                out.extend(
                    CancelWorkflow(ex.workflow_id, ex.run_id, self._request_id("cancel", ex.workflow_id, ex.run_id),
                                   self._identity)
                    for ex in running
                )  # fmt: skip
            if self._in_flight or not try_again:
                break
        return out

    def _request_id(self, *parts: str) -> str:
        return derived_request_id(self.namespace_id, self.schedule_id, *parts)

    def _start(self, start: BufferedStart, non_overlapping: bool, now: datetime) -> StartWorkflow:
        new_workflow = self.schedule.action.start_workflow
        policy = self._resolve(start.overlap_policy)
        workflow_id = scheduled_workflow_id(new_workflow.workflow_id, start.nominal)
        if start.manual:
            self._seq += 1
            request_id = self._request_id("manual", datetime.isoformat(start.nominal), str(self._seq))
        else:
            updated = datetime.isoformat(ts_time(self.info.update_time)) if self.info.HasField("update_time") else ""
            request_id = self._request_id("scheduled", datetime.isoformat(start.nominal), updated)
        last_result, failure = self._last_completion_result, self._continued_failure
        if policy == ALLOW_ALL:
            last_result = failure = None  # overlapping runs do not take part in the result chain
        if start.manual:
            timeout = MANUAL_START_TIMEOUT
        else:
            timeout = min(max(start.actual + self.catchup_window() - now, MIN_START_TIMEOUT), MAX_START_TIMEOUT)
        request = build_start_request(
            self.namespace, self.schedule_id, new_workflow, workflow_id=workflow_id, request_id=request_id,
            nominal=start.nominal, manual=start.manual, last_completion_result=last_result,
            continued_failure=failure,
        )  # fmt: skip
        self._in_flight[request_id] = InFlight(start, workflow_id, policy, non_overlapping)
        return StartWorkflow(
            request_id=request_id, workflow_id=workflow_id, nominal_time=start.nominal, actual_time=start.actual,
            overlap_policy=policy, manual=start.manual, last_completion_result=last_result,
            continued_failure=failure, timeout=timeout, request=request,
        )  # fmt: skip

    # ------------------------------------------------------------ outcomes reported by the wrapper

    def started(self, request_id: str, run_id: str, now: datetime) -> list[Action]:
        """A StartWorkflow succeeded (``now``: when, shown as the action's actual time)."""
        flight = self._in_flight.pop(request_id, None)
        if flight is None:
            return []
        execution = common.WorkflowExecution(workflow_id=flight.workflow_id, run_id=run_id)
        self.info.action_count += 1
        result = sched.ScheduleActionResult(
            start_workflow_result=execution, start_workflow_status=WS.WORKFLOW_EXECUTION_STATUS_RUNNING
        )
        result.schedule_time.FromDatetime(flight.start.actual)
        result.actual_time.FromDatetime(utc(now))
        self.info.recent_actions.append(result)
        del self.info.recent_actions[:-RECENT_ACTION_COUNT]
        out: list[Action] = []
        if flight.non_overlapping:
            self.info.running_workflows.append(execution)
            out.append(WatchWorkflow(flight.workflow_id, run_id))
        # not a new iteration of the loop (that would feed more backfills): only resolve what is buffered
        out.extend(self._process_buffer(utc(now)))
        return out

    def start_failed(self, request_id: str, message: str, now: datetime) -> list[Action]:
        """A StartWorkflow failed for good (already started, timed out, ...): that start is dropped, as in
        Temporal; it counts as neither an action nor a skip."""
        if self._in_flight.pop(request_id, None) is None:
            return []
        return self._process_buffer(utc(now))

    def closed(
        self,
        workflow_id: str,
        status: int,
        result: common.Payloads | None,
        failure: failure_pb.Failure | None,
        now: datetime,
    ) -> list[Action]:
        """A tracked run has closed (from its watcher or a refresh). A run that is not tracked (any more) is
        ignored, so the second report of the same close (refresh, then watcher) changes nothing."""
        if status == WS.WORKFLOW_EXECUTION_STATUS_RUNNING:
            return []
        for i, ex in enumerate(self.info.running_workflows):
            if ex.workflow_id == workflow_id:
                del self.info.running_workflows[i]
                break
        else:
            return []
        for action in self.info.recent_actions:
            if action.start_workflow_result.workflow_id == workflow_id:
                action.start_workflow_status = status  # type: ignore[assignment]
                break
        failed = status in (WS.WORKFLOW_EXECUTION_STATUS_FAILED, WS.WORKFLOW_EXECUTION_STATUS_TIMED_OUT)
        state = self.schedule.state
        if self.schedule.policies.pause_on_failure and failed and not state.paused:
            state.paused = True
            if status == WS.WORKFLOW_EXECUTION_STATUS_FAILED:
                message = failure.message if failure is not None else ""
                state.notes = f"paused due to workflow failure: {workflow_id}: {message}"
            else:
                state.notes = f"paused due to workflow timeout: {workflow_id}"
            self.conflict_token += 1
        if result is not None:
            self._last_completion_result = copy_proto(result, common.Payloads)
            self._continued_failure = None
        elif failure is not None:
            self._continued_failure = copy_proto(failure, failure_pb.Failure)  # the last result is kept
        return self._pass(now)

    def refreshed(self, now: datetime) -> list[Action]:
        """Every closed run of a RefreshWorkflows has been reported: the buffer may be resolved."""
        self._awaiting_refresh = False
        return self._process_buffer(utc(now))

    # ------------------------------------------------------------ time and requests

    def advance(self, now: datetime) -> list[Action]:
        """Woken by the timer (or any other reason): take what has come due."""
        return self._pass(now)

    def patch(self, patch: sched.SchedulePatch, now: datetime) -> list[Action]:
        return self._pass(now, lambda: self._apply_patch(patch, utc(now)))

    def _apply_patch(self, patch: sched.SchedulePatch, now: datetime) -> None:
        if patch.HasField("trigger_immediately"):
            trigger = patch.trigger_immediately
            at = now
            if trigger.HasField("scheduled_time") and (trigger.scheduled_time.seconds or trigger.scheduled_time.nanos):
                at = ts_time(trigger.scheduled_time)
            self._add_start(at, at, trigger.overlap_policy, manual=True)
        for request in patch.backfill_request:
            if len(self._backfills) >= MAX_BUFFER_SIZE:
                self.info.buffer_dropped += 1
                continue
            # the start time is inclusive: search from just before it
            start = ts_time(request.start_time) - timedelta(milliseconds=1)
            self._backfills.append(Backfill(start, ts_time(request.end_time), request.overlap_policy))
        state = self.schedule.state
        if patch.pause:
            state.paused, state.notes = True, patch.pause
            self.conflict_token += 1
        if patch.unpause:
            state.paused, state.notes = False, patch.unpause
            self.conflict_token += 1

    def update(self, schedule: sched.Schedule, now: datetime, conflict_token: int = 0) -> list[Action]:
        """Replace spec, action, policies and state (not info). A stale conflict token (non-zero and not the
        current one) leaves the schedule as it is, as Temporal does; ``last_update_rejected`` says so."""
        self.last_update_rejected = bool(conflict_token) and conflict_token != self.conflict_token
        if self.last_update_rejected:
            return self._pass(now)

        def apply() -> None:
            self.schedule = sched.Schedule()
            self.schedule.CopyFrom(schedule)
            self._ensure_fields()
            self._compile()
            self.info.update_time.FromDatetime(utc(now))
            self.conflict_token += 1

        return self._pass(now, apply)

    last_update_rejected = False
    _behind = False  # the last pass stopped at MAX_TIMES_PER_PASS
    # starts displaced by a later CANCEL_OTHER/TERMINATE_OTHER one before they ran: not in ScheduleInfo (Temporal
    # counts them nowhere), kept for accounting only and not carried across continue-as-new
    overlap_replaced = 0

    # ------------------------------------------------------------ the wrapper's loop

    def _more_allow_all_backfills(self) -> bool:
        return bool(self._backfills) and self._resolve(self._backfills[0].overlap_policy) == ALLOW_ALL

    def _spec_next(self) -> datetime | None:
        found = self._next(self._cursor)
        return found.actual if found is not None else None

    def _last_event(self) -> datetime:
        last = ts_time(self.info.create_time)
        if self.info.HasField("update_time"):
            last = max(last, ts_time(self.info.update_time))
        if self.info.recent_actions:
            last = max(last, ts_time(self.info.recent_actions[-1].actual_time))
        return last

    def _retention_expiry(self) -> datetime | None:
        """When an idle schedule (nothing left to take, not paused) ends, or None while it is not idle."""
        if self.schedule.state.paused or self._more_allow_all_backfills():
            return None
        if self._spec_next() is not None and self._can_take_scheduled_action(False, False):
            return None
        if self._in_flight or self._awaiting_refresh or self._backfills or self._buffer:
            return None
        return self._last_event() + RETENTION

    def next_wakeup(self, now: datetime) -> datetime | None:
        """When to call ``advance`` next if nothing else happens first; None: only a signal or a watched run's
        close can change anything."""
        now = utc(now)
        wakeup: datetime | None
        busy = self._in_flight or self._awaiting_refresh or self.info.running_workflows or self._buffer
        if self._behind:
            return now
        if self._more_allow_all_backfills() or (self._backfills and not busy):
            wakeup = now + ALLOW_ALL_BACKFILL_PAUSE
        elif not self._can_take_scheduled_action(False, False):
            wakeup = None  # paused or out of actions: sleep until a request
        else:
            wakeup = self._spec_next()
        expiry = self._retention_expiry()
        return expiry if expiry is not None else wakeup

    def finished(self, now: datetime) -> bool:
        """The schedule has been idle for the retention period: the workflow may end."""
        expiry = self._retention_expiry()
        return expiry is not None and expiry <= utc(now)

    def should_continue_as_new(self, suggested: bool = False) -> bool:
        """Time to continue-as-new (``suggested``: the server's hint), and nothing is half done."""
        idle = not self._in_flight and not self._awaiting_refresh and self._pending_patch is None
        return idle and (suggested or self._passes >= PASSES_BEFORE_CONTINUE_AS_NEW)

    @property
    def paused(self) -> bool:
        """For the scheduler workflow's TemporalSchedulePaused search attribute."""
        return self.schedule.state.paused

    # ------------------------------------------------------------ queries

    def _future_action_times(self, n: int) -> list[datetime]:
        state = self.schedule.state
        if state.limited_actions:
            n = min(n, max(state.remaining_actions, 0))
        update_time = ts_time(self.info.update_time) if self.info.HasField("update_time") else None
        out: list[datetime] = []
        cursor = self._cursor
        while len(out) < n:
            found = self._next(cursor)
            if found is None:
                break
            cursor = found.actual
            if update_time is not None and update_time > found.actual:
                continue
            out.append(found.actual)
        return out

    def describe(self, now: datetime) -> schedule_pb2.DescribeResponse:
        """The describe query's answer (the wrapper adds nothing; memo and search attributes come from the
        scheduler workflow's own)."""
        info = sched.ScheduleInfo()
        info.CopyFrom(self.info)
        del info.future_action_times[:]
        for t in self._future_action_times(FUTURE_ACTION_COUNT):
            info.future_action_times.add().FromDatetime(t)
        info.buffer_size = len(self._buffer)
        schedule = sched.Schedule()
        schedule.CopyFrom(self.schedule)
        schedule.spec.CopyFrom(describe_form(schedule.spec))
        return schedule_pb2.DescribeResponse(schedule=schedule, info=info, conflict_token=self.conflict_token)

    def list_info(self, now: datetime) -> sched.ScheduleListInfo:
        """What the scheduler workflow keeps in its ScheduleInfo memo for ListSchedules."""
        return listing.list_info(self.schedule, self.info, self._future_action_times(FUTURE_ACTION_COUNT_FOR_LIST))

    def list_matching_times(
        self, request: wsv.ListScheduleMatchingTimesRequest
    ) -> wsv.ListScheduleMatchingTimesResponse:
        return listing.matching_times(self._spec, self.info.invalid_schedule_error, request)

    # ------------------------------------------------------------ state across continue-as-new

    def snapshot(self) -> bytes:
        """The core's own state (schedule, info and conflict token travel beside it in StartScheduleArgs)."""
        return CoreState(
            self._cursor, self._buffer, self._backfills, self._in_flight, self._last_completion_result,
            self._continued_failure, self._need_refresh, self._awaiting_refresh, self._seq,
        ).dump()  # fmt: skip

    def _load(self, raw: bytes) -> None:
        st = CoreState.load(raw)
        self._cursor, self._buffer, self._backfills, self._in_flight = st.cursor, st.buffer, st.backfills, st.in_flight
        self._last_completion_result, self._continued_failure = st.last_completion_result, st.continued_failure
        self._need_refresh, self._awaiting_refresh, self._seq = st.need_refresh, st.awaiting_refresh, st.seq

    @classmethod
    def restore(cls, args: bytes | schedule_pb2.StartScheduleArgs, now: datetime) -> Scheduler:
        """The scheduler a continue-as-new carried over (``to_args()``, possibly serialized)."""
        if isinstance(args, bytes):
            parsed = schedule_pb2.StartScheduleArgs()
            parsed.ParseFromString(args)
            args = parsed
        return cls.from_args(args, now)


def _copy_execution(ex: common.WorkflowExecution) -> common.WorkflowExecution:
    return common.WorkflowExecution(workflow_id=ex.workflow_id, run_id=ex.run_id)


__all__ = ["Scheduler"]
