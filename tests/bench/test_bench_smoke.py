"""Smoke test of the benchmark harness: tiny counts against Durata start-dev, so CI proves ``python -m bench``
still starts a server and workers, measures, reports, writes JSON, and leaves no process behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.metrics import Snapshot, is_read, parse
from bench.report import percentile

REPO_ROOT = Path(__file__).resolve().parents[2]


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{entry}: {cmdline}")
    return found


def test_harness_runs_against_start_dev(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    workdir = tmp_path / "work"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--servers", "durata-dev", "--workloads", "noop,one_activity,signal_query,child",
         "--count", "4", "--concurrency", "2", "--repetitions", "1", "--warmup", "1", "--json", str(out),
         "--workdir", str(workdir), "--quiet"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert "noop" in done.stdout and "durata-dev" in done.stdout
    results = json.loads(out.read_text())
    summaries = {s["workload"]: s for s in results["summaries"]}
    assert set(summaries) == {"noop", "one_activity", "signal_query", "child"}
    for s in summaries.values():
        assert s["completed"] == 4 and s["errors"] == 0
        assert s["throughput_wf_s"] > 0 and s["p50_ms"] > 0
    # Durata's counters are read: a noop workflow is one StartWorkflowExecution and one workflow creation.
    noop = summaries["noop"]
    assert noop["rpcs_per_wf"]["WorkflowService.StartWorkflowExecution"] == 1.0
    assert noop["persistence_per_wf"]["executions.create_workflow_execution"] == 1.0
    assert summaries["one_activity"]["rpcs_per_wf"]["WorkflowService.RespondActivityTaskCompleted"] == 1.0
    assert _processes_mentioning(str(workdir)) == []


def test_metrics_parsing_and_percentiles() -> None:
    text = (
        'durata_rpc_requests_total{service="WorkflowService",method="StartWorkflowExecution",status="OK"} 3.0\n'
        'durata_rpc_requests_total{service="WorkflowService",method="StartWorkflowExecution",status="NOT_FOUND"} 1.0\n'
        'durata_persistence_latency_seconds_count{store="executions",operation="update_workflow_execution"} 7.0\n'
    )
    snap = Snapshot()
    parse(text, snap)
    assert snap.rpcs == {"WorkflowService.StartWorkflowExecution": 4.0}
    assert snap.minus(Snapshot(persistence={"executions.update_workflow_execution": 2.0})).persistence == {
        "executions.update_workflow_execution": 5.0
    }
    assert is_read("executions.get_current_execution") and not is_read("shards.get_or_create_shard")
    assert percentile([float(x) for x in range(1, 101)], 99) == 99.0
    assert percentile([5.0], 50) == 5.0 and percentile([], 50) == 0.0


def test_scale_multiplies_one_workload_and_rejects_nonsense(capsys: object) -> None:
    from bench.run import Config, main

    cfg = Config(servers=["durata-dev"], workloads=["timer", "noop"], count=30, concurrency=3)
    assert (cfg.count_for("timer"), cfg.concurrency_for("timer")) == (300, 30)  # default timer=10
    assert (cfg.count_for("noop"), cfg.concurrency_for("noop")) == (30, 3)
    assert main(["--scale", "nosuch=2"]) == 2
    assert main(["--scale", "timer=0"]) == 2
