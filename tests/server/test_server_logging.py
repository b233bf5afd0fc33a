"""Logs are one JSON object per line with level, timestamp, service and the bound request fields."""

from __future__ import annotations

import io
import json
import logging

import structlog
from temporalio.api.common.v1 import message_pb2 as common
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv

from server.gen.durata.internal.history.v1 import service_pb2 as history_pb
from server.logging import bound_request, configure_logging, request_context


def _lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_json_lines_with_service_and_bound_context() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    try:
        log = structlog.get_logger("durata.history")
        with structlog.contextvars.bound_contextvars(shard_id=3):
            log.info("acquired shard", range_id=7)
        log.debug("hidden at info")
        logging.getLogger("some.library").warning("stdlib goes through the same renderer")
        request = wsv.SignalWorkflowExecutionRequest(
            namespace="ns1", workflow_execution=common.WorkflowExecution(workflow_id="wf", run_id="run")
        )
        with bound_request(request):
            structlog.get_logger("durata.frontend").info("signal")
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed")
        structlog.get_logger("durata.rpc").error(
            "unhandled error in rpc", service="durata.internal.history.v1.HistoryService", method="X")
    finally:
        configure_logging("warning", "console")
    recs = _lines(stream)
    assert [r["event"] for r in recs] == [
        "acquired shard", "stdlib goes through the same renderer", "signal", "failed", "unhandled error in rpc"
    ]
    first = recs[0]
    assert first["level"] == "info" and first["service"] == "history" and first["shard_id"] == 3
    assert first["range_id"] == 7 and first["timestamp"].endswith("Z")
    assert recs[1]["service"] == "some.library" and recs[1]["level"] == "warning"
    assert {k: recs[2][k] for k in ("namespace", "workflow_id", "run_id", "service")} == {
        "namespace": "ns1", "workflow_id": "wf", "run_id": "run", "service": "frontend"
    }
    assert "shard_id" not in recs[2]  # contextvars are unbound after the block
    assert "exception" in recs[3]
    assert recs[4]["service"] == "history"
    assert recs[4]["grpc_service"] == "durata.internal.history.v1.HistoryService"


def test_request_context_reads_internal_wrappers() -> None:
    inner = wsv.StartWorkflowExecutionRequest(namespace="n", workflow_id="w")
    req = history_pb.StartWorkflowExecutionRequest(namespace_id="id-1", request=inner)
    assert request_context(req) == {"namespace": "n", "workflow_id": "w"}
    assert request_context(wsv.GetSystemInfoRequest()) == {}
