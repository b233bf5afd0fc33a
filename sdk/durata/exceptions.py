"""Exception hierarchy matching temporalio.exceptions' public names."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from enum import IntEnum
from typing import Any

from temporalio.api.enums.v1 import workflow_pb2 as wf_enums


class TemporalError(Exception):
    """Base for all Durata SDK errors."""

    @property
    def cause(self) -> BaseException | None:
        return self.__cause__


class FailureError(TemporalError):
    """An error that maps to a Temporal Failure proto."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self._message = message
        self._failure: Any = None

    @property
    def message(self) -> str:
        return self._message

    @property
    def failure(self) -> Any:
        """The Failure proto this error was decoded from (if any)."""
        return self._failure


class ApplicationError(FailureError):
    """User error: raise it from workflows to fail them, from activities to control retries."""

    def __init__(
        self,
        message: str,
        *details: Any,
        type: str | None = None,
        non_retryable: bool = False,
        next_retry_delay: timedelta | None = None,
    ) -> None:
        super().__init__(message)
        self._details = details
        self._type = type
        self._non_retryable = non_retryable
        self._next_retry_delay = next_retry_delay

    @property
    def details(self) -> Sequence[Any]:
        return self._details

    @property
    def type(self) -> str | None:
        return self._type

    @property
    def non_retryable(self) -> bool:
        return self._non_retryable

    @property
    def next_retry_delay(self) -> timedelta | None:
        return self._next_retry_delay


class CancelledError(FailureError):
    """Cancellation as a Failure (distinct from asyncio.CancelledError)."""

    def __init__(self, message: str = "Cancelled", *details: Any) -> None:
        super().__init__(message)
        self._details = details

    @property
    def details(self) -> Sequence[Any]:
        return self._details


class TerminatedError(FailureError):
    def __init__(self, message: str, *details: Any) -> None:
        super().__init__(message)
        self._details = details


class TimeoutType(IntEnum):
    START_TO_CLOSE = 1
    SCHEDULE_TO_START = 2
    SCHEDULE_TO_CLOSE = 3
    HEARTBEAT = 4


class TimeoutError(FailureError):
    def __init__(self, message: str, *, type: TimeoutType | None, last_heartbeat_details: Sequence[Any]) -> None:
        super().__init__(message)
        self._type = type
        self._last_heartbeat_details = last_heartbeat_details

    @property
    def type(self) -> TimeoutType | None:
        return self._type

    @property
    def last_heartbeat_details(self) -> Sequence[Any]:
        return self._last_heartbeat_details


class ServerError(FailureError):
    def __init__(self, message: str, *, non_retryable: bool = False) -> None:
        super().__init__(message)
        self.non_retryable = non_retryable


class RetryState(IntEnum):
    IN_PROGRESS = wf_enums.RETRY_STATE_IN_PROGRESS
    NON_RETRYABLE_FAILURE = wf_enums.RETRY_STATE_NON_RETRYABLE_FAILURE
    TIMEOUT = wf_enums.RETRY_STATE_TIMEOUT
    MAXIMUM_ATTEMPTS_REACHED = wf_enums.RETRY_STATE_MAXIMUM_ATTEMPTS_REACHED
    RETRY_POLICY_NOT_SET = wf_enums.RETRY_STATE_RETRY_POLICY_NOT_SET
    INTERNAL_SERVER_ERROR = wf_enums.RETRY_STATE_INTERNAL_SERVER_ERROR
    CANCEL_REQUESTED = wf_enums.RETRY_STATE_CANCEL_REQUESTED


class ActivityError(FailureError):
    """Raised in a workflow when an activity fails; the real reason is ``cause``."""

    def __init__(
        self,
        message: str,
        *,
        scheduled_event_id: int,
        started_event_id: int,
        identity: str,
        activity_type: str,
        activity_id: str,
        retry_state: RetryState | None,
    ) -> None:
        super().__init__(message)
        self.scheduled_event_id = scheduled_event_id
        self.started_event_id = started_event_id
        self.identity = identity
        self.activity_type = activity_type
        self.activity_id = activity_id
        self.retry_state = retry_state


class ChildWorkflowError(FailureError):
    """Raised in a parent when a child fails; the real reason is ``cause``."""

    def __init__(
        self,
        message: str,
        *,
        namespace: str,
        workflow_id: str,
        run_id: str,
        workflow_type: str,
        initiated_event_id: int,
        started_event_id: int,
        retry_state: RetryState | None,
    ) -> None:
        super().__init__(message)
        self.namespace = namespace
        self.workflow_id = workflow_id
        self.run_id = run_id
        self.workflow_type = workflow_type
        self.initiated_event_id = initiated_event_id
        self.started_event_id = started_event_id
        self.retry_state = retry_state


class WorkflowAlreadyStartedError(FailureError):
    def __init__(self, workflow_id: str, workflow_type: str, *, run_id: str | None = None) -> None:
        super().__init__("Workflow execution already started")
        self.workflow_id = workflow_id
        self.workflow_type = workflow_type
        self.run_id = run_id


class NondeterminismError(TemporalError):
    """Replayed workflow code produced commands that differ from history."""


class RPCStatusCode(IntEnum):
    """gRPC status codes (same names and values as temporalio.service.RPCStatusCode)."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


class RPCError(TemporalError):
    """A gRPC call failed; ``status`` is an RPCStatusCode."""

    def __init__(self, message: str, status: Any, raw_details: bytes = b"") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.raw_details = raw_details


def is_cancelled_exception(exc: BaseException) -> bool:
    """True for asyncio cancellation or a Temporal cancellation failure (possibly wrapped)."""
    import asyncio

    if isinstance(exc, asyncio.CancelledError | CancelledError):
        return True
    return isinstance(exc, ActivityError | ChildWorkflowError) and isinstance(exc.cause, CancelledError)
