"""``--enable_grpc_healthcheck_service`` on a real ``tfsk serve``: grpc.health.v1.Health with TF Serving's names."""

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from server_process import ServerProcess


@pytest.fixture(scope="module")
def server(half_plus):
    with ServerProcess("--model_name=default", f"--model_base_path={half_plus / 'half_plus_two'}",
                       "--enable_grpc_healthcheck_service") as process:
        yield process


@pytest.mark.parametrize("service", ["", "ModelService", "PredictionService"])
def test_tf_serving_service_names_are_serving(server, service):
    stub = health_pb2_grpc.HealthStub(server.channel)
    answer = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


def test_qualified_or_unknown_names_are_not_found(server):
    stub = health_pb2_grpc.HealthStub(server.channel)
    for service in ("tensorflow.serving.PredictionService", "nope"):
        with pytest.raises(grpc.RpcError) as caught:
            stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_watch_streams_the_current_status(server):
    stream = health_pb2_grpc.HealthStub(server.channel).Watch(
        health_pb2.HealthCheckRequest(service="PredictionService"), timeout=10)
    assert next(iter(stream)).status == health_pb2.HealthCheckResponse.SERVING
    stream.cancel()


def test_without_the_flag_there_is_no_health_service(half_plus):
    with ServerProcess("--model_name=default", f"--model_base_path={half_plus / 'half_plus_two'}") as process:
        with pytest.raises(grpc.RpcError) as caught:
            health_pb2_grpc.HealthStub(process.channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
