"""What every RPC group shares: namespace resolution (by name or from a task token) and log context."""

from __future__ import annotations

import structlog

from server.common.errors import InvalidArgument
from services.frontend.context import FrontendContext
from services.frontend.namespace_registry import NamespaceEntry
from services.frontend.validation import check_id

log = structlog.get_logger("durata.frontend")


def log_context(**values: str):  # noqa: ANN201 - a context manager from structlog
    """Bind request identifiers (namespace, workflow_id, ...) for everything logged while handling one RPC."""
    return structlog.contextvars.bound_contextvars(**{k: v for k, v in values.items() if v})


class HandlerBase:
    """Mixed into the WorkflowService handler; each RPC group is a subclass living in its own module."""

    _ctx: FrontendContext

    def __init__(self, ctx: FrontendContext) -> None:
        self._ctx = ctx

    async def _namespace(self, name: str) -> NamespaceEntry:
        if not name:
            raise InvalidArgument("Namespace not set on request.")
        check_id(name, "Namespace", self._ctx.config)
        return await self._ctx.namespaces.by_name(name)

    async def _namespace_for_token(self, request_namespace: str, token_namespace_id: str) -> NamespaceEntry:
        """The namespace a task token belongs to; if the request names one, it must be the same."""
        if not request_namespace:
            return await self._ctx.namespaces.by_id(token_namespace_id)
        entry = await self._namespace(request_namespace)
        if entry.id != token_namespace_id:
            raise InvalidArgument(f"Task token does not belong to namespace {request_namespace}.")
        return entry
