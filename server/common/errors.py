"""Service errors that carry a gRPC status code and an optional Temporal error detail.

Every service raises these (never bare exceptions for client mistakes). The gRPC edge turns them into a
``google.rpc.Status`` with the detail packed as the first ``Any``; internal gRPC clients turn them back, so an
in-process call and a cross-process call fail the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from google.protobuf.message import Message
from temporalio.api.errordetails.v1 import message_pb2 as errordetails

# Longest error message sent to a client: a message that quotes a client's 10,000-character input is cut here.
MAX_MESSAGE_CHARS = 1000


def shorten(value: str, limit: int = 200) -> str:
    """A client-supplied value quoted in an error message, cut to ``limit`` characters."""
    return value if len(value) <= limit else f"{value[:limit]}... ({len(value) - limit} more characters)"


class ServiceError(Exception):
    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str, detail: Message | None = None, code: grpc.StatusCode | None = None) -> None:
        message = shorten(message, MAX_MESSAGE_CHARS)
        super().__init__(message)
        self.message = message
        self.detail = detail
        if code is not None:
            self.code = code

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code.name}: {self.message})"


class InvalidArgument(ServiceError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(ServiceError):
    code = grpc.StatusCode.NOT_FOUND

    def __init__(self, message: str, detail: Message | None = None) -> None:
        super().__init__(message, detail if detail is not None else errordetails.NotFoundFailure())


class NamespaceNotFound(ServiceError):
    code = grpc.StatusCode.NOT_FOUND

    def __init__(self, namespace: str) -> None:
        super().__init__(
            f"Namespace {namespace} is not found.", errordetails.NamespaceNotFoundFailure(namespace=namespace)
        )


class AlreadyExists(ServiceError):
    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(ServiceError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class NamespaceInvalidState(FailedPrecondition):
    """A namespace in a state the API does not accept (e.g. DELETED, under its tombstone name)."""

    def __init__(self, namespace: str, state: int, allowed: Sequence[int]) -> None:
        short = {1: "Registered", 2: "Deprecated", 3: "Deleted"}
        super().__init__(
            f"Namespace has invalid state: {short.get(state, str(state))}. "
            f"Must be {' or '.join(short.get(a, str(a)) for a in allowed)}.",
            errordetails.NamespaceInvalidStateFailure(
                namespace=namespace, state=state, allowed_states=list(allowed)  # type: ignore[arg-type]
            ),
        )


class ResourceExhausted(ServiceError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(ServiceError):
    """Retryable: e.g. a shard is moving between hosts."""

    code = grpc.StatusCode.UNAVAILABLE


class Internal(ServiceError):
    code = grpc.StatusCode.INTERNAL


class Unimplemented(ServiceError):
    code = grpc.StatusCode.UNIMPLEMENTED


class DeadlineExceeded(ServiceError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


SHARD_OWNERSHIP_LOST_PREFIX = "shard ownership lost"


class ShardOwnershipLost(Unavailable):
    """The shard's range_id moved on: another host owns it now. The caller drops the shard."""

    def __init__(self, shard_id: int, message: str = "") -> None:
        # Temporal's ShardOwnershipLostFailure detail is server-internal (not in the public API); the message
        # prefix is what routers look for when they retry on the new owner.
        super().__init__(message or f"{SHARD_OWNERSHIP_LOST_PREFIX}: shard {shard_id}")
        self.shard_id = shard_id


class ConditionFailed(ServiceError):
    """Optimistic-concurrency conflict in persistence (expected version/next_event_id did not match)."""

    code = grpc.StatusCode.UNAVAILABLE


class CurrentRunConflict(ServiceError):
    """Creating a run lost the compare-and-swap on the current-run row."""

    code = grpc.StatusCode.ALREADY_EXISTS

    def __init__(self, message: str, current_run_id: str, request_id: str, state: int, status: int) -> None:
        super().__init__(message)
        self.current_run_id = current_run_id
        self.request_id = request_id
        self.state = state
        self.status = status


# Detail type name -> class, used to rebuild errors from a google.rpc.Status received over gRPC.
DETAIL_TYPES: dict[str, type[Message]] = {
    cls.DESCRIPTOR.full_name: cls
    for cls in (
        errordetails.NotFoundFailure,
        errordetails.NamespaceNotFoundFailure,
        errordetails.NamespaceAlreadyExistsFailure,
        errordetails.WorkflowExecutionAlreadyStartedFailure,
        errordetails.QueryFailedFailure,
        errordetails.WorkflowNotReadyFailure,
        errordetails.ResourceExhaustedFailure,
        errordetails.NamespaceNotActiveFailure,
        errordetails.NamespaceUnavailableFailure,
        errordetails.MultiOperationExecutionFailure,
        errordetails.PermissionDeniedFailure,
        errordetails.ClientVersionNotSupportedFailure,
        errordetails.NamespaceInvalidStateFailure,
        errordetails.SystemWorkflowFailure,
        errordetails.CancellationAlreadyRequestedFailure,
    )
}


_CLASS_BY_CODE: dict[grpc.StatusCode, type[ServiceError]] = {
    cls.code: cls
    for cls in (
        InvalidArgument,
        NotFound,
        AlreadyExists,
        FailedPrecondition,
        ResourceExhausted,
        Unavailable,
        Internal,
        Unimplemented,
        DeadlineExceeded,
    )
}


def error_from_status(code: grpc.StatusCode, message: str, detail: Message | None) -> ServiceError:
    """Rebuild the ServiceError subclass for a status received over gRPC, so ``except FailedPrecondition``
    works the same across processes as in one process."""
    if code == grpc.StatusCode.NOT_FOUND and isinstance(detail, errordetails.NamespaceNotFoundFailure):
        cls: type[ServiceError] = NamespaceNotFound
    elif code == grpc.StatusCode.FAILED_PRECONDITION and isinstance(
        detail, errordetails.NamespaceInvalidStateFailure
    ):
        cls = NamespaceInvalidState
    elif code == grpc.StatusCode.UNAVAILABLE and message.startswith(SHARD_OWNERSHIP_LOST_PREFIX):
        cls = ShardOwnershipLost
    else:
        cls = _CLASS_BY_CODE.get(code, ServiceError)
    err = cls.__new__(cls)
    ServiceError.__init__(err, message, detail, code=code)
    if isinstance(err, ShardOwnershipLost):
        tail = message.rsplit(" ", 1)[-1]
        err.shard_id = int(tail) if tail.isdigit() else 0
    return err
