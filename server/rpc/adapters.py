"""Glue between service handlers and gRPC, shared by every service.

A *handler* is a plain object with one coroutine per RPC, named exactly as in the service descriptor:

    async def StartWorkflowExecution(self, request, *, deadline: float | None = None) -> Response

``deadline`` is an absolute ``time.monotonic()`` value (None = no deadline); long polls use it to return an
empty answer before the caller gives up. Handlers raise ``ServiceError`` for anything a caller should see.

- In one process the handler *is* the client: callers hold it directly (no serialization, no sockets).
- ``GrpcClient`` gives the same call shape over a channel and turns gRPC errors back into ``ServiceError``.
- ``add_handler_to_server`` exposes a handler on a ``grpc.aio`` server and turns ``ServiceError`` into a status
  with the Temporal error detail packed as the first ``Any`` (what the SDKs read).
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import grpc.aio
import structlog
from google.protobuf import any_pb2
from google.protobuf.descriptor import ServiceDescriptor
from google.rpc import code_pb2, status_pb2
from grpc_status import rpc_status

from server.common.errors import DETAIL_TYPES, InvalidArgument, ServiceError, error_from_status

log = structlog.get_logger("durata.rpc")

# Metadata of the incoming gRPC call being handled (key, value) pairs; empty for in-process calls. Lets a handler
# read headers such as ``client-name`` without changing the handler signature.
request_metadata: contextvars.ContextVar[tuple[tuple[str, str | bytes], ...]] = contextvars.ContextVar(
    "durata_request_metadata", default=()
)


def request_header(name: str) -> str:
    """Value of a text header of the current incoming gRPC call ('' if absent or in-process)."""
    for key, value in request_metadata.get():
        if key == name and isinstance(value, str):
            return value
    return ""


# Observers called after each handled RPC: (service, method, status_code_name, seconds). Metrics hook in here.
RpcObserver = Callable[[str, str, str, float], None]
_observers: list[RpcObserver] = []


def add_rpc_observer(observer: RpcObserver) -> None:
    _observers.append(observer)


# Observers of the last-resort guard: (service, method, exception type name). A bug surfaced as INTERNAL is counted
# so that a test run can fail when any handler let a Python exception escape.
UnhandledObserver = Callable[[str, str, str], None]
_unhandled_observers: list[UnhandledObserver] = []


def add_unhandled_observer(observer: UnhandledObserver) -> None:
    _unhandled_observers.append(observer)


class Unparseable:
    """What the request deserializer hands over for a body that is not a valid message of the method's type: the
    method answers INVALID_ARGUMENT itself, so gRPC never sees a deserializer exception (UNKNOWN plus a traceback
    in the log for every such request)."""

    __slots__ = ("type_name", "reason")

    def __init__(self, type_name: str, reason: str) -> None:
        self.type_name = type_name
        self.reason = reason


def safe_deserializer(parse: Callable[[bytes], Any], type_name: str) -> Callable[[bytes], Any]:
    def deserialize(data: bytes) -> Any:
        try:
            return parse(data)
        except Exception as err:  # DecodeError, RecursionError, bad UTF-8: all mean "not this message"
            return Unparseable(type_name, type(err).__name__)

    return deserialize


def _observe(service: str, method: str, code: str, seconds: float) -> None:
    for obs in _observers:
        obs(service, method, code, seconds)


def error_to_status(err: ServiceError) -> status_pb2.Status:
    details = []
    if err.detail is not None:
        packed = any_pb2.Any()
        packed.Pack(err.detail)
        details.append(packed)
    return status_pb2.Status(code=err.code.value[0], message=err.message, details=details)


def status_to_error(err: grpc.aio.AioRpcError) -> ServiceError:
    detail = None
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    if status is not None and status.details:
        first = status.details[0]
        cls = DETAIL_TYPES.get(first.TypeName())
        if cls is not None:
            detail = cls()
            first.Unpack(detail)
    return error_from_status(err.code(), err.details() or "", detail)


def _deadline_from_context(context: grpc.aio.ServicerContext) -> float | None:
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining


def _make_method(service: str, name: str, handler_method: Callable[..., Awaitable[Any]]):  # noqa: ANN202
    async def method(request: Any, context: grpc.aio.ServicerContext) -> Any:
        start = time.perf_counter()
        code = "OK"
        md_token = request_metadata.set(tuple(context.invocation_metadata() or ()))
        try:
            if isinstance(request, Unparseable):
                raise InvalidArgument(
                    f"Request body is not a valid {request.type_name} message ({request.reason})."
                )
            return await handler_method(request, deadline=_deadline_from_context(context))
        except ServiceError as err:
            code = err.code.name
            await context.abort_with_status(rpc_status.to_status(error_to_status(err)))
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            code = "INTERNAL"
            log.exception("unhandled error in rpc", service=service, method=name)
            for observer in _unhandled_observers:
                observer(service, name, type(exc).__name__)
            await context.abort_with_status(
                rpc_status.to_status(
                    status_pb2.Status(code=code_pb2.INTERNAL, message=f"internal error in {name}; see server log")
                )
            )
        finally:
            request_metadata.reset(md_token)
            _observe(service, name, code, time.perf_counter() - start)

    return method


def add_handler_to_server(
    server: grpc.aio.Server,
    descriptor: ServiceDescriptor,
    handler: object,
    request_deserializers: dict[str, Callable[[bytes], Any]],
) -> None:
    """Register ``handler`` for every method of ``descriptor`` it implements; the rest answer UNIMPLEMENTED."""
    from google.protobuf import symbol_database

    sym_db = symbol_database.Default()
    rpc_handlers = {}
    for m in descriptor.methods:
        impl = getattr(handler, m.name, None)
        if impl is None:
            continue
        req_cls = sym_db.GetSymbol(m.input_type.full_name)
        resp_cls = sym_db.GetSymbol(m.output_type.full_name)
        rpc_handlers[m.name] = grpc.unary_unary_rpc_method_handler(
            _make_method(descriptor.full_name, m.name, impl),
            request_deserializer=safe_deserializer(
                request_deserializers.get(m.name, req_cls.FromString), m.input_type.name
            ),
            response_serializer=resp_cls.SerializeToString,
        )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(descriptor.full_name, rpc_handlers),))


class GrpcClient:
    """Calls a remote handler with the in-process call shape: ``await client.Method(req, deadline=...)``."""

    def __init__(self, channel: grpc.aio.Channel, descriptor: ServiceDescriptor) -> None:
        from google.protobuf import symbol_database

        sym_db = symbol_database.Default()
        self._calls: dict[str, Any] = {}
        for m in descriptor.methods:
            resp_cls = sym_db.GetSymbol(m.output_type.full_name)
            self._calls[m.name] = channel.unary_unary(
                f"/{descriptor.full_name}/{m.name}",
                request_serializer=lambda msg: msg.SerializeToString(),
                response_deserializer=resp_cls.FromString,
            )

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        try:
            call = self._calls[name]
        except KeyError:
            raise AttributeError(name) from None

        async def invoke(request: Any, *, deadline: float | None = None) -> Any:
            timeout = None if deadline is None else max(0.001, deadline - time.monotonic())
            try:
                return await call(request, timeout=timeout)
            except grpc.aio.AioRpcError as err:
                raise status_to_error(err) from None

        return invoke


# Message-size and keepalive settings the SDKs need (see the behaviour reference, section 1).
GRPC_SERVER_OPTIONS = [
    ("grpc.max_receive_message_length", 128 * 1024 * 1024),
    ("grpc.max_send_message_length", 128 * 1024 * 1024),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.http2.max_ping_strikes", 0),
    ("grpc.so_reuseport", 0),
]
GRPC_CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 128 * 1024 * 1024),
    ("grpc.max_send_message_length", 128 * 1024 * 1024),
]
