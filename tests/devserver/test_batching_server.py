"""``--enable_batching`` end to end: a real devserver process, real gRPC, concurrent clients.

Batched answers equal what the same SavedModel gives unbatched; the errors batching adds are TF
Serving's; the flags and the per-model ``batching_params.pbtxt`` are read as TF Serving reads them.
"""

import shutil
import threading

import grpc
import numpy as np
import pytest
import tensorflow as tf
from prometheus_client.parser import text_string_to_metric_families
from rest_http import get
from server_process import ServerProcess, free_port
from support import run_like_tf_serving
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc, regression_pb2

from tfsk import serving_config as sc
from tfsk.demo import DEMO_TOWERS

WAIT = 60


def predict(stub, model, inputs, output_filter=()):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    request.output_filter.extend(output_filter)
    response = stub.Predict(request, timeout=WAIT)
    return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}


def in_threads(count, target):
    """Call ``target(i)`` from ``count`` threads at once; return results or errors by index."""
    results = [None] * count
    start = threading.Barrier(count)

    def worker(index):
        start.wait(WAIT)
        try:
            results[index] = target(index)
        except grpc.RpcError as error:
            results[index] = (error.code(), error.details())

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert not any(t.is_alive() for t in threads)
    return results


@pytest.fixture(scope="module")
def batching_server(half_plus, demo_base, tmp_path_factory):
    folder = tmp_path_factory.mktemp("batching")
    params = folder / "batching.config"
    sc.write_batching_parameters(sc.BatchingSettings(max_batch_size=16, batch_timeout_micros=20_000,
                                                     max_enqueued_batches=100, num_batch_threads=2,
                                                     allowed_batch_sizes=(8, 16)), params)
    config = folder / "models.config"
    config.write_text(f"""model_config_list {{
  config {{ name: "default" base_path: "{half_plus / 'half_plus_two'}" model_platform: "tensorflow" }}
  config {{ name: "composed" base_path: "{demo_base / 'composed'}" model_platform: "tensorflow" }}
}}""")
    monitoring = folder / "monitoring.config"
    monitoring.write_text('prometheus_config { enable: true path: "/metrics" }\n')
    port = free_port()
    # The composed model's warmup records (8 rows each) are replayed through the batching session.
    with ServerProcess(f"--model_config_file={config}", "--enable_batching", f"--batching_parameters_file={params}",
                       "--grpc_max_threads=32", f"--rest_api_port={port}",
                       f"--monitoring_config_file={monitoring}") as running:
        running.rest_port = port
        yield running


def composed_inputs(rows, seed):
    rng = np.random.default_rng(seed)
    return {f"{part}__features": rng.standard_normal((rows, width)).astype(np.float32)
            for part, (width, _, _) in DEMO_TOWERS.items()}


def test_concurrent_predicts_equal_unbatched_results(batching_server, demo_base):
    assert "Wrapping session to perform batch processing" in batching_server.log()
    stub = prediction_service_pb2_grpc.PredictionServiceStub(batching_server.channel)
    inputs = [composed_inputs(1 + i % 3, seed=i) for i in range(24)]
    filters = [("prediction",) if i % 4 == 0 else () for i in range(24)]  # another run signature, another queue
    results = in_threads(24, lambda i: predict(stub, "composed", inputs[i], filters[i]))
    for value, wanted, result in zip(inputs, filters, results, strict=True):
        assert isinstance(result, dict), result
        expected = run_like_tf_serving(demo_base / "composed" / "1", "serving_default", value)
        assert set(result) == (set(wanted) or set(expected))
        for name in result:
            # A matmul over more rows may sum in another order (Eigen blocks by batch size): float32's
            # rounding, a few ulps of values near 1, and nothing more.
            np.testing.assert_allclose(result[name], expected[name], rtol=1e-5, atol=1e-6)
            assert result[name].shape[0] == len(next(iter(value.values())))


