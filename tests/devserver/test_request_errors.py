"""Bad requests get TF Serving's status codes and messages, and never take the server down."""

import grpc
import numpy as np
import pytest
import tensorflow as tf
from server_process import ServerProcess
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

INVALID, NOT_FOUND, PRECONDITION = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION


def build_with_defaults(path):
    """s = a + b + c, whose signature gives b and c default values (SignatureDef.defaults)."""
    v1 = tf.compat.v1
    info = v1.saved_model.utils.build_tensor_info
    with tf.Graph().as_default(), v1.Session() as session:
        a, b, c = (v1.placeholder(tf.float32, [None], name=name) for name in "abc")
        total = tf.identity(a + b + c, name="s")
        signature = v1.saved_model.signature_def_utils.build_signature_def(
            {"a": info(a), "b": info(b), "c": info(c)}, {"s": info(total)}, "tensorflow/serving/predict")
        signature.defaults["b"].CopyFrom(tf.make_tensor_proto(np.array([10.0], np.float32)))
        signature.defaults["c"].CopyFrom(tf.make_tensor_proto(np.array([100.0], np.float32)))
        builder = v1.saved_model.Builder(str(path))
        builder.add_meta_graph_and_variables(session, ["serve"], signature_def_map={"serving_default": signature})
        builder.save()


@pytest.fixture(scope="module")
def server(half_plus, demo_base, tmp_path_factory):
    folder = tmp_path_factory.mktemp("errors")
    build_with_defaults(folder / "with_defaults" / "1")
    config = folder / "models.config"
    config.write_text(f"""model_config_list {{
  config {{ name: "default" base_path: "{half_plus / 'half_plus_two'}" model_platform: "tensorflow"
           version_labels {{ key: "stable" value: 123 }} }}
  config {{ name: "composed" base_path: "{demo_base / 'composed'}" model_platform: "tensorflow" }}
  config {{ name: "with_defaults" base_path: "{folder / 'with_defaults'}" model_platform: "tensorflow" }}
}}""")
    with ServerProcess(f"--model_config_file={config}", "--allow_version_labels_for_unavailable_models") as running:
        yield running


def call(server, method, request):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(server.channel)
    with pytest.raises(grpc.RpcError) as caught:
        getattr(stub, method)(request, timeout=10)
    return caught.value.code(), caught.value.details()


def predict_request(name="default", x=(2.0,), **spec):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    for key, value in spec.items():
        if key == "version":
            request.model_spec.version.value = value
        else:
            setattr(request.model_spec, key, value)
    if x is not None:
        request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array(x, np.float32)))
    return request


@pytest.mark.parametrize("request_, expected", [
    (predict_pb2.PredictRequest(), (INVALID, "Missing ModelSpec")),
    (predict_request(name=""), (INVALID, "ModelSpec has no name specified.")),
    (predict_request(name="nope"), (NOT_FOUND, "Servable not found for request: Latest(nope)")),
    (predict_request(version=7), (NOT_FOUND, "Servable not found for request: Specific(default, 7)")),
    (predict_request(version_label="canary"), (INVALID, "Unrecognized servable version label: canary")),
    (predict_request(signature_name="nope"), (PRECONDITION, 'Serving signature key "nope" not found.')),
    (predict_request(x=None), (INVALID, "input size does not match signature: 0!=1 len({}) != len({x}). "
                                        "Sent extra: {}. Missing but required: {x}.")),
])
def test_predict_errors(server, request_, expected):
    assert call(server, "Predict", request_) == expected


def test_wrong_and_extra_input_aliases(server):
    request = predict_request(x=None)
    request.inputs["z"].CopyFrom(tf.make_tensor_proto(np.ones(1, np.float32)))
    assert call(server, "Predict", request) == (
        INVALID, "Signature input alias: x(feed name: x:0) not found in request and no default value provided. "
                 "Inputs expected to be in the request {z}, or default input alias set: ")
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.ones(1, np.float32)))
    assert call(server, "Predict", request) == (
        INVALID, "input size does not match signature: 2!=1 len({x,z}) != len({x}). Sent extra: {z}. Missing but required: {}.")


