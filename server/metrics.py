"""Prometheus metrics for one Durata process, served on ``/metrics``.

The RPC metrics come from the observer hook in ``server.rpc.adapters`` (every handled gRPC call reports
service, method, status and duration), so services need no metrics code for them. Persistence latency comes from
``instrument_persistence``, a thin timing proxy around the store objects. Services add their own metrics by
importing the module-level objects below (or defining new ones on ``REGISTRY``).
"""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIServer

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Metric, start_http_server
from prometheus_client import generate_latest as _generate_latest

from server.rpc import adapters

REGISTRY = CollectorRegistry(auto_describe=True)

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

RPC_REQUESTS = Counter(
    "durata_rpc_requests",
    "gRPC requests handled, by service, method and status code",
    ["service", "method", "status"],
    registry=REGISTRY,
)
RPC_LATENCY = Histogram(
    "durata_rpc_latency_seconds",
    "gRPC handling time (long polls included), by service, method and status code",
    ["service", "method", "status"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
RPC_UNHANDLED = Counter(
    "durata_rpc_unhandled_errors",
    "RPCs that ended in the last-resort guard (a Python exception no handler turned into a status): always a bug",
    ["service", "method", "error"],
    registry=REGISTRY,
)
PERSISTENCE_LATENCY = Histogram(
    "durata_persistence_latency_seconds",
    "Time spent in one persistence call, by store and operation",
    ["store", "operation"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
PERSISTENCE_ERRORS = Counter(
    "durata_persistence_errors",
    "Persistence calls that raised, by store, operation and error type",
    ["store", "operation", "error"],
    registry=REGISTRY,
)
RETENTION_DELETED = Counter(
    "durata_retention_deleted_executions",
    "Closed workflow runs deleted by the retention job, by namespace",
    ["namespace"],
    registry=REGISTRY,
)
RETENTION_ERRORS = Counter(
    "durata_retention_errors",
    "Errors met by the retention job (it logs them and keeps going)",
    registry=REGISTRY,
)
RETENTION_SWEEPS = Counter(
    "durata_retention_sweeps",
    "Completed retention sweeps over all namespaces",
    registry=REGISTRY,
)
PROCESS_UP = Gauge(
    "durata_service_up",
    "1 for every service role running in this process",
    ["service"],
    registry=REGISTRY,
)


def _short_service(full_name: str) -> str:
    """``temporal.api.workflowservice.v1.WorkflowService`` -> ``WorkflowService`` (keeps label values short)."""
    return full_name.rsplit(".", 1)[-1]


# (full service name, method, status) -> the two label children. ``.labels()`` costs a lock, a tuple build and a
# dict lookup per call; the set of label combinations is small and fixed, so resolve each one once.
_RPC_CHILDREN: dict[tuple[str, str, str], tuple[Any, Any]] = {}


def observe_rpc(service: str, method: str, status: str, seconds: float) -> None:
    key = (service, method, status)
    children = _RPC_CHILDREN.get(key)
    if children is None:
        name = _short_service(service)
        children = _RPC_CHILDREN[key] = (RPC_REQUESTS.labels(name, method, status), RPC_LATENCY.labels(name, method, status))
    children[0].inc()
    children[1].observe(seconds)


def observe_unhandled(service: str, method: str, error: str) -> None:
    RPC_UNHANDLED.labels(_short_service(service), method, error).inc()


_installed = False
_install_lock = threading.Lock()


def install_rpc_observer() -> None:
    """Hook the RPC metrics into the gRPC adapters (idempotent)."""
    global _installed
    with _install_lock:
        if not _installed:
            adapters.add_rpc_observer(observe_rpc)
            adapters.add_unhandled_observer(observe_unhandled)
            _installed = True


class _Union:
    """Collector that yields everything of several registries: Durata's own plus prometheus_client's default one
    (process/GC metrics, and metrics a module registered there without naming a registry)."""

    def __init__(self, *registries: CollectorRegistry) -> None:
        self._registries = registries

    def collect(self) -> Iterator[Metric]:
        for registry in self._registries:
            yield from registry.collect()


SERVED_REGISTRY = CollectorRegistry(auto_describe=False)
SERVED_REGISTRY.register(_Union(REGISTRY, prometheus_client.REGISTRY))  # type: ignore[arg-type]


def generate_latest() -> bytes:
    """The exposition text ``/metrics`` serves."""
    return _generate_latest(SERVED_REGISTRY)


@dataclass
class MetricsServer:
    """The ``/metrics`` HTTP endpoint (prometheus_client's threaded WSGI server)."""

    host: str
    port: int
    _server: WSGIServer
    _thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def start_metrics_server(host: str, port: int) -> MetricsServer:
    """Serve ``/metrics`` on host:port. Callers pass port 0 only to mean "disabled" and do not call this."""
    server, thread = start_http_server(port, addr=host, registry=SERVED_REGISTRY)
    return MetricsServer(host=host, port=server.server_port, _server=server, _thread=thread)


# ---------------------------------------------------------------- persistence timing


class _TimedStore:
    """Proxy that times every coroutine method of one store; everything else passes through."""

    def __init__(self, store_name: str, store: Any) -> None:
        self._store_name = store_name
        self._store = store
        self._cache: dict[str, Callable[..., Any]] = {}

    def __getattr__(self, name: str) -> Any:
        cached = self._cache.get(name)
        if cached is not None:
            return cached
        attr = getattr(self._store, name)
        if not inspect.iscoroutinefunction(attr):
            return attr
        hist = PERSISTENCE_LATENCY.labels(self._store_name, name)
        store_name = self._store_name

        async def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return await attr(*args, **kwargs)
            except Exception as err:
                PERSISTENCE_ERRORS.labels(store_name, name, type(err).__name__).inc()
                raise
            finally:
                hist.observe(time.perf_counter() - start)

        self._cache[name] = timed
        return timed


STORE_NAMES = ("namespaces", "cluster", "membership", "shards", "executions", "tasks", "visibility")


class _TimedPersistence:
    """The persistence bundle with each store wrapped in a ``_TimedStore``; other attributes pass through."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        for name in STORE_NAMES:
            store = getattr(inner, name, None)
            if store is not None:
                setattr(self, name, _TimedStore(name, store))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def close(self) -> None:
        await self._inner.close()


def instrument_persistence(persistence: Any) -> Any:
    """Wrap a ``Persistence`` so every store call lands in ``durata_persistence_latency_seconds``."""
    return _TimedPersistence(persistence)
