"""Process assembly: build the service roles a process runs, wire their clients, serve them, drain on SIGTERM.

One shape for both modes. ``start-dev`` runs every role in one process on SQLite and serves only the public port;
``start --services ...`` runs a subset on PostgreSQL and serves each local role on its own port. A role whose peer
runs in the same process calls the peer's handler object directly (no serialization); a remote peer is reached
through ``GrpcClient``, which has the same call shape and error behaviour.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import grpc
import grpc.aio
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from temporalio.api.operatorservice.v1 import service_pb2 as operator_service_pb2
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv
from temporalio.api.workflowservice.v1 import service_pb2 as workflow_service_pb2

from server import metrics
from server.common.clock import RealClock
from server.common.errors import ServiceError
from server.config import ConfigError, ServerConfig, build_service_config
from server.gen.durata.internal.history.v1 import service_pb2 as history_service_pb2
from server.gen.durata.internal.matching.v1 import service_pb2 as matching_service_pb2
from server.logging import bound_request
from server.rpc.adapters import GRPC_CHANNEL_OPTIONS, GRPC_SERVER_OPTIONS, GrpcClient, add_handler_to_server

log = structlog.get_logger("durata.server")
_rpc_log = structlog.get_logger("durata.rpc")
_rpc_stdlib_log = logging.getLogger("durata.rpc")

WORKFLOW_SERVICE = workflow_service_pb2.DESCRIPTOR.services_by_name["WorkflowService"]
OPERATOR_SERVICE = operator_service_pb2.DESCRIPTOR.services_by_name["OperatorService"]
HISTORY_SERVICE = history_service_pb2.DESCRIPTOR.services_by_name["HistoryService"]
MATCHING_SERVICE = matching_service_pb2.DESCRIPTOR.services_by_name["MatchingService"]

# Dev-mode defaults that differ from a production cluster (tests and demos want short retention).
DEV_SECTION_DEFAULTS: dict[str, dict[str, Any]] = {
    "frontend": {"min_namespace_retention": 1.0},
}


DEFAULT_HISTORY_SHARDS = 4
DEFAULT_PARTITIONS = 4

# Beyond the RPC grace period, how long stopping the services may take before the process gives up on them.
STOP_EXTRA_SECONDS = 15.0


class StartupError(Exception):
    """The process cannot start (bad schema, port in use...); the message tells the operator what to do."""


class ContextBoundHandler:
    """Wraps a handler so each RPC runs with namespace/workflow_id/run_id bound in the log context (and, at
    debug level, logs one line per call with its status and duration)."""

    def __init__(self, inner: object, service: str) -> None:
        self._inner = inner
        self._service = service

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._inner, name)
        if not callable(method) or name.startswith("_"):
            return method
        service = self._service

        async def bound(request: Any, **kwargs: Any) -> Any:
            with bound_request(request):
                if not _rpc_stdlib_log.isEnabledFor(logging.DEBUG):
                    return await method(request, **kwargs)
                start = time.perf_counter()
                status = "OK"
                try:
                    return await method(request, **kwargs)
                except ServiceError as err:
                    status = err.code.name
                    raise
                except BaseException:
                    status = "INTERNAL"
                    raise
                finally:
                    _rpc_log.debug("rpc", service=service, method=name, status=status,
                                   ms=round((time.perf_counter() - start) * 1000, 3))

        return bound


class PollDrain:
    """Matching client of a frontend whose matching runs in another process. On ``drain()`` the task polls
    parked in it answer empty at once (the SDK simply polls again), as an in-process matching does when it stops,
    so a draining frontend need not wait out the grace period for them."""

    _EMPTY: dict[str, Any] = {
        "PollWorkflowTaskQueue": wsv.PollWorkflowTaskQueueResponse,
        "PollActivityTaskQueue": wsv.PollActivityTaskQueueResponse,
    }

    def __init__(self, inner: object) -> None:
        self._inner = inner
        self._draining = asyncio.Event()

    def drain(self) -> None:
        self._draining.set()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._inner, name)
        empty = self._EMPTY.get(name)
        if empty is None:
            return method
        draining = self._draining

        async def poll(request: Any, **kwargs: Any) -> Any:
            if draining.is_set():
                return empty()
            call = asyncio.ensure_future(method(request, **kwargs))
            drained = asyncio.ensure_future(draining.wait())
            try:
                await asyncio.wait({call, drained}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                drained.cancel()
            if call.done():
                return call.result()
            call.cancel()
            with contextlib.suppress(asyncio.CancelledError, ServiceError):
                await call
            return empty()

        return poll


async def check_schema_or_fail(db_url: str) -> None:
    """Refuse to run on a schema this build does not know; the message names the command that fixes it."""
    from server.persistence.schema_version import SchemaVersionError, check_schema_async

    try:
        await check_schema_async(db_url)
    except SchemaVersionError as err:
        raise StartupError(str(err)) from err


@dataclass
class _Role:
    name: str
    service: Any
    port: int = 0
    server: grpc.aio.Server | None = None
    health: HealthServicer | None = None


@dataclass
class DurataProcess:
    """The services of one OS process. ``start()`` returns once every local role answers."""

    cfg: ServerConfig
    host_identity: str = ""
    persistence: Any = None
    roles: dict[str, _Role] = field(default_factory=dict)
    channels: list[grpc.aio.Channel] = field(default_factory=list)
    metrics_server: metrics.MetricsServer | None = None
    bound_ports: dict[str, int] = field(default_factory=dict)
    # Cluster mode (``server start``): membership, routers, shard controller. None in start-dev.
    node: Any = None

    def __post_init__(self) -> None:
        if not self.host_identity:
            self.host_identity = f"{socket.gethostname()}:{os.getpid()}"

    # ------------------------------------------------------------------ construction

    def _section(self, name: str) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if self.cfg.dev_mode:
            values.update(DEV_SECTION_DEFAULTS.get(name, {}))
        values.update(self.cfg.sections.get(name, {}))
        return values

    def _channel(self, address: str) -> grpc.aio.Channel:
        channel = grpc.aio.insecure_channel(address, options=GRPC_CHANNEL_OPTIONS)
        self.channels.append(channel)
        return channel

    def _client(self, role: str, descriptor: Any) -> Any:
        local = self.roles.get(role)
        if local is not None:
            return local.service.handler
        return GrpcClient(self._channel(self.cfg.address_of(role)), descriptor)

    async def _open_persistence(self) -> None:
        from server.persistence.factory import open_persistence
        from server.persistence.schema_version import SchemaVersionError

        if not self.cfg.dev_mode:
            await check_schema_or_fail(self.cfg.db_url)
        try:
            # A process without History/Matching/Frontend (internal worker) only heartbeats: two connections.
            pool = self.cfg.db_pool_max_size if self._needs_store() else 2
            raw = await open_persistence(self.cfg.db_url, create_schema=self.cfg.dev_mode, pool_max_size=pool)
        except SchemaVersionError as err:
            raise StartupError(str(err)) from err
        self.persistence = metrics.instrument_persistence(raw)
        await self._ensure_cluster_metadata()

    async def _ensure_cluster_metadata(self) -> None:
        """The shard count and task-queue partition count are chosen when the cluster is created (first start)
        and never change: every process reads them from cluster metadata. A process configured with another
        value refuses to start, since it would route workflows to the wrong shards."""
        from server.persistence.interface import ClusterMetadata

        wanted = ClusterMetadata(
            cluster_name=str(self._section("frontend").get("cluster_name", "active")),
            num_history_shards=self.cfg.num_history_shards or DEFAULT_HISTORY_SHARDS,
            data=json.dumps({"task_queue_partitions": self.cfg.task_queue_partitions or DEFAULT_PARTITIONS}).encode(),
        )
        stored = await self.persistence.cluster.init_cluster_metadata(wanted)
        if self.cfg.num_history_shards and stored.num_history_shards != self.cfg.num_history_shards:
            raise StartupError(
                f"this cluster was created with num_history_shards={stored.num_history_shards} and the shard count "
                f"of a cluster never changes; this process is configured with {self.cfg.num_history_shards}. "
                f"Remove the setting (or set it to {stored.num_history_shards}), or use a new database."
            )
        try:
            extra = json.loads(stored.data or b"{}")
        except ValueError:
            extra = {}
        partitions = int(extra.get("task_queue_partitions", 0)) or self.cfg.task_queue_partitions or DEFAULT_PARTITIONS
        if self.cfg.task_queue_partitions and partitions != self.cfg.task_queue_partitions:
            raise StartupError(
                f"this cluster was created with task_queue_partitions={partitions}; this process is configured "
                f"with {self.cfg.task_queue_partitions}. Remove the setting (or set it to {partitions})."
            )
        self.cfg.num_history_shards = stored.num_history_shards
        self.cfg.task_queue_partitions = partitions

    def _needs_store(self) -> bool:
        return any(r in self.cfg.services for r in ("frontend", "history", "matching"))

    def _build(self) -> None:
        clock = RealClock()
        wanted = self.cfg.services
        if "history" in wanted:
            from services.history.config import HistoryConfig
            from services.history.service import HistoryService

            section = {"num_history_shards": self.cfg.num_history_shards, **self._section("history")}
            if not self.cfg.dev_mode:
                section["owned_shards"] = []  # the shard controller acquires what the ring assigns
            hcfg = build_service_config(HistoryConfig, section, "history")
            self.roles["history"] = _Role(
                "history", HistoryService(self.persistence, clock, hcfg, f"{self.host_identity}:history"),
                self.cfg.history_port,
            )
        if "matching" in wanted:
            from services.matching.config import MatchingConfig
            from services.matching.service import MatchingService

            mcfg = build_service_config(MatchingConfig, self._section("matching"), "matching")
            self.roles["matching"] = _Role(
                "matching", MatchingService(self.persistence, clock, mcfg, f"{self.host_identity}:matching"),
                self.cfg.matching_port,
            )
        if "frontend" in wanted:
            from services.frontend.config import FrontendConfig
            from services.frontend.service import FrontendService

            fcfg = build_service_config(FrontendConfig, self._section("frontend"), "frontend")
            self.roles["frontend"] = _Role("frontend", FrontendService(self.persistence, fcfg), self.cfg.frontend_port)
        # Clients are wired after every local role exists, so local peers are called in-process.
        if not self.cfg.dev_mode and self.persistence is not None:
            self._wire_cluster()
        elif "history" in self.roles:
            self.roles["history"].service.matching_client = self._client("matching", MATCHING_SERVICE)
        if "matching" in self.roles and self.node is None:
            self.roles["matching"].service.history_client = self._client("history", HISTORY_SERVICE)
        if "frontend" in self.roles and self.node is None:
            fe = self.roles["frontend"].service
            fe.history_client = self._client("history", HISTORY_SERVICE)
            matching = self._client("matching", MATCHING_SERVICE)
            fe.matching_client = matching if "matching" in self.roles else PollDrain(matching)
        if "internal_worker" in wanted:
            from services.internal_worker.config import InternalWorkerConfig
            from services.internal_worker.service import InternalWorkerService

            icfg = build_service_config(InternalWorkerConfig, self._section("internal_worker"), "internal_worker")
            client = self._client("frontend", WORKFLOW_SERVICE)
            local_fe = self.roles.get("frontend")
            operator = (local_fe.service.operator_handler if local_fe is not None
                        else GrpcClient(self._channel(self.cfg.address_of("frontend")), OPERATOR_SERVICE))
            self.roles["internal_worker"] = _Role(
                "internal_worker",
                InternalWorkerService(icfg, client, operator_client=operator, frontend_address=self._frontend_address),
            )

    def _wire_cluster(self) -> None:
        """Cluster mode: History and Matching are reached through routers over the membership ring."""
        from server.cluster.node import ClusterNode

        self.node = ClusterNode(self.cfg, self.persistence, HISTORY_SERVICE, MATCHING_SERVICE)
        services = {name: role.service for name, role in self.roles.items()}
        self.node.wire(services)
        fe = services.get("frontend")
        if fe is not None:
            fe.history_client = self.node.history_router
            fe.matching_client = PollDrain(self.node.matching_router)

    def _frontend_address(self) -> str:
        """Where the internal worker's SDK workers dial the public API: this process's frontend (its real port,
        known once it listens) or the configured one."""
        return self._advertised().get("frontend") or self.cfg.address_of("frontend")

    def _advertised(self) -> dict[str, str]:
        """role -> address peers dial, with the real port where the configured one was 0 (tests)."""
        out: dict[str, str] = {}
        for name in self.roles:
            if name not in ("frontend", "history", "matching"):
                out[name] = ""
                continue
            explicit = getattr(self.cfg, f"{name}_address")
            if explicit:
                out[name] = explicit
            else:
                host = "127.0.0.1" if self.cfg.ip in ("0.0.0.0", "::", "") else self.cfg.ip
                out[name] = f"{host}:{self.bound_ports.get(name) or getattr(self.cfg, f'{name}_port')}"
        return out

    # ------------------------------------------------------------------ gRPC

    def _serve_ports(self) -> list[str]:
        """Roles that get a listening port: in dev mode only the public frontend."""
        if self.cfg.dev_mode:
            return ["frontend"]
        return [r for r in ("frontend", "history", "matching") if r in self.roles]

    async def _start_grpc(self, role: _Role) -> None:
        server = grpc.aio.server(options=GRPC_SERVER_OPTIONS)
        health: Any
        if role.name == "frontend":
            health = self._register_frontend(server, role.service)
        else:
            health = HealthServicer()
            health_pb2_grpc.add_HealthServicer_to_server(health, server)
            descriptor = HISTORY_SERVICE if role.name == "history" else MATCHING_SERVICE
            add_handler_to_server(server, descriptor, ContextBoundHandler(role.service.handler, role.name), {})
            for name in ("", descriptor.full_name):
                await health.set(name, health_pb2.HealthCheckResponse.SERVING)
        address = f"{self.cfg.ip}:{role.port}"
        try:
            port = server.add_insecure_port(address)
        except RuntimeError as err:
            raise StartupError(f"cannot listen on {address} for {role.name}: {err}") from err
        if port == 0:
            raise StartupError(f"cannot listen on {address} for {role.name} (port in use?)")
        await server.start()
        role.server, role.health = server, health
        self.bound_ports[role.name] = port

    def _register_frontend(self, server: grpc.aio.Server, frontend: Any) -> Any:
        """The frontend's own registration (WorkflowService, OperatorService, health), with its handlers wrapped
        so every public RPC logs with namespace/workflow_id/run_id bound."""
        from services.frontend.grpc_server import register_grpc

        shim = SimpleNamespace(
            handler=ContextBoundHandler(frontend.handler, "frontend"),
            operator_handler=ContextBoundHandler(frontend.operator_handler, "frontend"),
            health=None,
        )
        health = register_grpc(server, shim)  # type: ignore[arg-type]
        frontend.health = health
        return health

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self.cfg.validate()
        metrics.install_rpc_observer()
        if self.cfg.metrics_port:
            try:
                self.metrics_server = metrics.start_metrics_server(self.cfg.metrics_host, self.cfg.metrics_port)
            except OSError as err:
                where = f"{self.cfg.metrics_host}:{self.cfg.metrics_port}"
                if not self.cfg.metrics_best_effort:
                    raise StartupError(f"cannot serve metrics on {where}: {err}") from err
                log.warning("metrics endpoint disabled: port unavailable", address=where, error=str(err))
        # An internal-worker-only process needs no database; given one, it joins the membership table too.
        if self._needs_store() or (self.cfg.db_url and not self.cfg.dev_mode):
            await self._open_persistence()
        self._build()
        for name in ("history", "matching", "frontend"):
            role = self.roles.get(name)
            if role is not None:
                await role.service.start()
                metrics.PROCESS_UP.labels(name).set(1)
        frontend = self.roles.get("frontend")
        if frontend is not None:
            await self._create_namespaces(frontend.service)
        for name in self._serve_ports():
            await self._start_grpc(self.roles[name])
        if self.node is not None:
            await self.node.join(self._advertised())
        worker = self.roles.get("internal_worker")
        if worker is not None:
            await worker.service.start()
            metrics.PROCESS_UP.labels("internal_worker").set(1)
        log.info("durata started", services=list(self.roles), ports=self.bound_ports, pid=os.getpid(),
                 db=_redact(self.cfg.db_url), event_loop=type(asyncio.get_running_loop()).__module__)

    async def _create_namespaces(self, frontend: Any) -> None:
        names = list(dict.fromkeys(self.cfg.namespaces or ["default"]))
        await frontend.create_default_namespaces(names, frontend.config.default_namespace_retention)
        if self.cfg.search_attributes:
            await frontend.register_search_attributes(names, self.cfg.search_attributes)

    async def stop(self) -> None:
        """Graceful drain: stop accepting, end long polls, stop services, close the database."""
        grace = self.cfg.shutdown_grace_seconds
        worker = self.roles.get("internal_worker")
        if worker is not None:
            await _quietly("internal_worker", worker.service.stop())
        if self.node is not None:
            await _quietly("cluster membership", self.node.leave())
        frontend = self.roles.get("frontend")
        if frontend is not None and isinstance(frontend.service.matching_client, PollDrain):
            frontend.service.matching_client.drain()
        serving = [r for r in self.roles.values() if r.server is not None]
        for role in serving:
            if role.health is not None:
                await _quietly(f"{role.name} health", role.health.enter_graceful_shutdown())
        # server.stop() refuses new RPCs at once and waits up to `grace` for in-flight ones; ending the long polls
        # (frontend/matching stop) lets those finish right away.
        stops = [asyncio.create_task(r.server.stop(grace)) for r in serving if r.server is not None]
        for name in ("frontend", "matching"):
            poller_owner = self.roles.get(name)
            if poller_owner is not None:
                await _quietly(name, poller_owner.service.stop())
        if stops:
            await asyncio.gather(*stops, return_exceptions=True)
        history = self.roles.get("history")
        if history is not None:
            await _quietly("history", history.service.stop())
        for name in self.roles:
            metrics.PROCESS_UP.labels(name).set(0)
        for channel in self.channels:
            await _quietly("channel", channel.close())
        if self.node is not None:
            await _quietly("cluster channels", self.node.close())
        if self.persistence is not None:
            await _quietly("persistence", self.persistence.close())
        if self.metrics_server is not None:
            self.metrics_server.stop()
        log.info("durata stopped", services=list(self.roles))

    def banner(self) -> list[str]:
        lines = []
        if self.cfg.dev_mode:
            lines.append(f"Durata dev server listening on {self.cfg.ip}:{self.bound_ports.get('frontend')}")
        else:
            for name, port in self.bound_ports.items():
                lines.append(f"Durata {name} listening on {self.cfg.ip}:{port}")
            if "internal_worker" in self.roles:
                lines.append(f"Durata internal worker using frontend {self.cfg.address_of('frontend')}")
        if self.metrics_server is not None:
            lines.append(f"Metrics at {self.metrics_server.url}")
        return lines


async def _quietly(what: str, coro: Any) -> None:
    try:
        await coro
    except Exception:
        log.exception("error during shutdown", component=what)


def _redact(url: str) -> str:
    """Hide a password in a database URL before logging it."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else url