def test_missing_input_names_the_defaults_without_braces_as_tensorflow_does(server):
    """GetInputValues joins the default aliases with ',' after 'default input alias set: ', no braces."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "with_defaults"
    request.inputs["z"].CopyFrom(tf.make_tensor_proto(np.ones(1, np.float32)))
    assert call(server, "Predict", request) == (
        INVALID, "Signature input alias: a(feed name: a:0) not found in request and no default value provided. "
                 "Inputs expected to be in the request {z}, or default input alias set: b,c")
    del request.inputs["z"]
    request.inputs["a"].CopyFrom(tf.make_tensor_proto(np.array([1.0, 2.0], np.float32)))
    response = prediction_service_pb2_grpc.PredictionServiceStub(server.channel).Predict(request, timeout=10)
    assert list(response.outputs["s"].float_val) == [111.0, 112.0]  # the defaults fill b and c


def test_output_filter_errors(server):
    request = predict_request()
    request.output_filter.append("nope")
    assert call(server, "Predict", request) == (
        INVALID, "output tensor alias not found in signature: nope Outputs expected to be in the set {y}.")
    request = predict_request()
    request.output_filter.extend(["y", "y"])
    assert call(server, "Predict", request) == (INVALID, "duplicate output tensor alias: y")


def test_dtype_mismatch_and_unparseable_tensors(server):
    request = predict_request(x=None)
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array(["a"], object)))
    assert call(server, "Predict", request) == (INVALID, "Expects arg[0] to be float but string is provided")
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.ones(2, np.float32)))
    request.inputs["x"].tensor_content = b"\x00" * 7  # not 2 floats
    assert call(server, "Predict", request) == (INVALID, "tensor parsing error: x")
    request.inputs["x"].Clear()  # no dtype
    assert call(server, "Predict", request) == (INVALID, "tensor parsing error: x")
    request.inputs["x"].dtype = tf.float32.as_datatype_enum
    request.inputs["x"].tensor_shape.dim.add().size = -1
    assert call(server, "Predict", request) == (INVALID, "tensor parsing error: x")


def test_composed_model_shape_errors_come_from_the_runtime(server):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "composed"
    for part, width in (("tower_a", 10), ("tower_b", 10), ("tower_c", 4)):  # tower_c takes 5
        request.inputs[f"{part}__features"].CopyFrom(tf.make_tensor_proto(np.ones((2, width), np.float32)))
    code, message = call(server, "Predict", request)
    assert code == INVALID and "Matrix size-incompatible" in message


def test_metadata_errors(server):
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    assert call(server, "GetModelMetadata", request) == (INVALID, "Missing ModelSpec")
    request.model_spec.name = "default"
    assert call(server, "GetModelMetadata", request) == (INVALID, "GetModelMetadataRequest must specify at least one metadata_field")
    request.metadata_field.append("graph")
    assert call(server, "GetModelMetadata", request) == (INVALID, "Metadata field graph is not supported")
    request.ClearField("metadata_field")
    request.metadata_field.append("signature_def")
    request.model_spec.name = "nope"
    assert call(server, "GetModelMetadata", request) == (NOT_FOUND, "Servable not found for request: Latest(nope)")


def test_classify_regress_and_multi_inference_errors(server):
    classify = classification_pb2.ClassificationRequest()
    classify.model_spec.name = "default"
    classify.model_spec.signature_name = "nope"
    assert call(server, "Classify", classify) == (INVALID, "No signature was found with the name: nope")
    classify.model_spec.signature_name = "classify_x_to_y"
    assert call(server, "Classify", classify) == (INVALID, "Input is empty.")
    regress = regression_pb2.RegressionRequest()
    regress.model_spec.name = "default"
    regress.input.example_list.examples.add()
    code, message = call(server, "Regress", regress)  # serving_default is a predict signature on x:0
    assert code == INVALID and message.startswith("No regression inputs found in SignatureDef:")
    multi = inference_pb2.MultiInferenceRequest()
    assert call(server, "MultiInference", multi) == (INVALID, "ModelSpec has no name specified.")
    for name, method in (("default", "tensorflow/serving/regress"), ("other", "tensorflow/serving/regress")):
        task = multi.tasks.add()
        task.model_spec.name = name
        task.model_spec.signature_name = "regress_x_to_y"
        task.method_name = method
    multi.input.example_list.examples.add()
    assert call(server, "MultiInference", multi) == (INVALID, "All ModelSpecs in a MultiInferenceRequest must access the same model name.")
    multi.tasks[1].model_spec.name = "default"
    assert call(server, "MultiInference", multi) == (INVALID, "Duplicate evaluation of signature: regress_x_to_y")
    multi.tasks[1].model_spec.signature_name = "regress_x_to_y2"
    multi.tasks[1].method_name = "tensorflow/serving/predict"
    assert call(server, "MultiInference", multi) == (grpc.StatusCode.UNIMPLEMENTED, "Unsupported signature method_name: tensorflow/serving/predict")


def test_model_status_errors_and_labels(server):
    stub = model_service_pb2_grpc.ModelServiceStub(server.channel)
    request = get_model_status_pb2.GetModelStatusRequest()
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetModelStatus(request, timeout=5)
    assert (caught.value.code(), caught.value.details()) == (INVALID, "Missing ModelSpec")
    request.model_spec.name = "nope"
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetModelStatus(request, timeout=5)
    assert (caught.value.code(), caught.value.details()) == (NOT_FOUND, "Could not find any versions of model nope")
    request.model_spec.name = "default"
    request.model_spec.version.value = 9
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetModelStatus(request, timeout=5)
    assert (caught.value.code(), caught.value.details()) == (NOT_FOUND, "Could not find version 9 of model default")
    # A label resolves to its version for Predict; GetModelStatus ignores it.
    response = prediction_service_pb2_grpc.PredictionServiceStub(server.channel).Predict(
        predict_request(version_label="stable"), timeout=5)
    assert response.model_spec.version.value == 123 and not response.model_spec.version_label
    request.model_spec.version_label = "anything"
    assert [s.version for s in stub.GetModelStatus(request, timeout=5).model_version_status] == [123]


def test_long_messages_are_truncated_like_tf_serving(server):
    request = predict_request(x=None)
    for index in range(200):
        request.inputs[f"a_rather_long_input_alias_{index:04d}"].CopyFrom(tf.make_tensor_proto(1.0))
    code, message = call(server, "Predict", request)
    assert code == INVALID and message.endswith("...TRUNCATED") and len(message.encode()) == 1024 + len("...TRUNCATED")


def test_the_server_still_serves_after_all_of_that(server):
    response = prediction_service_pb2_grpc.PredictionServiceStub(server.channel).Predict(predict_request(), timeout=5)
    assert list(response.outputs["y"].float_val) == [3.0]
    assert server.process.poll() is None
