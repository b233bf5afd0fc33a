"""The frontend over real gRPC: what the SDKs and the CLI see on the wire."""

from __future__ import annotations

import grpc
import grpc.aio
import pytest
from google.protobuf.duration_pb2 import Duration
from grpc_health.v1 import health_pb2, health_pb2_grpc
from temporalio.api.common.v1 import message_pb2 as common
from temporalio.api.enums.v1 import namespace_pb2 as ns_enums
from temporalio.api.errordetails.v1 import message_pb2 as errordetails
from temporalio.api.namespace.v1 import message_pb2 as nsv1
from temporalio.api.workflowservice.v1 import request_response_pb2 as wsv1
from temporalio.api.workflowservice.v1 import service_pb2_grpc as workflow_grpc

from services.frontend.service import FrontendService
from tests.services.frontend.conftest import GrpcEndpoint, RecordingService
from tests.services.frontend.helpers import decode_error


async def test_get_system_info_advertises_only_implemented_capabilities(endpoint: GrpcEndpoint) -> None:
    resp = await endpoint.workflow.GetSystemInfo(wsv1.GetSystemInfoRequest())
    assert resp.server_version == "1.29.0"
    caps = resp.capabilities
    for flag in (
        "signal_and_query_header",
        "internal_error_differentiation",
        "activity_failure_include_heartbeat",
        "sdk_metadata",
        "encoded_failure_attributes",
        "upsert_memo",
        "count_group_by_execution_status",
    ):
        assert getattr(caps, flag) is True, flag
    assert caps.eager_workflow_start is True
    assert caps.build_id_based_versioning is False


async def test_health_serving_for_server_and_workflow_service(endpoint: GrpcEndpoint) -> None:
    stub = health_pb2_grpc.HealthStub(endpoint.channel)
    for service in ("", "temporal.api.workflowservice.v1.WorkflowService"):
        resp = await stub.Check(health_pb2.HealthCheckRequest(service=service))
        assert resp.status == health_pb2.HealthCheckResponse.SERVING


async def test_health_not_serving_after_stop(endpoint: GrpcEndpoint, frontend: FrontendService) -> None:
    await frontend.stop()
    resp = await health_pb2_grpc.HealthStub(endpoint.channel).Check(
        health_pb2.HealthCheckRequest(service="temporal.api.workflowservice.v1.WorkflowService")
    )
    assert resp.status == health_pb2.HealthCheckResponse.NOT_SERVING


async def test_gzip_compressed_requests_are_accepted(grpc_server: str) -> None:
    # The official SDK compresses requests with gzip by default; grpcio must inflate them before our handler.
    async with grpc.aio.insecure_channel(grpc_server, compression=grpc.Compression.Gzip) as channel:
        stub = workflow_grpc.WorkflowServiceStub(channel)
        info = await stub.GetSystemInfo(wsv1.GetSystemInfoRequest(), compression=grpc.Compression.Gzip)
        assert info.server_version
        big_value = "x" * 50_000  # compressible, so gzip really changes the bytes on the wire
        await stub.RegisterNamespace(
            wsv1.RegisterNamespaceRequest(
                namespace="gz",
                data={"blob": big_value},
                workflow_execution_retention_period=Duration(seconds=86400),
            ),
            compression=grpc.Compression.Gzip,
        )
        desc = await stub.DescribeNamespace(wsv1.DescribeNamespaceRequest(namespace="gz"))
        assert desc.namespace_info.data["blob"] == big_value


async def test_namespace_lifecycle_over_grpc(endpoint: GrpcEndpoint) -> None:
    wf = endpoint.workflow
    await wf.RegisterNamespace(
        wsv1.RegisterNamespaceRequest(
            namespace="orders",
            description="order processing",
            owner_email="ops@example.com",
            data={"team": "payments"},
            workflow_execution_retention_period=Duration(seconds=2 * 86400),
        )
    )
    desc = await wf.DescribeNamespace(wsv1.DescribeNamespaceRequest(namespace="orders"))
    info = desc.namespace_info
    assert (info.name, info.description, info.owner_email) == (
        "orders",
        "order processing",
        "ops@example.com",
    )
    assert info.state == ns_enums.NAMESPACE_STATE_REGISTERED
    assert dict(info.data) == {"team": "payments"}
    assert info.id
    assert info.capabilities.worker_heartbeats and not info.capabilities.poller_autoscaling
    assert desc.config.workflow_execution_retention_ttl.seconds == 2 * 86400
    assert desc.config.history_archival_state == ns_enums.ARCHIVAL_STATE_DISABLED
    assert desc.replication_config.active_cluster_name == "active"
    assert desc.is_global_namespace is False

    by_id = await wf.DescribeNamespace(wsv1.DescribeNamespaceRequest(id=info.id))
    assert by_id.namespace_info.name == "orders"

    # What `temporal operator namespace update --retention 96h --description new` sends.
    await wf.UpdateNamespace(
        wsv1.UpdateNamespaceRequest(
            namespace="orders",
            update_info=nsv1.UpdateNamespaceInfo(
                description="new", owner_email="ops@example.com", data={"tier": "1"}
            ),
            config=nsv1.NamespaceConfig(workflow_execution_retention_ttl=Duration(seconds=4 * 86400)),
        )
    )
    desc = await wf.DescribeNamespace(wsv1.DescribeNamespaceRequest(namespace="orders"))
    assert desc.namespace_info.description == "new"
    assert dict(desc.namespace_info.data) == {"team": "payments", "tier": "1"}
    assert desc.config.workflow_execution_retention_ttl.seconds == 4 * 86400

    listed = await wf.ListNamespaces(wsv1.ListNamespacesRequest(page_size=100))
    assert {n.namespace_info.name for n in listed.namespaces} == {"default", "orders"}


