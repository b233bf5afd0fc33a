"""The benchmark driver: start each server kind fresh, start SDK worker processes, warm up, then measure every
workload in closed loop (``concurrency`` workflows in flight until ``count`` are done), repeating the whole round
``repetitions`` times with servers and workloads in rotated order so slow drifts of a shared machine spread evenly.

Per measured window it records wall time, per-workflow latency (start -> result), CPU of the server's process
tree, of the workers and of this load generator (from /proc), and the diff of Durata's own counters.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from temporalio.client import Client

from bench import report
from bench.metrics import scrape
from bench.procs import (
    REPO_ROOT,
    Proc,
    install_sigterm_handler,
    main_thread_cpu_seconds,
    python_argv,
    self_cpu_seconds,
    tree_cpu_seconds,
)
from bench.servers import DEFAULT_PG_ADMIN_URL, EXTRA_KINDS, SERVER_KINDS, Server, make_server
from bench.workloads import WORKLOADS, Workload

DEFAULT_SCALE: dict[str, int] = {"timer": 10}


@dataclass
class Config:
    servers: list[str]
    workloads: list[str]
    count: int = 200
    concurrency: int = 20
    repetitions: int = 3
    warmup: int = 10
    worker_processes: int = 1
    pollers: int = 8
    workflow_timeout: float = 60.0
    pg_admin_url: str = DEFAULT_PG_ADMIN_URL
    pg_topology: str = "split"
    temporal_pragmas: list[str] = field(default_factory=list)
    durata_args: list[str] = field(default_factory=list)
    profile_dir: str = ""
    py_spy_args: list[str] = field(default_factory=list)
    quiet: bool = False
    # Per-workload multiplier of count and concurrency. The timer workload sleeps 1 s, so at the base
    # concurrency any server finishes concurrency/1 s: scaling it up keeps the window server-bound.
    scale: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_SCALE))

    def count_for(self, workload: str) -> int:
        return self.count * self.scale.get(workload, 1)

    def concurrency_for(self, workload: str) -> int:
        return self.concurrency * self.scale.get(workload, 1)


@dataclass
class Sample:
    """One measured window: one workload on one server in one repetition."""

    server: str
    workload: str
    repetition: int
    count: int
    executions: int
    errors: int
    first_error: str
    wall_seconds: float
    latencies_ms: list[float]
    server_cpu_seconds: float
    worker_cpu_seconds: float
    loadgen_cpu_seconds: float
    # Main-thread (event loop) CPU seconds of each server process, keyed by process name.
    loop_cpu_seconds: dict[str, float]
    rpcs: dict[str, float]
    persistence: dict[str, float]
    persistence_seconds: dict[str, float]


def _log(cfg: Config, msg: str) -> None:
    if not cfg.quiet:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _start_workers(cfg: Config, server: Server, task_queue: str, workdir: Path) -> list[Proc]:
    workers = []
    for i in range(cfg.worker_processes):
        workers.append(Proc(f"worker{i}", python_argv(
            "-m", "bench.worker", "--address", server.address, "--namespace", server.namespace,
            "--task-queue", task_queue, "--pollers", str(cfg.pollers),
        ), workdir / f"{server.kind}-worker{i}.log").start())
    return workers


async def _wait_workers_ready(workers: list[Proc], limit_s: float = 30.0) -> None:
    deadline = time.monotonic() + limit_s
    for w in workers:
        while "READY" not in (w.log_path.read_text(errors="replace") if w.log_path.exists() else ""):
            w.check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{w.name} not ready\n{w.log_tail()}")
            await asyncio.sleep(0.1)


async def _closed_loop(client: Client, workload: Workload, count: int, concurrency: int, prefix: str,
                       task_queue: str, limit_s: float) -> tuple[list[float], int, str]:
    """Run ``count`` workflows with ``concurrency`` in flight; returns latencies (ms), errors, first error."""
    latencies: list[float] = []
    errors = 0
    first_error = ""
    next_index = 0

    async def lane() -> None:
        nonlocal next_index, errors, first_error
        while next_index < count:
            i = next_index
            next_index += 1
            start = time.perf_counter()
            try:
                await asyncio.wait_for(workload.drive(client, f"{prefix}-{i}", task_queue), limit_s)
            except Exception as err:  # a failed workflow is counted, reported, and not timed
                errors += 1
                first_error = first_error or f"{type(err).__name__}: {err}"
            else:
                latencies.append(round((time.perf_counter() - start) * 1000.0, 2))

    await asyncio.gather(*(lane() for _ in range(min(concurrency, count))))
    return latencies, errors, first_error


def _start_py_spy(profile_dir: str, server: Server, name: str, extra: list[str]) -> list[subprocess.Popen[bytes]]:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not os.path.exists(py_spy):
        raise RuntimeError("--profile-dir needs py-spy (pip install py-spy)")
    Path(profile_dir).mkdir(parents=True, exist_ok=True)
    procs = []
    for p in server.procs:
        out = Path(profile_dir) / f"{name}-{p.name}.folded"
        procs.append(subprocess.Popen(
            [py_spy, "record", "-p", str(p.pid), "-o", str(out), "-f", "raw", "-r", "200",
             *([] if "--native" in extra else ["--nonblocking"]), *extra],  # --native must pause the process
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        ))
    return procs


@contextlib.asynccontextmanager
async def _py_spy(cfg: Config, server: Server, name: str) -> AsyncIterator[None]:
    """Optionally record a py-spy profile of each Durata server process during the window."""
    procs: list[subprocess.Popen[bytes]] = []
    if cfg.profile_dir and server.kind.startswith("durata"):
        procs = await asyncio.to_thread(_start_py_spy, cfg.profile_dir, server, name, cfg.py_spy_args)
    try:
        yield
    finally:
        for sp in procs:
            sp.send_signal(signal.SIGINT)  #: py-spy writes its output and exits
        for sp in procs:
            try:
                await asyncio.to_thread(sp.wait, 30)
            except subprocess.TimeoutExpired:
                sp.kill()


async def measure(cfg: Config, client: Client, server: Server, workers: list[Proc], workload: Workload,
                  repetition: int, task_queue: str) -> Sample:
    prefix = f"{workload.name}-r{repetition}-{uuid.uuid4().hex[:8]}"
    worker_pids = [w.pid for w in workers]
    async with _py_spy(cfg, server, f"{server.kind}-{workload.name}-r{repetition}"):
        before = await scrape(server.metrics_urls)
        cpu0 = (tree_cpu_seconds(server.pids), tree_cpu_seconds(worker_pids), self_cpu_seconds())
        loop0 = {p.name: main_thread_cpu_seconds(p.pid) for p in server.procs}
        t0 = time.perf_counter()
        latencies, errors, first_error = await _closed_loop(
            client, workload, cfg.count_for(workload.name), cfg.concurrency_for(workload.name), prefix, task_queue,
            cfg.workflow_timeout)
        wall = time.perf_counter() - t0
        cpu1 = (tree_cpu_seconds(server.pids), tree_cpu_seconds(worker_pids), self_cpu_seconds())
        loop1 = {p.name: main_thread_cpu_seconds(p.pid) for p in server.procs}
        after = await scrape(server.metrics_urls)
    server.check_alive()
    delta = after.minus(before)
    return Sample(
        server=server.kind, workload=workload.name, repetition=repetition, count=cfg.count_for(workload.name),
        executions=workload.executions, errors=errors, first_error=first_error, wall_seconds=wall,
        latencies_ms=latencies, server_cpu_seconds=cpu1[0] - cpu0[0], worker_cpu_seconds=cpu1[1] - cpu0[1],
        loadgen_cpu_seconds=cpu1[2] - cpu0[2], loop_cpu_seconds={k: v - loop0[k] for k, v in loop1.items()},
        rpcs=delta.rpcs, persistence=delta.persistence, persistence_seconds=delta.persistence_seconds,
    )


def _rotated(items: list[str], by: int) -> list[str]:
    k = by % len(items) if items else 0
    return items[k:] + items[:k]


async def bench_server(cfg: Config, kind: str, repetition: int, workdir: Path, samples: list[Sample]) -> None:
    """One fresh server of ``kind``: start, warm up, measure every workload into ``samples``, stop (always)."""
    server = make_server(kind, workdir / f"r{repetition}-{kind}", pg_admin_url=cfg.pg_admin_url,
                         pg_topology=cfg.pg_topology, temporal_pragmas=cfg.temporal_pragmas,
                         durata_args=cfg.durata_args)
    workers: list[Proc] = []
    try:
        _log(cfg, f"rep {repetition}: starting {kind}")
        await server.start()
        task_queue = f"bench-{uuid.uuid4().hex[:8]}"
        workers = _start_workers(cfg, server, task_queue, server.workdir)
        await _wait_workers_ready(workers)
        client = await Client.connect(server.address, namespace=server.namespace)
        order = _rotated(cfg.workloads, repetition)
        if cfg.warmup:
            for name in order:
                lat, errors, first = await _closed_loop(
                    client, WORKLOADS[name], cfg.warmup, min(cfg.concurrency, cfg.warmup),
                    f"warmup-{name}-{uuid.uuid4().hex[:8]}", task_queue, cfg.workflow_timeout)
                if errors:
                    _log(cfg, f"rep {repetition} {kind}: {errors} warm-up workflow(s) of {name} failed: {first}")
        for name in order:
            sample = await measure(cfg, client, server, workers, WORKLOADS[name], repetition, task_queue)
            samples.append(sample)
            done = len(sample.latencies_ms)
            _log(cfg, f"rep {repetition} {kind:<12} {name:<14} {done / sample.wall_seconds:8.1f} wf/s  "
                      f"server cpu {1000 * sample.server_cpu_seconds / max(done, 1):7.2f} ms/wf"
                      + (f"  ERRORS {sample.errors}: {sample.first_error}" if sample.errors else ""))
    finally:
        for w in workers:
            await asyncio.to_thread(w.stop, 5.0)
        await server.stop()


async def run_benchmark(cfg: Config, workdir: Path, failures: list[str]) -> list[Sample]:
    """Every repetition of every server; a server that fails is reported and the others still run."""
    samples: list[Sample] = []
    for rep in range(cfg.repetitions):
        for kind in _rotated(cfg.servers, rep):
            try:
                await bench_server(cfg, kind, rep, workdir, samples)
            except Exception as err:  # keep measuring the others; the failure is in the output and exit code
                failures.append(f"rep {rep} {kind}: {type(err).__name__}: {err}")
                _log(cfg, f"FAILED {failures[-1]}")
    return samples


def _environment(cfg: Config, argv: list[str]) -> dict[str, object]:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,
                                timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    with open("/proc/loadavg") as fh:
        load = fh.read().split()[:3]
    return {
        "date_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([".venv/bin/python", "-m", "bench", *argv]),
        "git_commit": commit,
        "cpus": os.cpu_count(),
        "loadavg_at_end": load,
        "python": sys.version.split()[0],
        "config": asdict(cfg),
    }


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--servers", default=",".join(SERVER_KINDS), help=f"comma list of {', '.join(SERVER_KINDS)} (diagnostic: {', '.join(EXTRA_KINDS)})")
    p.add_argument("--workloads", default=",".join(WORKLOADS), help=f"comma list of {', '.join(WORKLOADS)}")
    p.add_argument("--count", type=int, default=200, help="workflows per workload per repetition")
    p.add_argument("--concurrency", type=int, default=20, help="workflows in flight")
    p.add_argument("--scale", action="append", default=[], metavar="WORKLOAD=K",
                   help="multiply count and concurrency of one workload (repeat; default "
                        + ",".join(f"{k}={v}" for k, v in DEFAULT_SCALE.items()) + "; K=1 turns it off)")
    p.add_argument("--repetitions", type=int, default=3)
    p.add_argument("--warmup", type=int, default=10, help="unmeasured workflows per workload after each start")
    p.add_argument("--worker-processes", type=int, default=1, help="SDK worker processes")
    p.add_argument("--pollers", type=int, default=8, help="concurrent polls per task type per worker")
    p.add_argument("--workflow-timeout", type=float, default=60.0, help="seconds before one workflow counts as failed")
    p.add_argument("--pg-admin-url", default=os.environ.get("DURATA_BENCH_PG_URL", DEFAULT_PG_ADMIN_URL),
                   help="maintenance database URL (CREATE/DROP DATABASE)")
    p.add_argument("--pg-topology", choices=("split", "single"), default="split",
                   help="durata-pg: one process per role, or all roles in one process")
    p.add_argument("--temporal-sqlite-pragma", dest="temporal_pragmas", action="append", default=[],
                   metavar="PRAGMA=VALUE", help="extra --sqlite-pragma for the Temporal dev server")
    p.add_argument("--durata-arg", dest="durata_args", action="append", default=[], metavar="ARG",
                   help="extra argument for every Durata server command line (repeat; e.g. --durata-arg=--set "
                        "--durata-arg=task_queue_partitions=1)")
    p.add_argument("--profile-dir", default="", help="record py-spy profiles (collapsed stacks) of Durata per window here")
    p.add_argument("--py-spy-arg", dest="py_spy_args", action="append", default=[], metavar="ARG",
                   help="extra py-spy record argument (repeat), e.g. --py-spy-arg=--gil or --py-spy-arg=--native")
    p.add_argument("--json", dest="json_path", default="bench/results/latest.json", help="where to write results")
    p.add_argument("--workdir", default="", help="logs and databases (default: a temporary directory)")
    p.add_argument("--keep-workdir", action="store_true", help="keep logs and database files")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    cfg = Config(
        servers=[s for s in args.servers.split(",") if s], workloads=[w for w in args.workloads.split(",") if w],
        count=args.count, concurrency=args.concurrency, repetitions=args.repetitions, warmup=args.warmup,
        worker_processes=args.worker_processes, pollers=args.pollers, workflow_timeout=args.workflow_timeout,
        pg_admin_url=args.pg_admin_url, pg_topology=args.pg_topology, temporal_pragmas=args.temporal_pragmas,
        durata_args=args.durata_args, profile_dir=args.profile_dir, py_spy_args=args.py_spy_args, quiet=args.quiet,
    )
    try:
        for item in args.scale:
            name, _, k = item.partition("=")
            cfg.scale[name] = int(k)
            if cfg.scale[name] < 1 or name not in WORKLOADS:
                raise ValueError(item)
    except ValueError:
        print(f"bench: --scale wants WORKLOAD=K with K >= 1, got {args.scale}", file=sys.stderr)
        return 2
    unknown = [s for s in cfg.servers if s not in SERVER_KINDS + EXTRA_KINDS] + [w for w in cfg.workloads if w not in WORKLOADS]
    if unknown:
        print(f"bench: unknown server kind or workload: {', '.join(unknown)}", file=sys.stderr)
        return 2
    install_sigterm_handler()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="durata-bench-")).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    ok = False
    samples: list[Sample] = []
    failures: list[str] = []
    try:
        samples = asyncio.run(run_benchmark(cfg, workdir, failures))
        results = report.build_results(_environment(cfg, argv), samples)
        results["failures"] = failures
        path = Path(args.json_path)
        report.write_json(results, path)
        print(report.render(results))
        print(f"\nJSON: {path}", file=sys.stderr)
        ok = True
    except KeyboardInterrupt:
        print("bench: interrupted; servers and workers stopped", file=sys.stderr)
        return 130
    finally:
        if ok and not failures and not args.keep_workdir and not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        elif not ok or failures:
            print(f"bench: logs kept in {workdir}", file=sys.stderr)
    return 0 if samples and not failures and all(s.errors == 0 for s in samples) else 1
