"""Operations: start-up banner, metrics endpoint, JSON logs, schema commands and refusal, config files."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sqlite3
import time
import uuid
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families
from temporalio.api.common.v1 import message_pb2 as common
from temporalio.api.taskqueue.v1 import message_pb2 as taskqueue
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv
from temporalio.api.workflowservice.v1 import service_pb2_grpc as wsv_grpc
from temporalio.client import Client

from e2e import workflows as wf
from e2e.deployments import Deployment, DevDeployment
from e2e.harness import ServerProc, free_port, run_cli, system_info_answers
from e2e.helpers import running_worker, wait_until, wid

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

ABSL_LINE = re.compile(r"^([EWIF]\d{4} \d\d:\d\d:\d\d|WARNING: All log messages before absl)")


def start_request(workflow_id: str) -> wsv.StartWorkflowExecutionRequest:
    return wsv.StartWorkflowExecutionRequest(
        namespace="default", workflow_id=workflow_id, workflow_type=common.WorkflowType(name="Nothing"),
        task_queue=taskqueue.TaskQueue(name=f"ops-{uuid.uuid4().hex[:6]}"), request_id=str(uuid.uuid4()),
    )


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Prometheus exposition text -> {(sample name, labels): value}."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(parsed: dict, name: str, **labels: str) -> float:
    return parsed.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_endpoint_counts_rpcs(deployment: Deployment) -> None:
    async with grpc.aio.insecure_channel(deployment.address) as channel:
        stub = wsv_grpc.WorkflowServiceStub(channel)
        await stub.GetSystemInfo(wsv.GetSystemInfoRequest(), timeout=10)
        await stub.StartWorkflowExecution(start_request(wid("metrics")), timeout=10)
    text = await asyncio.to_thread(deployment.metrics_text, "frontend")
    fe = samples(text)
    assert value(fe, "durata_rpc_requests_total", service="WorkflowService", method="GetSystemInfo",
                 status="OK") >= 1, text[:2000]
    assert value(fe, "durata_rpc_latency_seconds_count", service="WorkflowService",
                 method="StartWorkflowExecution", status="OK") >= 1
    if deployment.kind == "dev":
        assert any(name == "durata_persistence_latency_seconds_count" for name, _ in fe)
    else:
        history = samples(await asyncio.to_thread(deployment.metrics_text, "history"))
        assert value(history, "durata_rpc_requests_total", service="HistoryService",
                     method="StartWorkflowExecution", status="OK") >= 1
        assert any(name == "durata_persistence_latency_seconds_count" for name, _ in history)


async def test_json_logs_with_bound_fields(tmp_path: Path) -> None:
    dep = DevDeployment("dev", tmp_path, extra_args=["--log-level", "debug"])
    await asyncio.to_thread(dep.start)
    try:
        workflow_id = wid("logged")
        async with grpc.aio.insecure_channel(dep.address) as channel:
            await wsv_grpc.WorkflowServiceStub(channel).StartWorkflowExecution(start_request(workflow_id), timeout=10)

        def records() -> list[dict]:
            # Every line must be one JSON object, except what gRPC's C core (absl) writes straight to stderr.
            lines = [line for line in dep.logs().splitlines() if line.strip() and not ABSL_LINE.match(line)]
            return [json.loads(line) for line in lines]

        async def bound_line() -> dict | None:
            for rec in records():
                if rec.get("workflow_id") == workflow_id and rec.get("namespace") == "default":
                    return rec
            return None

        rec = await wait_until(bound_line, 15, f"a log line bound to {workflow_id}")
        assert rec["service"] == "frontend"
        for rec in records():
            assert {"level", "timestamp", "event"} <= rec.keys(), rec
    finally:
        await asyncio.to_thread(dep.stop)


async def test_start_dev_banner_and_fast_start(tmp_path: Path) -> None:
    dep = DevDeployment("dev", tmp_path, extra_args=["--namespace", "extra-one", "--namespace", "extra-two"])
    began = time.monotonic()
    await asyncio.to_thread(dep.start)
    elapsed = time.monotonic() - began
    try:
        async with grpc.aio.insecure_channel(dep.address) as channel:
            listed = await wsv_grpc.WorkflowServiceStub(channel).ListNamespaces(wsv.ListNamespacesRequest(), timeout=10)
        assert {"default", "extra-one", "extra-two"} <= {ns.namespace_info.name for ns in listed.namespaces}
        out = dep.procs["frontend"].stdout()
        assert f"Durata dev server listening on 127.0.0.1:{dep.port}" in out
        assert f"http://127.0.0.1:{dep.metrics_ports['frontend']}/metrics" in out
        assert elapsed < 15, f"start-dev took {elapsed:.1f}s"
        assert '"event_loop": "uvloop"' in dep.logs(), "uvloop is installed, so start-dev should run on it"
    finally:
        # Ctrl-C drains like SIGTERM and exits 0.
        proc = dep.procs["frontend"].proc
        assert proc is not None
        proc.send_signal(signal.SIGINT)
        try:
            code = await asyncio.to_thread(proc.wait, 15)
        finally:
            await asyncio.to_thread(dep.stop)  # no-op if it exited; SIGKILL if it hung
    assert code == 0, dep.log_tails()
    assert "durata stopped" in dep.logs()


def test_schema_commands_and_refusal(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'schema.db'}"
    empty = run_cli(["schema", "version", "--db", db_url])
    assert empty.returncode == 1 and "durata schema upgrade" in empty.stdout

    # A server on an uninitialized database refuses to start and names the fix.
    refused = run_cli(["server", "start", "--services", "frontend,history,matching", "--db", db_url,
                       "--frontend-port", str(free_port()), "--history-port", str(free_port()),
                       "--matching-port", str(free_port())], timeout=60)
    assert refused.returncode != 0
    assert "durata schema upgrade" in refused.stderr, refused.stderr

    up = run_cli(["schema", "upgrade", "--db", db_url])
    assert up.returncode == 0, up.stderr
    again = run_cli(["schema", "upgrade", "--db", db_url])
    assert again.returncode == 0 and "already" in again.stdout
    ok = run_cli(["schema", "version", "--db", db_url])
    assert ok.returncode == 0, ok.stdout + ok.stderr

    # An unknown (future) version is refused too.
    conn = sqlite3.connect(tmp_path / "schema.db")
    with conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    conn.close()
    future = run_cli(["server", "start", "--services", "frontend,history,matching", "--db", db_url,
                      "--frontend-port", str(free_port()), "--history-port", str(free_port()),
                      "--matching-port", str(free_port())], timeout=60)
    assert future.returncode != 0
    assert "9999_from_the_future" in future.stderr and "durata schema upgrade" in future.stderr


async def test_all_roles_in_one_process_from_config_file(tmp_path: Path, task_queue: str) -> None:
    """``durata server start --config durata.toml``: the non-dev path with every role in one process."""
    db_url = f"sqlite:///{tmp_path / 'cluster.db'}"
    assert run_cli(["schema", "upgrade", "--db", db_url]).returncode == 0
    ports = {role: free_port() for role in ("frontend", "history", "matching")}
    config = tmp_path / "durata.toml"
    config.write_text(
        f'db_url = "{db_url}"\n'
        'services = ["frontend", "history", "matching", "internal_worker"]\n'
        'ip = "127.0.0.1"\n'
        + "".join(f"{role}_port = {port}\n" for role, port in ports.items())
        + 'log_format = "json"\nnamespaces = ["default", "from-config"]\n'
        "[internal_worker]\nretention_interval_seconds = 5\n"
    )
    proc = ServerProc("all-in-one", ["server", "start", "--config", str(config)], tmp_path / "all-in-one.log")
    proc.start()
    try:
        address = f"127.0.0.1:{ports['frontend']}"
        await asyncio.to_thread(proc.wait_ready, lambda: system_info_answers(address))
        client = await Client.connect(address, namespace="from-config")
        async with running_worker(client, task_queue):
            result = await client.execute_workflow(
                wf.HelloWorkflow.run, "config", id=wid("cfg"), task_queue=task_queue,
                execution_timeout=timedelta(seconds=60),
            )
        assert result == "Hello, config!"
    finally:
        code = await asyncio.to_thread(proc.terminate)
    assert code == 0, proc.log_tail()


@pytest.mark.postgres
def test_postgres_schema_refusal_and_upgrade() -> None:
    from e2e.conftest import pg_helpers

    make_db, drop_db = pg_helpers()
    url = make_db("durata_e2e_schema", migrate=False)
    try:
        refused = run_cli(["server", "start", "--services", "history", "--db", url,
                           "--history-port", str(free_port())], timeout=60)
        assert refused.returncode != 0
        assert "durata schema upgrade" in refused.stderr, refused.stderr
        assert run_cli(["schema", "version", "--db", url]).returncode == 1
        up = run_cli(["schema", "upgrade", "--db", url])
        assert up.returncode == 0 and "upgraded" in up.stdout, up.stdout + up.stderr
        via_env = run_cli(["schema", "version"], env={"DURATA_DB_URL": url})  # the URL from the environment
        assert via_env.returncode == 0, via_env.stdout + via_env.stderr
        assert "database schema version: " in via_env.stdout
    finally:
        drop_db(url)
