"""The REST API against a real ``tfsk serve`` process: TF Serving's REST integration cases (§13),
versions and labels in paths, row/columnar/b64 formats, and the answers compared with gRPC's."""

import base64
import shutil

import numpy as np
import pytest
from rest_http import get, post, request
from server_process import ServerProcess, free_port
from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc

from tfsk._base.codec import decode_tensor, encode_tensor
from tfsk.demo import DEMO_TOWERS


def build_echo(path):
    """A TF2 model with a string input: its length, and the bytes back (as ``echo_bytes`` and ``echo``)."""
    import tensorflow as tf

    class Echo(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def serve(self, text):
            return {"length": tf.strings.length(text), "echo_bytes": text, "echo": text}

    module = Echo()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})


@pytest.fixture(scope="module")
def rest(half_plus, demo_base, tmp_path_factory):
    """One server: ``default`` (half_plus_two), ``m`` (versions 1 and 2, labels), ``echo``, the demo."""
    base = tmp_path_factory.mktemp("rest")
    shutil.copytree(half_plus / "half_plus_two" / "00000123", base / "m" / "1")
    shutil.copytree(half_plus / "half_plus_three" / "00000123", base / "m" / "2")
    build_echo(base / "echo" / "1")
    config = base / "models.config"
    config.write_text(f"""model_config_list {{
  config {{ name: "default" base_path: "{half_plus / 'half_plus_two'}" model_platform: "tensorflow" }}
  config {{ name: "m" base_path: "{base / 'm'}" model_platform: "tensorflow"
           model_version_policy {{ specific {{ versions: 1 versions: 2 }} }}
           version_labels {{ key: "stable" value: 1 }} version_labels {{ key: "canary" value: 2 }} }}
  config {{ name: "echo" base_path: "{base / 'echo'}" model_platform: "tensorflow" }}
  config {{ name: "composed" base_path: "{demo_base / 'composed'}" model_platform: "tensorflow" }}
}}
""")
    port = free_port()
    with ServerProcess(f"--model_config_file={config}", f"--rest_api_port={port}",
                       "--allow_version_labels_for_unavailable_models=true") as server:
        server.rest_port = port
        yield server


# -- TF Serving's REST integration cases ------------------------------------------------------
def test_predict_rest(rest):
    reply = post(rest.rest_port, "/v1/models/default:predict", {"instances": [2.0, 3.0, 4.0]})
    assert (reply.status, reply.json()) == (200, {"predictions": [3.0, 3.5, 4.0]})
    assert reply.headers["content-type"] == "application/json"


def test_predict_columnar_rest(rest):
    reply = post(rest.rest_port, "/v1/models/default:predict", {"inputs": [2.0, 3.0, 4.0]})
    assert (reply.status, reply.json()) == (200, {"outputs": [3.0, 3.5, 4.0]})


def test_classify_rest(rest):
    reply = post(rest.rest_port, "/v1/models/default:classify",
                 {"signature_name": "classify_x_to_y", "examples": [{"x": 2.0}]})
    assert (reply.status, reply.json()) == (200, {"results": [[["", 3.0]]]})


def test_regress_rest(rest):
    reply = post(rest.rest_port, "/v1/models/default:regress",
                 {"signature_name": "regress_x_to_y", "examples": [{"x": 2.0}]})
    assert (reply.status, reply.json()) == (200, {"results": [3.0]})


def test_regress_with_context(rest):
    reply = post(rest.rest_port, "/v1/models/default:regress",
                 {"signature_name": "regress_x_to_y", "context": {"x": 4.0}, "examples": [{"x2": 1.0}, {"x2": 2.0}]})
    assert reply.status == 200, reply.body
    assert reply.json() == {"results": [4.0, 4.0]}  # y = 0.5 * x + 2, x from the context


