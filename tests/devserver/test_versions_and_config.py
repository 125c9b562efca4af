"""Version discovery, version labels and config reloads, against a running ``tfsk serve``."""

import shutil

import grpc
import keras
import numpy as np
import pytest
import tensorflow as tf
from server_process import ServerProcess, wait_for
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)
from tensorflow_serving.config import model_server_config_pb2

from tfsk import exporter

AVAILABLE, END = get_model_status_pb2.ModelVersionStatus.AVAILABLE, get_model_status_pb2.ModelVersionStatus.END


def export_scaled(base, name, factor, version=None):
    """A model answering factor * x: which version answered is visible in its output."""
    inputs = keras.Input((1,), name="x")
    outputs = keras.layers.Dense(1, use_bias=False, kernel_initializer=keras.initializers.Constant(factor))(inputs)
    return exporter.export_part(keras.Model(inputs, outputs), base, name, version=version)


def ask(channel, name="m", label=None, version=None):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    if label:
        request.model_spec.version_label = label
    if version:
        request.model_spec.version.value = version
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.ones((1, 1), np.float32)))
    response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=10)
    return response.model_spec.version.value, float(response.outputs["embedding"].float_val[0])


def statuses(channel, name="m"):
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = name
    response = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(request, timeout=10)
    return [(s.version, s.state, s.status.error_code, s.status.error_message) for s in response.model_version_status]


def config_text(*models):
    lines = []
    for name, base, extra in models:
        lines.append(f'config {{ name: "{name}" base_path: "{base}" model_platform: "tensorflow" {extra} }}')
    return "model_config_list {\n" + "\n".join(lines) + "\n}\n"


def reload(channel, text):
    request = model_management_pb2.ReloadConfigRequest()
    from google.protobuf import text_format

    text_format.Parse(text, request.config)
    return model_service_pb2_grpc.ModelServiceStub(channel).HandleReloadConfigRequest(request, timeout=60)


def test_versions_appear_roll_back_and_fail_without_disturbing_serving(tmp_path):
    export_scaled(tmp_path, "m", 1.0)
    with ServerProcess("--model_name=m", f"--model_base_path={tmp_path / 'm'}", "--file_system_poll_wait_seconds=1",
                       "--max_num_load_retries=0") as server:
        assert ask(server.channel) == (1, 1.0)

        export_scaled(tmp_path, "m", 2.0)  # published atomically while the server polls
        wait_for(lambda: ask(server.channel) == (2, 2.0), timeout=30)
        wait_for(lambda: statuses(server.channel) == [(2, AVAILABLE, 0, ""), (1, END, 0, "")], timeout=30)

        shutil.rmtree(tmp_path / "m" / "2")  # deleting the newest rolls back to version 1
        wait_for(lambda: ask(server.channel) == (1, 1.0), timeout=30)

        broken = tmp_path / "m" / "3"
        broken.mkdir()
        (broken / "saved_model.pb").write_bytes(b"definitely not a SavedModel")
        wait_for(lambda: statuses(server.channel)[0][:2] == (3, END), timeout=30)
        version, state, code, message = statuses(server.channel)[0]
        assert code != 0 and message
        assert ask(server.channel) == (1, 1.0)  # the old version keeps serving
        assert (1, AVAILABLE, 0, "") in statuses(server.channel)

        shutil.rmtree(broken)
        export_scaled(tmp_path, "m", 4.0, version=4)
        wait_for(lambda: ask(server.channel) == (4, 4.0), timeout=30)


def test_version_policies_all_and_specific(tmp_path):
    for factor in (1.0, 2.0, 3.0):
        export_scaled(tmp_path, "m", factor)
    config = tmp_path / "models.config"
    config.write_text(config_text(("m", tmp_path / "m", "model_version_policy { all {} }")))
    with ServerProcess(f"--model_config_file={config}") as server:
        wait_for(lambda: sorted(s[0] for s in statuses(server.channel) if s[1] == AVAILABLE) == [1, 2, 3])
        assert [ask(server.channel, version=v) for v in (1, 2, 3)] == [(1, 1.0), (2, 2.0), (3, 3.0)]
        reload(server.channel, config_text(("m", tmp_path / "m", "model_version_policy { specific { versions: 2 } }")))
        wait_for(lambda: [s[0] for s in statuses(server.channel) if s[1] == AVAILABLE] == [2])
        assert ask(server.channel) == (2, 2.0)


