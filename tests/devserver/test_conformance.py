"""TF Serving's own integration tests (tensorflow_model_server_test.py), against ``tfsk serve``.

Same fixture models, same requests over raw ``tensorflow_serving`` stubs, same assertions.
"""

import grpc
import numpy as np
import pytest
import tensorflow as tf
from server_process import ServerProcess, free_port, wait_for
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)


@pytest.fixture(scope="module")
def default_server(half_plus):
    """``--model_name=default --model_base_path=.../half_plus_two``, as _TestPredict starts it."""
    socket_path = half_plus.parent / f"tf-serving-{free_port()}.sock"
    with ServerProcess("--model_name=default", f"--model_base_path={half_plus / 'half_plus_two'}",
                       f"--grpc_socket_path={socket_path}") as server:
        server.socket_path = socket_path
        yield server


def predict_stub(server):
    return prediction_service_pb2_grpc.PredictionServiceStub(server.channel)


def verify_predict(channel, expected, version, model_name="default", specify_output=True, batch_input=False,
                   signature_name="serving_default"):
    """VerifyPredictRequest of TF Serving's test base."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    shape = [1, 1] if batch_input else [1]
    request.inputs["x"].CopyFrom(tf.make_tensor_proto([2.0], shape=shape, dtype=tf.float32))
    if specify_output:
        request.output_filter.append("y")
    result = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=5)
    assert "y" in result.outputs
    assert result.outputs["y"].dtype == tf.float32.as_datatype_enum
    assert list(result.outputs["y"].float_val) == [expected]
    assert not result.outputs["y"].tensor_content  # typed fields by default, as TF Serving answers
    assert result.model_spec.name == model_name
    assert result.model_spec.signature_name == signature_name
    assert result.model_spec.version.value == version


def _example(x):
    example = tf.train.Example()
    example.features.feature["x"].float_list.value.append(x)
    return example


def test_get_model_status(default_server):
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "default"
    result = model_service_pb2_grpc.ModelServiceStub(default_server.channel).GetModelStatus(request, timeout=5)
    assert len(result.model_version_status) == 1
    assert result.model_version_status[0].version == 123
    assert result.model_version_status[0].state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
    assert result.model_version_status[0].status.error_code == 0


def test_get_model_metadata(default_server):
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "default"
    request.metadata_field.append("signature_def")
    request.metadata_field.append("signature_def")
    result = predict_stub(default_server).GetModelMetadata(request, timeout=5)
    assert result.model_spec.name == "default"
    assert result.model_spec.version.value == 123
    assert result.model_spec.signature_name == ""
    assert list(result.metadata) == ["signature_def"]
    assert result.metadata["signature_def"].type_url == "type.googleapis.com/tensorflow.serving.SignatureDefMap"
    signatures = get_model_metadata_pb2.SignatureDefMap()
    result.metadata["signature_def"].Unpack(signatures)
    assert {"serving_default", "classify_x_to_y", "regress_x_to_y", "regress_x_to_y2", "regress_x2_to_y3"} <= set(signatures.signature_def)
    assert signatures.signature_def["serving_default"].outputs["y"].name == "y:0"


def test_classify(default_server):
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "default"
    request.model_spec.signature_name = "classify_x_to_y"
    request.input.example_list.examples.add().CopyFrom(_example(2.0))
    result = predict_stub(default_server).Classify(request, timeout=5)
    assert len(result.result.classifications) == 1
    assert len(result.result.classifications[0].classes) == 1
    assert result.result.classifications[0].classes[0].score == pytest.approx(3.0)
    assert result.result.classifications[0].classes[0].label == ""
    assert (result.model_spec.name, result.model_spec.signature_name, result.model_spec.version.value) == ("default", "classify_x_to_y", 123)


def test_regress(default_server):
    request = regression_pb2.RegressionRequest()
    request.model_spec.name = "default"
    request.model_spec.signature_name = "regress_x_to_y"
    request.input.example_list.examples.add().CopyFrom(_example(2.0))
    result = predict_stub(default_server).Regress(request, timeout=5)
    assert [r.value for r in result.result.regressions] == [pytest.approx(3.0)]
    assert (result.model_spec.name, result.model_spec.signature_name, result.model_spec.version.value) == ("default", "regress_x_to_y", 123)


def test_regress_with_context_merges_features(default_server):
    request = regression_pb2.RegressionRequest()
    request.model_spec.name = "default"
    request.model_spec.signature_name = "regress_x2_to_y3"
    context = request.input.example_list_with_context.context
    context.features.feature["x2"].float_list.value.append(4.0)
    request.input.example_list_with_context.examples.add().CopyFrom(_example(1.0))
    with pytest.raises(grpc.RpcError):  # regress_x2_to_y3 reads x2:0, a float tensor, not examples
        predict_stub(default_server).Regress(request, timeout=5)
    request.model_spec.signature_name = "regress_x_to_y2"
    result = predict_stub(default_server).Regress(request, timeout=5)
    assert [r.value for r in result.result.regressions] == [pytest.approx(3.5)]


def test_multi_inference(default_server):
    request = inference_pb2.MultiInferenceRequest()
    for signature, method in (("regress_x_to_y", "tensorflow/serving/regress"), ("classify_x_to_y", "tensorflow/serving/classify")):
        task = request.tasks.add()
        task.model_spec.name = "default"
        task.model_spec.signature_name = signature
        task.method_name = method
    request.input.example_list.examples.add().CopyFrom(_example(2.0))
    result = predict_stub(default_server).MultiInference(request, timeout=5)
    assert len(result.results) == 2
    assert result.results[0].regression_result.regressions[0].value == pytest.approx(3.0)
    assert result.results[1].classification_result.classifications[0].classes[0].score == pytest.approx(3.0)
    for entry, signature in zip(result.results, ("regress_x_to_y", "classify_x_to_y")):
        assert (entry.model_spec.name, entry.model_spec.signature_name, entry.model_spec.version.value) == ("default", signature, 123)


def test_predict_saved_model(default_server):
    verify_predict(default_server.channel, 3.0, 123, specify_output=True)
    verify_predict(default_server.channel, 3.0, 123, specify_output=False)
    verify_predict(default_server.channel, 3.0, 123, batch_input=True)


def test_predict_over_unix_socket(default_server):
    with grpc.insecure_channel(f"unix:{default_server.socket_path}") as channel:
        verify_predict(channel, 3.0, 123)


def test_predict_accepts_typed_fields_tensor_content_and_short_fields(default_server):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "default"
    request.inputs["x"].dtype = tf.float32.as_datatype_enum
    request.inputs["x"].tensor_shape.dim.add().size = 3
    request.inputs["x"].float_val.append(2.0)  # one value fills the shape: [2, 2, 2]
    result = predict_stub(default_server).Predict(request, timeout=5)
    assert tf.make_ndarray(result.outputs["y"]).tolist() == [3.0, 3.0, 3.0]
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([2.0, 4.0], np.float32)))
    assert request.inputs["x"].tensor_content
    assert tf.make_ndarray(predict_stub(default_server).Predict(request, timeout=5).outputs["y"]).tolist() == [3.0, 4.0]


def test_good_model_config(half_plus, tmp_path):
    config = tmp_path / "models.config"
    config.write_text(f"""
