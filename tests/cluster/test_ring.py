"""The consistent-hash ring and the routing helpers: deterministic, balanced, minimal movement."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import pytest
from temporalio.api.common.v1.message_pb2 import WorkflowExecution as WE
from temporalio.api.update.v1 import message_pb2 as update_pb2
from temporalio.api.workflowservice.v1 import request_response_pb2 as ws

from server.cluster.ring import HashRing, partition_key, shard_key
from server.cluster.routing import history_routing_key, partition_of_query_id, query_id_for_partition
from server.common.errors import InvalidArgument
from server.gen.durata.internal.common.v1 import tokens_pb2
from server.gen.durata.internal.history.v1 import service_pb2 as hs

HOSTS = ["10.0.0.1:7234", "10.0.0.2:7234", "10.0.0.3:7234"]


def owners(ring: HashRing, n: int = 512) -> dict[int, str | None]:
    return {s: ring.lookup(shard_key(s)) for s in range(1, n + 1)}


def test_empty_ring_has_no_owner() -> None:
    assert HashRing.build([]).lookup("x") is None
    assert not HashRing.build([])


def test_same_members_same_ring_in_any_order() -> None:
    assert owners(HashRing.build(HOSTS)) == owners(HashRing.build(list(reversed(HOSTS)) + HOSTS[:1]))


def test_deterministic_across_processes() -> None:
    """Python's hash() is salted per process; the ring must not be."""
    code = (
        "from server.cluster.ring import HashRing, shard_key;"
        f"r = HashRing.build({HOSTS!r});"
        "print([r.lookup(shard_key(s)) for s in range(1, 65)])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    ring = HashRing.build(HOSTS)
    assert out.strip() == str([ring.lookup(shard_key(s)) for s in range(1, 65)])


def test_balanced_enough() -> None:
    counts = Counter(owners(HashRing.build(HOSTS), 3000).values())
    assert set(counts) == set(HOSTS)
    assert min(counts.values()) > 3000 / 3 * 0.6


def test_adding_a_member_moves_only_its_share() -> None:
    before = owners(HashRing.build(HOSTS[:2]), 1000)
    after = owners(HashRing.build(HOSTS), 1000)
    moved = [s for s in before if before[s] != after[s]]
    assert all(after[s] == HOSTS[2] for s in moved)  # keys only move to the newcomer
    assert 150 < len(moved) < 550


def test_removing_a_member_moves_only_its_keys() -> None:
    before = owners(HashRing.build(HOSTS), 1000)
    after = owners(HashRing.build(HOSTS[:2]), 1000)
    assert all(before[s] == after[s] for s in before if before[s] != HOSTS[2])


def test_partition_keys_spread() -> None:
    ring = HashRing.build(HOSTS)
    owners_of_q = {ring.lookup(partition_key("ns", "orders", 1, p)) for p in range(16)}
    assert len(owners_of_q) >= 2


def test_history_routing_key_for_every_request_shape() -> None:
    token = tokens_pb2.TaskToken(namespace_id="ns", workflow_id="by-token", run_id="r").SerializeToString()
    cases = [
        (hs.StartWorkflowExecutionRequest(namespace_id="ns", request=ws.StartWorkflowExecutionRequest(workflow_id="w1")), "w1"),
        (hs.SignalWorkflowExecutionRequest(namespace_id="ns", request=ws.SignalWorkflowExecutionRequest(
            workflow_execution=WE(workflow_id="w2")), external_workflow_execution=WE(workflow_id="other")), "w2"),
        (hs.GetWorkflowExecutionHistoryRequest(namespace_id="ns", request=ws.GetWorkflowExecutionHistoryRequest(
            execution=WE(workflow_id="w3"))), "w3"),
        (hs.RespondWorkflowTaskCompletedRequest(namespace_id="ns", request=ws.RespondWorkflowTaskCompletedRequest(
            task_token=token)), "by-token"),
        (hs.RespondActivityTaskCompletedRequest(namespace_id="ns", by_id_request=ws.RespondActivityTaskCompletedByIdRequest(
            workflow_id="w4")), "w4"),
        (hs.RecordActivityTaskStartedRequest(namespace_id="ns", workflow_execution=WE(workflow_id="w5")), "w5"),
        (hs.RecordChildExecutionCompletedRequest(namespace_id="ns", parent_execution=WE(workflow_id="parent"),
                                                 child_execution=WE(workflow_id="child")), "parent"),
        (hs.PollWorkflowExecutionUpdateRequest(namespace_id="ns", request=ws.PollWorkflowExecutionUpdateRequest(
            update_ref=update_pb2.UpdateRef(workflow_execution=WE(workflow_id="w6")))), "w6"),
    ]
    for request, wf_id in cases:
        assert history_routing_key(request) == ("ns", wf_id), type(request).__name__
    with pytest.raises(InvalidArgument):
        history_routing_key(hs.RespondWorkflowTaskCompletedRequest(namespace_id="ns"))


def test_query_ids_carry_their_partition() -> None:
    assert partition_of_query_id(query_id_for_partition(3)) == 3
    assert partition_of_query_id("legacy-id-without-partition") == 0
