"""The scheduler's buffer of pending starts and how overlap policies resolve it, as Temporal's scheduler does.

Pure: given the buffer and whether a tracked run is still running, say what to start now, what stays buffered,
what is skipped and whether the running run must be cancelled or terminated. Entries with an unspecified
policy are resolved late (at each pass) so that an update of the schedule's policy applies to them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from temporalio.api.enums.v1 import schedule_pb2

OP = schedule_pb2.ScheduleOverlapPolicy
SKIP = OP.SCHEDULE_OVERLAP_POLICY_SKIP
BUFFER_ONE = OP.SCHEDULE_OVERLAP_POLICY_BUFFER_ONE
BUFFER_ALL = OP.SCHEDULE_OVERLAP_POLICY_BUFFER_ALL
CANCEL_OTHER = OP.SCHEDULE_OVERLAP_POLICY_CANCEL_OTHER
TERMINATE_OTHER = OP.SCHEDULE_OVERLAP_POLICY_TERMINATE_OTHER
ALLOW_ALL = OP.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL
UNSPECIFIED = OP.SCHEDULE_OVERLAP_POLICY_UNSPECIFIED


@dataclass
class BufferedStart:
    """A start waiting to be taken: its nominal (spec) time, its actual (jittered) time, the policy it was
    requested with (UNSPECIFIED: the schedule's, resolved late) and whether it is manual (trigger/backfill)."""

    nominal: datetime
    actual: datetime
    overlap_policy: int
    manual: bool


@dataclass
class BufferResult:
    # ALLOW_ALL starts: all of them may start now
    overlapping: list[BufferedStart] = field(default_factory=list)
    # at most one non-overlapping start to take now
    non_overlapping: BufferedStart | None = None
    new_buffer: list[BufferedStart] = field(default_factory=list)
    need_cancel: bool = False
    need_terminate: bool = False
    overlap_skipped: int = 0
    # CANCEL_OTHER / TERMINATE_OTHER starts displaced by a later one before they ran (Temporal counts them
    # nowhere)
    replaced: int = 0


def resolve_policy(requested: int, schedule_policy: int) -> int:
    """UNSPECIFIED means the schedule's policy, and an unspecified schedule policy means SKIP."""
    policy = requested or schedule_policy
    return policy or SKIP


def process_buffer(
    buffer: list[BufferedStart], is_running: bool, resolve: Callable[[int], int]
) -> BufferResult:
    """One pass over the buffer in order (Temporal's semantics, including its odd combinations of policies)."""
    out = BufferResult()
    for start in buffer:
        policy = resolve(start.overlap_policy)
        if policy == ALLOW_ALL:
            out.overlapping.append(start)
            continue
        if not is_running and out.non_overlapping is None:
            out.non_overlapping = start
            continue
        if policy == SKIP:
            out.overlap_skipped += 1
        elif policy == BUFFER_ONE:
            if out.new_buffer:
                out.overlap_skipped += 1
            else:
                out.new_buffer.append(start)
        elif policy == BUFFER_ALL:
            out.new_buffer.append(start)
        elif policy in (CANCEL_OTHER, TERMINATE_OTHER):
            if is_running:
                # a real run is in the way: stop it, and keep this start until it has closed
                if policy == CANCEL_OTHER:
                    out.need_cancel = True
                else:
                    out.need_terminate = True
                out.new_buffer.append(start)
            else:
                # only the start chosen in this pass is in the way: this one replaces it
                out.replaced += 1
                out.non_overlapping = start
        else:  # an unknown policy value is treated as SKIP
            out.overlap_skipped += 1
    if out.need_cancel or out.need_terminate:
        # whatever would overlap is about to be stopped as well: do not bother starting it
        out.overlapping = []
    return out