model_config_list: {{
  config: {{ name: "half_plus_two", base_path: "{half_plus / 'half_plus_two'}", model_platform: "tensorflow" }},
  config: {{ name: "half_plus_three", base_path: "{half_plus / 'half_plus_three'}", model_platform: "tensorflow" }}
}}""")
    with ServerProcess(f"--model_config_file={config}") as server:
        for specify_output in (True, False):
            verify_predict(server.channel, 3.0, 123, model_name="half_plus_two", specify_output=specify_output)
            verify_predict(server.channel, 4.0, 123, model_name="half_plus_three", specify_output=specify_output)


def test_bad_model_config(tmp_path):
    config = tmp_path / "bad.config"
    config.write_text("improperly formatted file")
    server = ServerProcess(f"--model_config_file={config}", wait=False)
    try:
        assert server.wait_for_exit() == 255
        log = server.log()
        assert "Error parsing text-format tensorflow.serving.ModelServerConfig" in log
        assert f"Failed to start server. Error: INVALID_ARGUMENT: Invalid protobuf file: '{config}'" in log
    finally:
        server.stop()


def _write_config(path, entries):
    body = "".join(f'  config {{ name: "{n}" base_path: "{p}" model_platform: "tensorflow" }}\n' for n, p in entries)
    path.write_text("model_config_list {\n" + body + "}\n")


def test_model_config_reload(half_plus, tmp_path):
    config = tmp_path / "models.config"
    _write_config(config, [("half_plus_two", half_plus / "half_plus_two")])
    with ServerProcess(f"--model_config_file={config}", "--model_config_file_poll_wait_seconds=1") as server:
        verify_predict(server.channel, 3.0, 123, model_name="half_plus_two")
        _write_config(config, [("half_plus_three", half_plus / "half_plus_three")])

        def reloaded():
            try:
                verify_predict(server.channel, 4.0, 123, model_name="half_plus_three")
                return True
            except grpc.RpcError:
                return False

        wait_for(reloaded, timeout=20)
        wait_for(lambda: _not_found(server, "half_plus_two"), timeout=20)  # removed from the config: unloaded


def _not_found(server, model):
    try:
        verify_predict(server.channel, 3.0, 123, model_name=model)
    except grpc.RpcError as error:
        return error.code() == grpc.StatusCode.NOT_FOUND
    return False


def test_model_config_reload_with_zero_poll_period(half_plus, tmp_path):
    config = tmp_path / "models.config"
    _write_config(config, [("half_plus_two", half_plus / "half_plus_two")])
    with ServerProcess(f"--model_config_file={config}") as server:
        verify_predict(server.channel, 3.0, 123, model_name="half_plus_two")
        _write_config(config, [("half_plus_three", half_plus / "half_plus_three")])
        import time

        time.sleep(1.5)
        verify_predict(server.channel, 3.0, 123, model_name="half_plus_two")


def test_tf_saved_model_save(tmp_path):
    base = tmp_path / "saved_model_save"

    class Module(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def serve(self, x):
            return {"y": 3.0 * 2.0 * x}

    module = Module()
    tf.saved_model.save(module, str(base / "00000123"), signatures={"serving_default": module.serve})
    with ServerProcess("--model_name=default", f"--model_base_path={base}") as server:
        verify_predict(server.channel, 12.0, 123)


def test_tf_saved_model_save_multiple_signatures(tmp_path):
    base = tmp_path / "multiple_signatures"

    class Module(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def one(self, x):
            return {"y": tf.ones_like(x)}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def two(self, x):
            return {"y": 2.0 * tf.ones_like(x)}

    module = Module()
    tf.saved_model.save(module, str(base / "00000123"),
                        signatures={"serving_default": module.one, "custom_signature_key": module.two})
    with ServerProcess("--model_name=default", f"--model_base_path={base}") as server:
        verify_predict(server.channel, 2.0, 123, signature_name="custom_signature_key")
        verify_predict(server.channel, 1.0, 123)


def test_unknown_and_unimplemented_flags_do_not_stop_the_server(half_plus):
    with ServerProcess("--model_name=default", f"--model_base_path={half_plus / 'half_plus_two'}",
                       "--bogus_flag=1", "--rest_api_port", "--xla_cpu_compilation_enabled=true") as server:
        verify_predict(server.channel, 3.0, 123)
        log = server.log()
        assert "unknown argument: --bogus_flag=1" in log
        assert "unknown argument: --rest_api_port" in log  # the space-separated form is not a flag value
        assert "--xla_cpu_compilation_enabled is a TF Serving flag the devserver does not implement yet" in log


def test_start_up_errors_exit_255_with_tf_serving_messages(tmp_path):
    server = ServerProcess("--model_name=default", wait=False)
    try:
        assert server.wait_for_exit() == 255
        assert ("Failed to start server. Error: INVALID_ARGUMENT: Both server_options.model_base_path and "
                "server_options.model_config_file are empty!") in server.log()
    finally:
        server.stop()
    relative = ServerProcess("--model_name=default", "--model_base_path=relative/path", wait=False)
    try:
        assert relative.wait_for_exit() == 255
        assert ("INVALID_ARGUMENT: Expected model default to have an absolute path or URI; got "
                "base_path()=relative/path") in relative.log()
    finally:
        relative.stop()
