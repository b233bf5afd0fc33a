"""The official TypeScript client reads Durata's typed search attribute payloads back as typed values (a
Datetime as a Date, a KeywordList as an array): the issue that had it see strings and empty typed attributes."""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client

from e2e.deployments import Deployment
from e2e.helpers import wait_until
from e2e.search_attribute_workflows import BOOL, DATETIME, DOUBLE, INT, KEYWORD, KEYWORD_LIST, TEXT
from e2e.test_search_attributes import D1, namespace_with_attributes, typed

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

TS_DIR = Path(__file__).parent / "ts"
NODE = shutil.which("node")


async def ts_describe(address: str, namespace: str, workflow_id: str) -> dict[str, dict[str, object]]:
    assert NODE is not None and (TS_DIR / "node_modules").is_dir(), "scripts/bootstrap installs node and the client"
    proc = await asyncio.create_subprocess_exec(
        NODE or "node", "describe_search_attributes.mjs", address, namespace, workflow_id, cwd=TS_DIR,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode == 0, err.decode()
    result: dict[str, dict[str, object]] = json.loads(out)["typed"]
    return result


async def test_typescript_client_reads_typed_search_attributes(deployment: Deployment, task_queue: str) -> None:
    client: Client = await namespace_with_attributes(deployment)
    wid = f"ts-{uuid.uuid4().hex[:8]}"
    await client.start_workflow(
        "Unworked", id=wid, task_queue=task_queue,
        search_attributes=typed(SaKeyword="alpha", SaText="Rush order", SaInt=10, SaDouble=1.5, SaBool=True,
                                SaDatetime=D1, SaKeywordList=["red", "big"]),
    )  # fmt: skip
    got = await wait_until(lambda: ts_describe(deployment.address, client.namespace, wid), 30, "TS describe")
    assert got[DATETIME.name] == {"type": "DATETIME", "js": "Date", "value": "2001-02-03T04:05:06.000Z"}
    assert got[KEYWORD_LIST.name] == {"type": "KEYWORD_LIST", "js": "Array", "value": ["red", "big"]}
    assert got[KEYWORD.name] == {"type": "KEYWORD", "js": "string", "value": "alpha"}
    assert got[TEXT.name] == {"type": "TEXT", "js": "string", "value": "Rush order"}
    assert got[INT.name] == {"type": "INT", "js": "number", "value": 10}
    assert got[DOUBLE.name] == {"type": "DOUBLE", "js": "number", "value": 1.5}
    assert got[BOOL.name] == {"type": "BOOL", "js": "boolean", "value": True}
    await client.get_workflow_handle(wid).terminate("done")
