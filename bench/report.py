"""Aggregate the measured windows into per (server, workload) figures, print the comparison and write JSON.

Throughput and CPU per workflow are the median over repetitions (robust to one disturbed window on a shared
machine); latency percentiles pool every workflow of every repetition; RPCs and store calls per workflow are
total deltas over total completed workflows.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.metrics import STATE_TRANSITION_OPS, is_read

if TYPE_CHECKING:
    from bench.run import Sample

BASELINE = "temporal-dev"


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100.0 * len(ordered))))
    return ordered[rank - 1]


@dataclass
class Summary:
    server: str
    workload: str
    repetitions: int
    completed: int
    errors: int
    throughput_wf_s: float
    throughput_per_rep: list[float]
    p50_ms: float
    p95_ms: float
    p99_ms: float
    server_cpu_ms_per_wf: float
    server_cpu_ms_per_rep: list[float]
    worker_cpu_ms_per_wf: float
    loadgen_cpu_ms_per_wf: float
    # Busiest server process's main thread (event loop), CPU seconds per wall second in %, median over reps.
    loop_busy_pct: float = 0.0
    # Durata only (empty / zero for a server without Durata's metrics).
    rpcs_per_wf: dict[str, float] = field(default_factory=dict)
    persistence_per_wf: dict[str, float] = field(default_factory=dict)
    # Mean milliseconds of one store call, by operation (SQLite: includes waiting for the writer thread).
    persistence_mean_ms: dict[str, float] = field(default_factory=dict)
    rpc_total_per_wf: float = 0.0
    db_tx_per_wf: float = 0.0
    db_write_tx_per_wf: float = 0.0
    state_transitions_per_wf: float = 0.0
    state_transitions_per_s: float = 0.0


def summarize(samples: list[Sample]) -> list[Summary]:
    groups: dict[tuple[str, str], list[Sample]] = {}
    for s in samples:
        groups.setdefault((s.server, s.workload), []).append(s)
    out = []
    for (server, workload), group in groups.items():
        done = [len(s.latencies_ms) for s in group]
        total = sum(done)
        lat = [x for s in group for x in s.latencies_ms]
        tput = [n / s.wall_seconds for n, s in zip(done, group, strict=True)]
        cpu = [1000.0 * s.server_cpu_seconds / max(n, 1) for n, s in zip(done, group, strict=True)]
        rpcs: dict[str, float] = {}
        pers: dict[str, float] = {}
        pers_s: dict[str, float] = {}
        for s in group:
            for k, v in s.persistence_seconds.items():
                pers_s[k] = pers_s.get(k, 0.0) + v
            for k, v in s.rpcs.items():
                rpcs[k] = rpcs.get(k, 0.0) + v
            for k, v in s.persistence.items():
                pers[k] = pers.get(k, 0.0) + v
        denom = max(total, 1)
        mean_ms = {k: round(1000.0 * pers_s.get(k, 0.0) / v, 3) for k, v in pers.items() if v}
        rpcs = {k: v / denom for k, v in sorted(rpcs.items(), key=lambda kv: -kv[1])}
        pers = {k: v / denom for k, v in sorted(pers.items(), key=lambda kv: -kv[1])}
        st_rates = [sum(s.persistence.get(op, 0.0) for op in STATE_TRANSITION_OPS) / s.wall_seconds for s in group]
        out.append(Summary(
            server=server, workload=workload, repetitions=len(group), completed=total,
            errors=sum(s.errors for s in group),
            throughput_wf_s=statistics.median(tput), throughput_per_rep=[round(t, 2) for t in tput],
            p50_ms=percentile(lat, 50), p95_ms=percentile(lat, 95), p99_ms=percentile(lat, 99),
            server_cpu_ms_per_wf=statistics.median(cpu), server_cpu_ms_per_rep=[round(c, 3) for c in cpu],
            worker_cpu_ms_per_wf=1000.0 * sum(s.worker_cpu_seconds for s in group) / denom,
            loadgen_cpu_ms_per_wf=1000.0 * sum(s.loadgen_cpu_seconds for s in group) / denom,
            loop_busy_pct=statistics.median(
                100.0 * max(s.loop_cpu_seconds.values(), default=0.0) / s.wall_seconds for s in group),
            rpcs_per_wf=rpcs, persistence_per_wf=pers, persistence_mean_ms=mean_ms,
            rpc_total_per_wf=sum(rpcs.values()),
            db_tx_per_wf=sum(pers.values()),
            db_write_tx_per_wf=sum(v for k, v in pers.items() if not is_read(k)),
            state_transitions_per_wf=sum(pers.get(op, 0.0) for op in STATE_TRANSITION_OPS),
            state_transitions_per_s=statistics.median(st_rates),
        ))
    return out


def build_results(environment: dict[str, Any], samples: list[Sample]) -> dict[str, Any]:
    summaries = summarize(samples)
    return {
        "environment": environment,
        "summaries": [asdict(s) for s in summaries],
        "ratios": ratios(summaries),
        "samples": [asdict(s) for s in samples],
    }


def ratios(summaries: list[Summary]) -> list[dict[str, Any]]:
    """Durata / Temporal dev server, per workload: throughput (higher is better) and CPU (lower is better)."""
    base = {s.workload: s for s in summaries if s.server == BASELINE}
    out = []
    for s in summaries:
        b = base.get(s.workload)
        if s.server == BASELINE or b is None:
            continue
        out.append({
            "server": s.server, "workload": s.workload,
            "throughput_ratio": s.throughput_wf_s / b.throughput_wf_s if b.throughput_wf_s else 0.0,
            "cpu_ratio": s.server_cpu_ms_per_wf / b.server_cpu_ms_per_wf if b.server_cpu_ms_per_wf else 0.0,
            "p50_ratio": s.p50_ms / b.p50_ms if b.p50_ms else 0.0,
        })
    return out


def write_json(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    head = json.dumps({k: v for k, v in results.items() if k != "samples"}, indent=1)
    # One line per measured window keeps thousands of latencies readable and the file small.
    samples = ",\n".join("  " + json.dumps(sample) for sample in results.get("samples", []))
    path.write_text(head[:-2] + ',\n "samples": [\n' + samples + "\n ]\n}\n")


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) if i < 2 else h.rjust(w) for i, (h, w) in enumerate(zip(headers, widths, strict=True)))
    body = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
            for r in rows]
    return "\n".join([line, "-" * len(line), *body])


def render(results: dict[str, Any]) -> str:
    """The text report: results table, Durata/Temporal ratios, and the cost of one workflow per workload."""
    sums = [Summary(**s) for s in results["summaries"]]
    order = {w: i for i, w in enumerate(dict.fromkeys(s.workload for s in sums))}
    sums.sort(key=lambda s: (order[s.workload], s.server))
    env = results["environment"]
    parts = [f"{env['date_utc']}  {env['cpus']} CPUs  load {' '.join(env['loadavg_at_end'])}  "
             f"count={env['config']['count']} concurrency={env['config']['concurrency']} "
             f"repetitions={env['config']['repetitions']}"
             + "".join(f" {k}x{v}" for k, v in env["config"].get("scale", {}).items() if v != 1)]
    rows = []
    for s in sums:
        durata = bool(s.persistence_per_wf)
        rows.append([
            s.workload, s.server, f"{s.throughput_wf_s:.1f}", f"{s.p50_ms:.0f}", f"{s.p95_ms:.0f}", f"{s.p99_ms:.0f}",
            f"{s.server_cpu_ms_per_wf:.2f}", f"{s.loop_busy_pct:.0f}" if durata else "-", f"{s.worker_cpu_ms_per_wf:.2f}",
            f"{s.rpc_total_per_wf:.1f}" if durata else "-", f"{s.db_tx_per_wf:.1f}" if durata else "-",
            f"{s.db_write_tx_per_wf:.1f}" if durata else "-", f"{s.state_transitions_per_s:.0f}" if durata else "-",
            str(s.errors),
        ])
    parts.append(_table(["workload", "server", "wf/s", "p50ms", "p95ms", "p99ms", "srvCPUms/wf", "loop%", "wrkCPUms/wf",
                         "rpc/wf", "dbtx/wf", "dbw/wf", "ST/s", "err"], rows))
    if results["ratios"]:
        rrows = [[r["workload"], r["server"], f"{r['throughput_ratio']:.2f}", f"{r['cpu_ratio']:.2f}",
                  f"{r['p50_ratio']:.2f}"] for r in results["ratios"]]
        parts.append("Durata / Temporal dev server (targets on start-dev: throughput >= 3.00, CPU <= 0.50)")
        parts.append(_table(["workload", "server", "throughput", "cpu/wf", "p50"], rrows))
    parts.append("Cost of one workflow (Durata's own metrics; RPCs in one process = public RPCs only; "
                 "db: calls per workflow (mean ms per call))")
    for s in sums:
        if not s.persistence_per_wf:
            continue
        rpc = ", ".join(f"{k} {v:.2f}" for k, v in s.rpcs_per_wf.items() if v >= 0.05)
        db = ", ".join(f"{k} {v:.2f} ({s.persistence_mean_ms.get(k, 0.0):.1f}ms)"
                       for k, v in s.persistence_per_wf.items() if v >= 0.05)
        parts.append(f"  {s.workload} @ {s.server}:\n    rpc: {rpc}\n    db:  {db}")
    if results.get("failures"):
        parts.append("FAILED runs (their windows are missing above):\n" + "\n".join(f"  {f}" for f in results["failures"]))
    return "\n\n".join(parts)
