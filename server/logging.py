"""Process-wide structured logging: structlog, one JSON object per line on stderr.

Every service logs through ``structlog.get_logger("durata.<service>")``; the logger name becomes the ``service``
field. Request context (namespace, workflow_id, run_id, shard_id) is bound with ``structlog.contextvars`` so it
follows the asyncio task that handles one request. Standard-library loggers (grpc, asyncio, alembic) go through
the same renderer, so a log collector sees one format.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, TextIO

import structlog

LOG_FORMATS = ("json", "console")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")

# Request fields bound from public and internal requests (see bind_request_context).
CONTEXT_FIELDS = ("namespace", "workflow_id", "run_id", "shard_id")


# gRPC service names (as the RPC layer reports them) -> the role that serves them.
_GRPC_SERVICE_ROLES = {
    "HistoryService": "history",
    "MatchingService": "matching",
    "WorkflowService": "frontend",
    "OperatorService": "frontend",
}


def _add_service(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Derive ``service`` from the logger name (``durata.history`` -> ``history``) unless bound explicitly; a
    full gRPC service name becomes its role (``...history.v1.HistoryService`` -> ``history``)."""
    name = event.pop("logger", None)
    service = event.get("service")
    if service is None:
        if isinstance(name, str) and name.startswith("durata."):
            event["service"] = name.split(".", 2)[1]
        elif name:
            event["service"] = name
    elif isinstance(service, str) and "." in service:
        short = service.rsplit(".", 1)[-1]
        if short in _GRPC_SERVICE_ROLES:
            event["grpc_service"] = service
            event["service"] = _GRPC_SERVICE_ROLES[short]
    return event


def _shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        _add_service,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        structlog.processors.StackInfoRenderer(),
    ]


def configure_logging(level: str = "info", fmt: str = "json", stream: TextIO | None = None) -> None:
    """Configure structlog and the stdlib root logger. Safe to call more than once (last call wins)."""
    level_no = logging.getLevelName(level.upper())
    if not isinstance(level_no, int):
        raise ValueError(f"unknown log level {level!r}; use one of {', '.join(LOG_LEVELS)}")
    if fmt not in LOG_FORMATS:
        raise ValueError(f"unknown log format {fmt!r}; use one of {', '.join(LOG_FORMATS)}")

    renderer: Any
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
        final = [structlog.processors.format_exc_info, structlog.processors.dict_tracebacks, renderer]
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
        final = [renderer]

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
    )
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level_no)
    # grpc's C core and asyncio are chatty at debug; keep them at warning unless we are debugging them.
    for noisy in ("asyncio", "grpc._cython.cygrpc", "alembic"):
        logging.getLogger(noisy).setLevel(max(level_no, logging.WARNING))

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def request_context(request: Any) -> dict[str, Any]:
    """Pick namespace/workflow_id/run_id out of a public or internal request message (best effort, no parsing
    of tokens)."""
    ctx: dict[str, Any] = {}
    inner = getattr(request, "request", None)  # internal requests wrap the public one
    for msg in (request, inner) if inner is not None and hasattr(inner, "DESCRIPTOR") else (request,):
        fields = msg.DESCRIPTOR.fields_by_name
        if "namespace" in fields and msg.namespace and "namespace" not in ctx:
            ctx["namespace"] = msg.namespace
        if "workflow_id" in fields and msg.workflow_id and "workflow_id" not in ctx:
            ctx["workflow_id"] = msg.workflow_id
        for exec_field in ("workflow_execution", "execution"):
            if exec_field in fields and msg.HasField(exec_field):
                execution = getattr(msg, exec_field)
                if execution.workflow_id:
                    ctx.setdefault("workflow_id", execution.workflow_id)
                if execution.run_id:
                    ctx.setdefault("run_id", execution.run_id)
    return ctx


@contextmanager
def bound_request(request: Any) -> Iterator[None]:
    """Bind the request's namespace/workflow_id/run_id for the duration of one RPC."""
    try:
        ctx = request_context(request)
    except Exception:  # never let logging context break a request
        ctx = {}
    if not ctx:
        yield
        return
    with structlog.contextvars.bound_contextvars(**ctx):
        yield