async def test_list_namespaces_paginates(endpoint: GrpcEndpoint) -> None:
    for i in range(5):
        await endpoint.workflow.RegisterNamespace(
            wsv1.RegisterNamespaceRequest(
                namespace=f"ns-{i}", workflow_execution_retention_period=Duration(seconds=60)
            )
        )
    names: list[str] = []
    token = b""
    for _ in range(10):
        page = await endpoint.workflow.ListNamespaces(
            wsv1.ListNamespacesRequest(page_size=2, next_page_token=token)
        )
        assert len(page.namespaces) <= 2
        names += [n.namespace_info.name for n in page.namespaces]
        token = page.next_page_token
        if not token:
            break
    assert sorted(names) == sorted(["default"] + [f"ns-{i}" for i in range(5)])


async def test_register_duplicate_namespace_is_already_exists_with_detail(endpoint: GrpcEndpoint) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await endpoint.workflow.RegisterNamespace(wsv1.RegisterNamespaceRequest(namespace="default"))
    err = decode_error(exc.value)
    assert err.code == grpc.StatusCode.ALREADY_EXISTS
    assert isinstance(err.detail, errordetails.NamespaceAlreadyExistsFailure)


async def test_register_rejects_short_retention(endpoint: GrpcEndpoint) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await endpoint.workflow.RegisterNamespace(
            wsv1.RegisterNamespaceRequest(
                namespace="tiny", workflow_execution_retention_period=Duration(nanos=1000)
            )
        )
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "retention" in (exc.value.details() or "")


@pytest.mark.parametrize(
    "call",
    [
        lambda wf: wf.DescribeNamespace(wsv1.DescribeNamespaceRequest(namespace="nope")),
        lambda wf: wf.UpdateNamespace(wsv1.UpdateNamespaceRequest(namespace="nope")),
        lambda wf: wf.StartWorkflowExecution(
            wsv1.StartWorkflowExecutionRequest(
                namespace="nope",
                workflow_id="w",
                workflow_type=common.WorkflowType(name="T"),
                task_queue={"name": "q"},
            )
        ),
        lambda wf: wf.ListWorkflowExecutions(wsv1.ListWorkflowExecutionsRequest(namespace="nope")),
        lambda wf: wf.PollWorkflowTaskQueue(
            wsv1.PollWorkflowTaskQueueRequest(namespace="nope", task_queue={"name": "q"})
        ),
    ],
    ids=["describe", "update", "start", "list", "poll"],
)
async def test_unknown_namespace_is_not_found_with_detail(endpoint: GrpcEndpoint, call) -> None:  # noqa: ANN001
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await call(endpoint.workflow)
    err = decode_error(exc.value)
    assert err.code == grpc.StatusCode.NOT_FOUND
    assert isinstance(err.detail, errordetails.NamespaceNotFoundFailure)
    assert err.detail.namespace == "nope"
    assert err.message == "Namespace nope is not found."


async def test_garbage_task_token_is_invalid_argument(endpoint: GrpcEndpoint) -> None:
    for call in (
        endpoint.workflow.RespondWorkflowTaskCompleted(
            wsv1.RespondWorkflowTaskCompletedRequest(
                namespace="default", task_token=b"\xff\xfe garbage \x00\x01"
            )
        ),
        endpoint.workflow.RespondActivityTaskCompleted(
            wsv1.RespondActivityTaskCompletedRequest(namespace="default", task_token=b"not a token")
        ),
        endpoint.workflow.RespondQueryTaskCompleted(
            wsv1.RespondQueryTaskCompletedRequest(namespace="default", task_token=b"\x08\x96\x01")
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await call
        assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert exc.value.details() == "Error deserializing task token."


async def test_validation_error_names_the_field_over_grpc(
    endpoint: GrpcEndpoint, history: RecordingService
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await endpoint.workflow.StartWorkflowExecution(
            wsv1.StartWorkflowExecutionRequest(
                namespace="default", workflow_type=common.WorkflowType(name="T"), task_queue={"name": "q"}
            )
        )
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert exc.value.details() == "WorkflowId is not set on request."
    assert history.calls == []


async def test_client_name_header_reaches_history(endpoint: GrpcEndpoint, history: RecordingService) -> None:
    await endpoint.workflow.GetWorkflowExecutionHistory(
        wsv1.GetWorkflowExecutionHistoryRequest(
            namespace="default", execution=common.WorkflowExecution(workflow_id="w")
        ),
        metadata=(("client-name", "temporal-cli"), ("client-version", "1.3.0")),
    )
    call = history.only("GetWorkflowExecutionHistory")
    assert call.request.client_name == "temporal-cli"
    assert call.request.request.execution.workflow_id == "w"


async def test_unimplemented_rpc_answers_unimplemented(endpoint: GrpcEndpoint) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await endpoint.workflow.ListWorkerDeployments(wsv1.ListWorkerDeploymentsRequest(namespace="default"))
    assert exc.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_official_sdk_client_connects_and_describes_namespace(grpc_server: str) -> None:
    # temporalio (Rust core) calls GetSystemInfo on connect and sends gzip-compressed requests.
    from temporalio.client import Client

    client = await Client.connect(grpc_server, namespace="default")
    resp = await client.workflow_service.describe_namespace(
        wsv1.DescribeNamespaceRequest(namespace="default")
    )
    assert resp.namespace_info.name == "default"