def test_concurrent_regress_and_predict_on_one_version(batching_server):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(batching_server.channel)

    def call(i):
        if i % 2:
            return predict(stub, "default", {"x": np.array([[float(i)], [i + 0.5]], np.float32)})["y"].reshape(-1)
        request = regression_pb2.RegressionRequest()
        request.model_spec.name, request.model_spec.signature_name = "default", "regress_x_to_y"
        example = request.input.example_list.examples.add()
        example.features.feature["x"].float_list.value.append(float(i))
        return np.array([r.value for r in stub.Regress(request, timeout=WAIT).result.regressions])

    results = in_threads(12, call)
    for i, result in enumerate(results):
        expected = [0.5 * i + 2, 0.5 * (i + 0.5) + 2] if i % 2 else [0.5 * i + 2]
        np.testing.assert_array_equal(result, np.array(expected, np.float32))


@pytest.mark.parametrize("inputs, code, message", [
    ({"x": np.float32(2.0)}, grpc.StatusCode.INVALID_ARGUMENT,
     "Batching Run() input tensors must have at least one dimension"),
    ({"x": np.zeros((17, 1), np.float32)}, grpc.StatusCode.INVALID_ARGUMENT,
     "Task size 17 is larger than maximum input batch size 16"),
])
def test_batching_errors_over_grpc(batching_server, inputs, code, message):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(batching_server.channel)
    with pytest.raises(grpc.RpcError) as caught:
        predict(stub, "default", inputs)
    assert (caught.value.code(), caught.value.details()) == (code, message)
    assert predict(stub, "default", {"x": np.ones((2, 1), np.float32)})["y"].tolist() == [[2.5], [2.5]]


def test_per_model_parameters_come_from_the_version_folder(half_plus, tmp_path):
    # tfsk.toml declares half_plus_two's own batching; `tfsk config write` puts it in the version folder.
    shutil.copytree(half_plus, tmp_path / "models")
    (tmp_path / "tfsk.toml").write_text("""[paths]
host_root = "models"
container_root = "/models"
[models.half_plus_two.batching]
max_batch_size = 2
[models.half_plus_three]
""")
    declaration = sc.load_declaration(tmp_path / "tfsk.toml")
    written = {r.kind: r.path for r in sc.write_configs(declaration)}
    assert written["model-batching"] == tmp_path / "models" / "half_plus_two" / "00000123" / "batching_params.pbtxt"
    config = declaration.outputs.host_models_config  # absolute host paths, for the devserver
    with ServerProcess(f"--model_config_file={config}", "--enable_batching",
                       "--enable_per_model_batching_parameters") as server:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(server.channel)
        three_rows = {"x": np.ones((3, 1), np.float32)}
        with pytest.raises(grpc.RpcError) as caught:
            predict(stub, "half_plus_two", three_rows)
        assert caught.value.details() == "Task size 3 is larger than maximum input batch size 2"
        # No file in its version folder: half_plus_three is not batched (a scalar input is fine).
        assert predict(stub, "half_plus_three", three_rows)["y"].tolist() == [[3.5]] * 3
        assert predict(stub, "half_plus_three", {"x": np.float32(4.0)})["y"].tolist() == 5.0


def test_a_broken_per_model_file_fails_that_versions_load(half_plus, tmp_path):
    base = tmp_path / "models"
    shutil.copytree(half_plus / "half_plus_two", base / "half_plus_two")
    broken = base / "half_plus_two" / "00000123" / "batching_params.pbtxt"
    broken.write_text("max_batch_size { value: many }\n")
    with ServerProcess(f"--model_base_path={base / 'half_plus_two'}", "--enable_batching",
                       "--enable_per_model_batching_parameters", "--max_num_load_retries=0", wait=False) as server:
        assert server.wait_for_exit() == 255
        assert f"Invalid protobuf file: '{broken}'" in server.log()