async def run(cfg: ServerConfig) -> int:
    """Start the process, print where it listens, and serve until SIGINT/SIGTERM. Returns the exit status."""
    proc = DurataProcess(cfg)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals_seen = 0

    def on_signal(signum: int) -> None:
        nonlocal signals_seen
        signals_seen += 1
        if signals_seen > 1:
            log.warning("second signal: exiting without draining", signal=signal.Signals(signum).name)
            os._exit(128 + signum)
        log.info("shutting down", signal=signal.Signals(signum).name)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        try:
            await proc.start()
        except (StartupError, ConfigError) as err:
            await proc.stop()
            print(f"durata: {err}", file=sys.stderr, flush=True)
            return 2
        except Exception as err:
            log.exception("startup failed")
            await proc.stop()
            print(f"durata: startup failed: {err!r}", file=sys.stderr, flush=True)
            return 1
        for line in proc.banner():
            print(line, flush=True)
        await stop.wait()
        # A service that cannot finish stopping must not keep the process alive forever.
        limit = cfg.shutdown_grace_seconds + STOP_EXTRA_SECONDS
        try:
            await asyncio.wait_for(proc.stop(), timeout=limit)
        except TimeoutError:
            log.error("shutdown did not finish in time; exiting anyway", seconds=limit)
            return 1
        return 0
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
