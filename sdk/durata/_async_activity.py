"""Completing activities from outside the worker (``activity.raise_complete_async()``), like temporalio's
``AsyncActivityHandle``: by task token, or by workflow id + run id + activity id (the ``*ById`` RPCs)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv

from . import exceptions as exc
from .failure import to_failure

if TYPE_CHECKING:
    from .client import Client

_UNSET: Any = object()


class AsyncActivityCancelledError(exc.TemporalError):
    """A heartbeat through an AsyncActivityHandle learned that cancellation of the activity was requested."""

    def __init__(self) -> None:
        super().__init__("Activity cancelled")


@dataclasses.dataclass(frozen=True)
class AsyncActivityIDReference:
    """An activity identified by its workflow and activity ids (instead of its task token)."""

    workflow_id: str
    run_id: str | None
    activity_id: str


class AsyncActivityHandle:
    """Heartbeat, complete, fail or report the cancellation of an activity that completes asynchronously."""

    def __init__(self, client: Client, id_or_token: AsyncActivityIDReference | bytes) -> None:
        self._client = client
        self._id_or_token = id_or_token

    def _ids(self) -> dict[str, Any]:
        ref = self._id_or_token
        assert isinstance(ref, AsyncActivityIDReference)
        return {"workflow_id": ref.workflow_id, "run_id": ref.run_id or "", "activity_id": ref.activity_id}

    def _common(self) -> dict[str, Any]:
        return {"namespace": self._client.namespace, "identity": self._client.identity}

    async def _send(self, method: str, by_token: type, by_id: type, rpc_timeout: timedelta | None,
                    **fields: Any) -> Any:
        if isinstance(self._id_or_token, bytes):
            req = by_token(task_token=self._id_or_token, **self._common(), **fields)
            return await self._client._call(method, req, rpc_timeout)
        req = by_id(**self._ids(), **self._common(), **fields)
        return await self._client._call(method + "ById", req, rpc_timeout)

    async def heartbeat(self, *details: Any, rpc_timeout: timedelta | None = None, **_: Any) -> None:
        """Record a heartbeat; raises AsyncActivityCancelledError once cancellation was requested."""
        fields = {"details": self._client.data_converter.encode_payloads(list(details))} if details else {}
        resp = await self._send("RecordActivityTaskHeartbeat", wsv.RecordActivityTaskHeartbeatRequest,
                                wsv.RecordActivityTaskHeartbeatByIdRequest, rpc_timeout, **fields)
        if resp.cancel_requested:
            raise AsyncActivityCancelledError()

    async def complete(self, result: Any = _UNSET, *, rpc_timeout: timedelta | None = None, **_: Any) -> None:
        """Complete the activity with ``result`` (no result: ``None``)."""
        values = [] if result is _UNSET else [result]
        await self._send("RespondActivityTaskCompleted", wsv.RespondActivityTaskCompletedRequest,
                         wsv.RespondActivityTaskCompletedByIdRequest, rpc_timeout,
                         result=self._client.data_converter.encode_payloads(values))

    async def fail(self, error: BaseException, *, last_heartbeat_details: Sequence[Any] = (),
                   rpc_timeout: timedelta | None = None, **_: Any) -> None:
        """Fail the activity attempt (retried per the activity's retry policy, as if the activity raised it)."""
        conv = self._client.data_converter
        fields: dict[str, Any] = {"failure": to_failure(error, conv)}
        if last_heartbeat_details:
            fields["last_heartbeat_details"] = conv.encode_payloads(list(last_heartbeat_details))
        await self._send("RespondActivityTaskFailed", wsv.RespondActivityTaskFailedRequest,
                         wsv.RespondActivityTaskFailedByIdRequest, rpc_timeout, **fields)

    async def report_cancellation(self, *details: Any, rpc_timeout: timedelta | None = None, **_: Any) -> None:
        """Confirm cancellation (after a heartbeat raised AsyncActivityCancelledError)."""
        fields = {"details": self._client.data_converter.encode_payloads(list(details))} if details else {}
        await self._send("RespondActivityTaskCanceled", wsv.RespondActivityTaskCanceledRequest,
                         wsv.RespondActivityTaskCanceledByIdRequest, rpc_timeout, **fields)


def async_activity_handle(client: Client, *, workflow_id: str | None, run_id: str | None, activity_id: str | None,
                          task_token: bytes | None) -> AsyncActivityHandle:
    if task_token is not None:
        if workflow_id is not None or run_id is not None or activity_id is not None:
            raise ValueError("Task token cannot be present with other IDs")
        return AsyncActivityHandle(client, task_token)
    if workflow_id is not None and activity_id is not None:
        return AsyncActivityHandle(client, AsyncActivityIDReference(workflow_id, run_id, activity_id))
    raise ValueError("Require task token, or workflow_id & run_id & activity_id")