def test_start_up_errors_of_the_batching_flags(half_plus, tmp_path):
    model = f"--model_base_path={half_plus / 'half_plus_two'}"
    with ServerProcess(model, f"--batching_parameters_file={tmp_path / 'b.config'}", wait=False) as server:
        assert server.wait_for_exit() == 255
        assert ("Failed to start server. Error: INVALID_ARGUMENT: server_options.batching_parameters_file is set "
                "without setting server_options.enable_batching to true.") in server.log()
    bad = tmp_path / "bad.config"
    bad.write_text("max_batch_size: 3\n")
    with ServerProcess(model, "--enable_batching", f"--batching_parameters_file={bad}", wait=False) as server:
        assert server.wait_for_exit() == 255
        assert f"Failed to start server. Error: INVALID_ARGUMENT: Invalid protobuf file: '{bad}'" in server.log()


def test_batching_metrics_are_tf_servings(batching_server):
    """The batching session's samples reach the Prometheus page under TF Serving's names and labels."""
    stub = prediction_service_pb2_grpc.PredictionServiceStub(batching_server.channel)
    in_threads(8, lambda i: predict(stub, "composed", composed_inputs(2, seed=100 + i)))
    reply = get(batching_server.rest_port, "/metrics")
    assert reply.status == 200
    families = {family.name: family for family in text_string_to_metric_families(reply.body.decode())}
    prefix = ":tensorflow:serving:batching_session:"
    runs = families[prefix + "wrapped_run_count"].samples
    assert runs and runs[0].value >= 1 and runs[0].labels == {}
    queuing = families[prefix + "queuing_latency"].samples
    assert {s.labels.get("thread_pool_name") for s in queuing if s.name.endswith("_count")} == {""}
    assert any(s.name.endswith("_count") and s.value >= 8 for s in queuing)
    padding = families[prefix + "padding_size"].samples
    assert {s.labels["execution_batch_size"] for s in padding if s.name.endswith("_count")} <= {"8", "16"}
    for name in ("input_batch_size", "processed_batch_size"):
        assert any(s.name.endswith("_count") and s.value > 0 for s in families[prefix + name].samples)


def test_no_timeout_one_batch_thread_answers_right_under_load(half_plus, tmp_path):
    """``batch_timeout_micros`` 0 and one batch thread: requests run alone on their own threads or,
    queued behind the busy slot, merged and handed to a waiting request; each answer is its own and
    the batch metrics add up to the rows sent."""
    params = tmp_path / "batching.config"
    sc.write_batching_parameters(sc.BatchingSettings(max_batch_size=32, batch_timeout_micros=0,
                                                     max_enqueued_batches=1000, num_batch_threads=1), params)
    monitoring = tmp_path / "monitoring.config"
    monitoring.write_text('prometheus_config { enable: true path: "/metrics" }\n')
    port = free_port()
    with ServerProcess(f"--model_base_path={half_plus / 'half_plus_two'}", "--enable_batching",
                       f"--batching_parameters_file={params}", "--grpc_max_threads=16", f"--rest_api_port={port}",
                       f"--monitoring_config_file={monitoring}") as server:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(server.channel)
        rows = [1 + i % 3 for i in range(16)]

        def calls(i):
            answers = []
            for k in range(15):
                x = np.full((rows[i], 1), 100 * i + k, np.float32)
                answers.append(predict(stub, "default", {"x": x})["y"].reshape(-1).tolist())
            return answers

        results = in_threads(16, calls)
        families = {f.name: f for f in text_string_to_metric_families(get(port, "/metrics").body.decode())}
    for i, answers in enumerate(results):
        assert answers == [[(100 * i + k) * 0.5 + 2] * rows[i] for k in range(15)], answers
    prefix = ":tensorflow:serving:batching_session:"
    processed = {s.name: s.value for s in families[prefix + "processed_batch_size"].samples}
    runs = families[prefix + "wrapped_run_count"].samples[0].value
    assert processed[prefix + "processed_batch_size_sum"] == 15 * sum(rows)  # every row ran once, no padding
    assert processed[prefix + "processed_batch_size_count"] == runs <= 15 * 16
