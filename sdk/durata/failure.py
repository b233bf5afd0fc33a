"""Mapping between Python exceptions and Temporal's Failure proto (same conventions as the official SDK)."""

from __future__ import annotations

import asyncio
import traceback
from typing import Any

from temporalio.api.common.v1 import message_pb2 as common_pb
from temporalio.api.enums.v1 import workflow_pb2 as wf_enums
from temporalio.api.failure.v1 import message_pb2 as failure_pb

from . import exceptions as exc
from .converter import DataConverter


def _details(conv: DataConverter, values: Any) -> common_pb.Payloads:
    return conv.encode_payloads(list(values))


def to_failure(err: BaseException, conv: DataConverter | None = None) -> failure_pb.Failure:
    """Encode any exception; non-Temporal exceptions become retryable ApplicationFailures typed by class name."""
    conv = conv or DataConverter.default
    f = failure_pb.Failure(source="DurataPythonSDK")
    f.message = str(err) if not isinstance(err, exc.FailureError) else err.message
    f.stack_trace = "".join(traceback.format_exception(err)) if err.__traceback__ else ""
    if isinstance(err, exc.ApplicationError):
        info = f.application_failure_info
        info.type = err.type or "ApplicationError"
        info.non_retryable = err.non_retryable
        if err.details:
            info.details.CopyFrom(_details(conv, err.details))
        if err.next_retry_delay:
            info.next_retry_delay.FromTimedelta(err.next_retry_delay)
    elif isinstance(err, exc.CancelledError):
        f.canceled_failure_info.SetInParent()
        if err.details:
            f.canceled_failure_info.details.CopyFrom(_details(conv, err.details))
    elif isinstance(err, asyncio.CancelledError):
        f.message = f.message or "Cancelled"
        f.canceled_failure_info.SetInParent()
    elif isinstance(err, exc.TerminatedError):
        f.terminated_failure_info.SetInParent()
    elif isinstance(err, exc.TimeoutError):
        f.timeout_failure_info.timeout_type = wf_enums.TimeoutType.ValueType(err.type or 0)
        if err.last_heartbeat_details:
            f.timeout_failure_info.last_heartbeat_details.CopyFrom(_details(conv, err.last_heartbeat_details))
    elif isinstance(err, exc.ServerError):
        f.server_failure_info.non_retryable = err.non_retryable
    elif isinstance(err, exc.ActivityError):
        a = f.activity_failure_info
        a.scheduled_event_id = err.scheduled_event_id
        a.started_event_id = err.started_event_id
        a.identity = err.identity
        a.activity_type.name = err.activity_type
        a.activity_id = err.activity_id
        a.retry_state = wf_enums.RetryState.ValueType(err.retry_state or 0)
    elif isinstance(err, exc.ChildWorkflowError):
        c = f.child_workflow_execution_failure_info
        c.namespace = err.namespace
        c.workflow_execution.workflow_id = err.workflow_id
        c.workflow_execution.run_id = err.run_id
        c.workflow_type.name = err.workflow_type
        c.initiated_event_id = err.initiated_event_id
        c.started_event_id = err.started_event_id
        c.retry_state = wf_enums.RetryState.ValueType(err.retry_state or 0)
    else:
        f.application_failure_info.type = type(err).__name__
    cause = err.__cause__
    if cause is not None:
        f.cause.CopyFrom(to_failure(cause, conv))
    return f


def from_failure(f: failure_pb.Failure, conv: DataConverter | None = None) -> exc.FailureError:
    """Decode a Failure proto into the matching exception, with ``__cause__`` chained."""
    conv = conv or DataConverter.default
    which = f.WhichOneof("failure_info")
    err: exc.FailureError
    if which == "application_failure_info":
        i = f.application_failure_info
        err = exc.ApplicationError(
            f.message,
            *conv.decode(i.details.payloads),
            type=i.type or None,
            non_retryable=i.non_retryable,
            next_retry_delay=i.next_retry_delay.ToTimedelta() if i.HasField("next_retry_delay") else None,
        )
    elif which == "canceled_failure_info":
        err = exc.CancelledError(f.message, *conv.decode(f.canceled_failure_info.details.payloads))
    elif which == "terminated_failure_info":
        err = exc.TerminatedError(f.message)
    elif which == "timeout_failure_info":
        t = f.timeout_failure_info
        err = exc.TimeoutError(
            f.message,
            type=exc.TimeoutType(t.timeout_type) if t.timeout_type else None,
            last_heartbeat_details=conv.decode(t.last_heartbeat_details.payloads),
        )
    elif which == "server_failure_info":
        err = exc.ServerError(f.message, non_retryable=f.server_failure_info.non_retryable)
    elif which == "activity_failure_info":
        a = f.activity_failure_info
        err = exc.ActivityError(
            f.message or "Activity task failed",
            scheduled_event_id=a.scheduled_event_id,
            started_event_id=a.started_event_id,
            identity=a.identity,
            activity_type=a.activity_type.name,
            activity_id=a.activity_id,
            retry_state=exc.RetryState(a.retry_state) if a.retry_state else None,
        )
    elif which == "child_workflow_execution_failure_info":
        c = f.child_workflow_execution_failure_info
        err = exc.ChildWorkflowError(
            f.message or "Child Workflow execution failed",
            namespace=c.namespace,
            workflow_id=c.workflow_execution.workflow_id,
            run_id=c.workflow_execution.run_id,
            workflow_type=c.workflow_type.name,
            initiated_event_id=c.initiated_event_id,
            started_event_id=c.started_event_id,
            retry_state=exc.RetryState(c.retry_state) if c.retry_state else None,
        )
    else:
        err = exc.FailureError(f.message)
    err._failure = f
    if f.HasField("cause"):
        err.__cause__ = from_failure(f.cause, conv)
    return err
