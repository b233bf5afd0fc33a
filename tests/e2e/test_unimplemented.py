"""Which public RPCs Durata does not serve yet, read from the descriptors, and why.

Every WorkflowService and OperatorService method is called with an empty request: a served one answers anything
but UNIMPLEMENTED (usually INVALID_ARGUMENT). The set that answers UNIMPLEMENTED must be exactly ``NOT_SERVED``:
an RPC that lands leaves the list in the same change, and nothing drops out of service unnoticed.
"""

from __future__ import annotations

import grpc
import grpc.aio
import pytest
from google.protobuf.message_factory import GetMessageClass
from temporalio.api.operatorservice.v1 import service_pb2 as op_service
from temporalio.api.workflowservice.v1 import service_pb2 as wsv_service

from e2e.deployments import Deployment

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

DEPLOYMENTS = "worker deployments and versioning: the worker-deployments issue"
LEGACY_VERSIONING = "deprecated build-id versioning: to answer as Temporal does when disabled (worker-deployments issue)"
NEXUS = "Nexus: not planned yet (workflows that schedule Nexus operations fail their task with FEATURE_DISABLED)"
STANDALONE = "standalone activities and Nexus operations (CHASM): not planned yet"
RULES = "workflow rules: not planned yet"
FLOW = "task-queue and worker configuration: the flow-control issue"
ARCHIVAL = "archival: Durata deletes closed runs at retention and archives nothing"
REPLICATION = "multi-cluster replication: Durata runs one cluster"
TIME_SKIPPING = "time skipping: the test-environment issue"

NOT_SERVED: dict[str, str] = {
    **dict.fromkeys(
        ["UpdateWorkerBuildIdCompatibility", "GetWorkerBuildIdCompatibility", "UpdateWorkerVersioningRules",
         "GetWorkerVersioningRules", "GetWorkerTaskReachability"], LEGACY_VERSIONING),
    **dict.fromkeys(
        ["DescribeDeployment", "DescribeWorkerDeploymentVersion", "ListDeployments", "GetDeploymentReachability",
         "GetCurrentDeployment", "SetCurrentDeployment", "SetWorkerDeploymentCurrentVersion",
         "DescribeWorkerDeployment", "DeleteWorkerDeployment", "DeleteWorkerDeploymentVersion",
         "SetWorkerDeploymentRampingVersion", "ListWorkerDeployments", "CreateWorkerDeployment",
         "CreateWorkerDeploymentVersion", "UpdateWorkerDeploymentVersionComputeConfig",
         "ValidateWorkerDeploymentVersionComputeConfig", "UpdateWorkerDeploymentVersionMetadata",
         "SetWorkerDeploymentManager"], DEPLOYMENTS),
    **dict.fromkeys(
        ["PollNexusTaskQueue", "RespondNexusTaskCompleted", "RespondNexusTaskFailed", "GetNexusEndpoint",
         "CreateNexusEndpoint", "UpdateNexusEndpoint", "DeleteNexusEndpoint", "ListNexusEndpoints"], NEXUS),
    **dict.fromkeys(
        ["StartActivityExecution", "StartNexusOperationExecution", "DescribeActivityExecution",
         "DescribeNexusOperationExecution", "PollActivityExecution", "PollNexusOperationExecution",
         "ListActivityExecutions", "ListNexusOperationExecutions", "CountActivityExecutions",
         "CountNexusOperationExecutions", "RequestCancelActivityExecution", "RequestCancelNexusOperationExecution",
         "TerminateActivityExecution", "DeleteActivityExecution", "PauseActivityExecution",
         "ResetActivityExecution", "UnpauseActivityExecution", "UpdateActivityExecutionOptions",
         "TerminateNexusOperationExecution", "DeleteNexusOperationExecution"], STANDALONE),
    **dict.fromkeys(
        ["CreateWorkflowRule", "DescribeWorkflowRule", "DeleteWorkflowRule", "ListWorkflowRules",
         "TriggerWorkflowRule"], RULES),
    **dict.fromkeys(["UpdateTaskQueueConfig", "FetchWorkerConfig", "UpdateWorkerConfig"], FLOW),
    "ListArchivedWorkflowExecutions": ARCHIVAL,
    "AddOrUpdateRemoteCluster": REPLICATION,
    "RemoveRemoteCluster": REPLICATION,
    "PollWorkflowExecutionTimeSkipping": TIME_SKIPPING,
}

SERVICES = [
    wsv_service.DESCRIPTOR.services_by_name["WorkflowService"],
    op_service.DESCRIPTOR.services_by_name["OperatorService"],
]


async def test_unimplemented_rpcs_are_exactly_the_listed_ones(deployment: Deployment) -> None:
    unimplemented = set()
    every = set()
    async with grpc.aio.insecure_channel(deployment.address) as channel:
        for service in SERVICES:
            for method in service.methods:
                every.add(method.name)
                rpc = channel.unary_unary(f"/{service.full_name}/{method.name}")
                try:
                    await rpc(GetMessageClass(method.input_type)().SerializeToString(), timeout=10)
                except grpc.aio.AioRpcError as err:
                    if err.code() == grpc.StatusCode.UNIMPLEMENTED:
                        unimplemented.add(method.name)
    assert set(NOT_SERVED) <= every, f"not in the descriptors: {sorted(set(NOT_SERVED) - every)}"
    assert unimplemented - set(NOT_SERVED) == set(), "UNIMPLEMENTED but not listed (serve it or list it with a reason)"
    assert set(NOT_SERVED) - unimplemented == set(), "served now: remove from NOT_SERVED"