def test_labels_at_start_up_need_the_flag(tmp_path):
    export_scaled(tmp_path, "m", 1.0)
    config = tmp_path / "models.config"
    config.write_text(config_text(("m", tmp_path / "m", 'version_labels { key: "stable" value: 1 }')))
    refused = ServerProcess(f"--model_config_file={config}", wait=False)
    try:
        assert refused.wait_for_exit() == 255
        assert ("Failed to start server. Error: FAILED_PRECONDITION: Request to assign label to version 1 of model m, "
                "which is not currently available for inference") in refused.log()
    finally:
        refused.stop()
    with ServerProcess(f"--model_config_file={config}", "--allow_version_labels_for_unavailable_models") as server:
        assert ask(server.channel, label="stable") == (1, 1.0)


def test_reload_config_by_rpc(tmp_path):
    export_scaled(tmp_path, "m", 1.0)
    export_scaled(tmp_path, "m", 2.0)
    specific = "model_version_policy { specific { versions: 1 } }"
    config = tmp_path / "models.config"
    config.write_text(config_text(("m", tmp_path / "m", specific)))
    # Without retries a failing load ends at once (TF Serving's default retries 5 times, a minute apart).
    with ServerProcess(f"--model_config_file={config}", "--max_num_load_retries=0") as server:
        channel = server.channel
        assert ask(channel) == (1, 1.0)
        both = "model_version_policy { specific { versions: 1 versions: 2 } }"
        assert reload(channel, config_text(("m", tmp_path / "m", both))).status.error_code == 0
        wait_for(lambda: (2, AVAILABLE, 0, "") in statuses(channel))

        # Phase 2 of a label move: the label may only name a loaded version.
        reload(channel, config_text(("m", tmp_path / "m", both + ' version_labels { key: "stable" value: 2 }')))
        assert ask(channel, label="stable") == (2, 2.0)
        with pytest.raises(grpc.RpcError) as caught:
            reload(channel, config_text(("m", tmp_path / "m", both + ' version_labels { key: "stable" value: 3 }')))
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert caught.value.details() == ("Request to assign label to version 3 of model m, which is not currently "
                                          "available for inference")
        assert ask(channel, label="stable") == (2, 2.0)  # the old label map stays

        with pytest.raises(grpc.RpcError) as caught:
            reload(channel, config_text(("m", tmp_path / "m", ""), ("m", tmp_path / "m", "")))
        assert (caught.value.code(), caught.value.details()) == (
            grpc.StatusCode.INVALID_ARGUMENT, "Illegal to list model m multiple times in config list")

        with pytest.raises(grpc.RpcError) as caught:
            model_service_pb2_grpc.ModelServiceStub(channel).HandleReloadConfigRequest(
                model_management_pb2.ReloadConfigRequest(config=model_server_config_pb2.ModelServerConfig()), timeout=10)
        assert caught.value.details() == ("ServerModelConfig type not supported by HandleReloadConfigRequest. Only "
                                          "ModelConfigList is currently supported")

        broken = tmp_path / "broken" / "1"
        broken.mkdir(parents=True)
        (broken / "saved_model.pb").write_bytes(b"junk")
        with pytest.raises(grpc.RpcError) as caught:
            reload(channel, config_text(("m", tmp_path / "m", both), ("broken", tmp_path / "broken", "")))
        assert caught.value.code() == grpc.StatusCode.UNKNOWN
        assert caught.value.details().startswith("1 model(s) did not become available: {{{name: broken version: 1} due to error: ")

        # Replace semantics: a model missing from the new config is unloaded, its history kept.
        export_scaled(tmp_path, "other", 5.0)
        reload(channel, config_text(("other", tmp_path / "other", "")))
        assert ask(channel, name="other") == (1, 5.0)
        wait_for(lambda: all(s[1] == END for s in statuses(channel)))
        with pytest.raises(grpc.RpcError) as caught:
            ask(channel)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_broken_config_file_keeps_the_old_config_serving(tmp_path):
    export_scaled(tmp_path, "m", 1.0)
    config = tmp_path / "models.config"
    config.write_text(config_text(("m", tmp_path / "m", "")))
    with ServerProcess(f"--model_config_file={config}", "--model_config_file_poll_wait_seconds=1") as server:
        config.write_text("model_config_list { config { name: ")
        wait_for(lambda: "Failed to read ModelServerConfig file" in server.log(), timeout=20)
        assert "Error parsing text-format tensorflow.serving.ModelServerConfig: 1:" in server.log()
        assert ask(server.channel) == (1, 1.0)
        config.write_text(config_text(("m", tmp_path / "m", ""), ("m", tmp_path / "m", "")))
        wait_for(lambda: "Illegal to list model m multiple times" in server.log(), timeout=20)
        assert ask(server.channel) == (1, 1.0)