def test_get_status_rest(rest):
    reply = get(rest.rest_port, "/v1/models/default")
    assert reply.status == 200
    assert reply.json() == {"model_version_status": [
        {"version": "123", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}


def test_get_model_metadata_rest(rest):
    document = get(rest.rest_port, "/v1/models/default/metadata").json()
    assert document["model_spec"] == {"name": "default", "signature_name": "", "version": "123"}
    signatures = document["metadata"]["signature_def"]["signature_def"]
    assert set(signatures) == {"serving_default", "classify_x_to_y", "regress_x_to_y", "regress_x_to_y2",
                               "regress_x2_to_y3"}
    x = signatures["serving_default"]["inputs"]["x"]
    assert x == {"dtype": "DT_FLOAT", "tensor_shape": {"dim": [{"size": "-1", "name": ""}, {"size": "1", "name": ""}],
                                                       "unknown_rank": False}, "name": "x:0"}
    assert signatures["serving_default"]["method_name"] == "tensorflow/serving/predict"
    assert signatures["serving_default"]["defaults"] == {}


# -- versions and labels in paths ---------------------------------------------------------------
@pytest.mark.parametrize(("path", "expected"), [
    ("/v1/models/m:predict", 4.0),  # latest = 2 = half_plus_three
    ("/v1/models/m/versions/1:predict", 3.0),
    ("/v1/models/m/versions/2:predict", 4.0),
    ("/v1/models/m/labels/stable:predict", 3.0),
    ("/v1/models/m/labels/canary:predict", 4.0),
    ("/V1/MODELS/m/LABELS/stable:predict", 3.0),  # the literal parts match case-insensitively
])
def test_versions_and_labels_choose_the_model(rest, path, expected):
    reply = post(rest.rest_port, path, {"instances": [2.0]})
    assert (reply.status, reply.json()) == (200, {"predictions": [expected]})


def test_status_by_version_and_label(rest):
    assert [v["version"] for v in get(rest.rest_port, "/v1/models/m").json()["model_version_status"]] == ["2", "1"]
    one = get(rest.rest_port, "/v1/models/m/versions/1").json()["model_version_status"]
    assert [v["version"] for v in one] == ["1"]
    # GetModelStatus ignores labels: every version, as in TF Serving.
    labelled = get(rest.rest_port, "/v1/models/m/labels/stable").json()["model_version_status"]
    assert [v["version"] for v in labelled] == ["2", "1"]
    metadata = get(rest.rest_port, "/v1/models/m/labels/stable/metadata").json()
    assert metadata["model_spec"]["version"] == "1"


def test_status_answers_like_grpc(rest):
    stub = model_service_pb2_grpc.ModelServiceStub(rest.channel)
    grpc_answer = stub.GetModelStatus(get_model_status_pb2.GetModelStatusRequest(model_spec={"name": "m"}), timeout=10)
    rest_answer = get(rest.rest_port, "/v1/models/m").json()["model_version_status"]
    assert [(str(s.version), s.state) for s in grpc_answer.model_version_status] == [
        (s["version"], 30) for s in rest_answer]


# -- formats on the demo composed model --------------------------------------------------------
def _composed_inputs():
    rng = np.random.default_rng(11)
    return {f"{part}__features": rng.standard_normal((3, width)).astype(np.float32)
            for part, (width, _, _) in DEMO_TOWERS.items()}


def _grpc_predict(server, inputs):
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request_proto = predict_pb2.PredictRequest()
    request_proto.model_spec.name = "composed"
    for alias, array in inputs.items():
        encode_tensor(array, request_proto.inputs[alias])
    response = prediction_service_pb2_grpc.PredictionServiceStub(server.channel).Predict(request_proto, timeout=30)
    return {alias: decode_tensor(proto) for alias, proto in response.outputs.items()}


def test_row_and_columnar_match_grpc_on_the_composed_model(rest):
    inputs = _composed_inputs()
    expected = _grpc_predict(rest, inputs)
    assert len(expected) > 1  # the head's prediction and each part's output
    columnar = post(rest.rest_port, "/v1/models/composed:predict",
                    {"inputs": {k: v.tolist() for k, v in inputs.items()}})
    assert columnar.status == 200, columnar.body
    outputs = columnar.json()["outputs"]
    assert set(outputs) == set(expected)
    for alias, value in expected.items():
        np.testing.assert_array_equal(np.array(outputs[alias], dtype=np.float32), value)  # exact: text round-trips
    rows = [{k: v[i].tolist() for k, v in inputs.items()} for i in range(3)]
    row = post(rest.rest_port, "/v1/models/composed:predict", {"instances": rows})
    assert row.status == 200, row.body
    predictions = row.json()["predictions"]
    assert len(predictions) == 3 and all(set(p) == set(expected) for p in predictions)
    for alias, value in expected.items():
        np.testing.assert_array_equal(np.array([p[alias] for p in predictions], dtype=np.float32), value)


def test_row_format_needs_every_input(rest):
    inputs = _composed_inputs()
    rows = [{k: v[i].tolist() for k, v in inputs.items() if not k.startswith("tower_c")} for i in range(3)]
    reply = post(rest.rest_port, "/v1/models/composed:predict", {"instances": rows})
    assert reply.status == 400
    assert reply.error.startswith("Failed to process element: 0 of 'instances' list. JSON object: ")
    assert reply.error.endswith("must only have keys: tower_a__features,tower_b__features,tower_c__features")


def test_b64_into_a_float_input_is_a_type_error(rest):
    reply = post(rest.rest_port, "/v1/models/composed:predict",
                 {"inputs": {"tower_a__features": {"b64": "AAAA"}, "tower_b__features": [[0.0] * 10],
                             "tower_c__features": [[0.0] * 5]}})
    assert reply.status == 400
    assert reply.error == 'JSON Value: {\n    "b64": "AAAA"\n} Type: Object is not of expected type: float'


def test_b64_strings_in_and_bytes_outputs_as_b64(rest):
    raw = b"\xff\x00binary"
    reply = post(rest.rest_port, "/v1/models/echo:predict",
                 {"instances": [{"b64": base64.b64encode(raw).decode()}, "text"]})
    assert reply.status == 200, reply.body
    predictions = reply.json()["predictions"]
    assert [p["length"] for p in predictions] == [len(raw), 4]
    assert [base64.b64decode(p["echo_bytes"]["b64"]) for p in predictions] == [raw, b"text"]
    assert predictions[1]["echo"] == "text"
    columnar = post(rest.rest_port, "/v1/models/echo:predict", {"inputs": [{"b64": "aGk"}]}).json()["outputs"]
    assert columnar["length"] == [2] and columnar["echo"] == ["hi"]  # padding is optional, as in absl


def test_gzip_body_and_trailing_text(rest):
    reply = post(rest.rest_port, "/v1/models/default:predict", '{"instances": [2.0]} and then some', compress=True)
    assert (reply.status, reply.json()) == (200, {"predictions": [3.0]})


def test_number_formatting_follows_tf_serving(rest):
    reply = post(rest.rest_port, "/v1/models/default:predict",
                 '{"inputs": [[0.0], [-4.0], [19999996], [0.2], [NaN], [Infinity], [0.66666667]]}')
    assert reply.status == 200, reply.body
    # y = 0.5x + 2 in float32: whole numbers get ".0", 1e7 prints as %g does, 2.1 in 6 digits since that
    # reads back as the same float, 9 digits when 6 do not; NaN and Infinity as bare tokens.
    assert "[[2.0], [0.0], [1e+07], [2.1], [NaN], [Infinity], [2.33333325]]" in reply.body.decode()


def test_cors_preflight(rest):
    assert request(rest.rest_port, "OPTIONS", "/v1/models/default", headers={"Origin": "http://x"}).status == 200
    preflight = request(rest.rest_port, "OPTIONS", "/v1/models/default")
    assert (preflight.status, preflight.body) == (400, b"")
