"""REST errors against a real ``tfsk serve``: TF Serving's routing messages and HTTP status mapping,
the signature's dtypes deciding how JSON is read, and hostile bodies that must get a 4xx, never a 500."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_http import get, post, request
from server_process import ServerProcess, free_port


def build_typed(path):
    """A TF2 model with int32/int64/bool inputs, and signatures taking or giving float16."""
    import tensorflow as tf

    class Typed(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.int32, name="i32"),
                                      tf.TensorSpec([None], tf.int64, name="i64"),
                                      tf.TensorSpec([None], tf.bool, name="flag")])
        def serve(self, i32, i64, flag):
            return {"sum": tf.cast(i32, tf.int64) + i64, "flag": tf.logical_not(flag)}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.int32, name="i32")])
        def half_out(self, i32):
            return {"half": tf.cast(i32, tf.float16)}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float16, name="h")])
        def half_in(self, h):
            return {"out": tf.cast(h, tf.float32)}

    module = Typed()
    tf.saved_model.save(module, str(path), signatures={
        "serving_default": module.serve, "half_out": module.half_out, "half_in": module.half_in})


@pytest.fixture(scope="module")
def rest(half_plus, tmp_path_factory):
    base = tmp_path_factory.mktemp("rest_errors")
    build_typed(base / "typed" / "1")
    config = base / "models.config"
    config.write_text(f"""model_config_list {{
  config {{ name: "default" base_path: "{half_plus / 'half_plus_two'}" model_platform: "tensorflow" }}
  config {{ name: "typed" base_path: "{base / 'typed'}" model_platform: "tensorflow" }}
}}
""")
    port = free_port()
    with ServerProcess(f"--model_config_file={config}", f"--rest_api_port={port}") as server:
        server.rest_port = port
        yield server


@pytest.mark.parametrize(("method", "path", "status", "error"), [
    ("GET", "/v1/models/foo:predict", 400, "Malformed request: GET /v1/models/foo:predict"),
    ("POST", "/v1/models/foo/metadata", 400, "Malformed request: POST /v1/models/foo/metadata"),
    ("GET", "/v1/models/default/versions/HELLO", 400, "Malformed request: GET /v1/models/default/versions/HELLO"),
    ("GET", "/v1/models/default/version/50", 400, "Malformed request: GET /v1/models/default/version/50"),
    ("GET", "/v1/models/default/versions/1/labels/a", 400,
     "Malformed request: GET /v1/models/default/versions/1/labels/a"),
    ("PUT", "/v1/models/default", 400, "Malformed request: PUT /v1/models/default"),
    ("DELETE", "/v1/models/default", 400, "Malformed request: DELETE /v1/models/default"),
    ("POST", "/v1/models/default:PREDICT", 400, "Malformed request: POST /v1/models/default:PREDICT"),
    ("GET", "/v1/models", 400, "Missing model name in request."),
    ("GET", "/v1/models/default/versions/99999999999999999999", 400,
     "Failed to convert version: 99999999999999999999 to numeric."),
    ("GET", "/v1/models/default?x=1", 404, "Could not find any versions of model default?x=1"),
    ("GET", "/v1/models/nope", 404, "Could not find any versions of model nope"),
    ("GET", "/v1/models/default/versions/7", 404, "Could not find version 7 of model default"),
    ("GET", "/v1/models/nope/metadata", 404, "Servable not found for request: Latest(nope)"),
    ("GET", "/v1/models/default/labels/nope/metadata", 400, "Unrecognized servable version label: nope"),
    ("GET", "/v1/models/my%20model", 404, "Could not find any versions of model my model"),
])
def test_routing_and_lookup_errors(rest, method, path, status, error):
    reply = request(rest.rest_port, method, path)
    assert (reply.status, reply.error) == (status, error)
    assert reply.headers["content-type"] == "application/json"


@pytest.mark.parametrize(("path", "status", "error"), [
    ("/v1/models/foo:predict", 404, "Servable not found for request: Latest(foo)"),
    ("/v1/models/default/versions/7:predict", 404, "Servable not found for request: Specific(default, 7)"),
    ("/v1/models/default/labels/nope:predict", 400, "Unrecognized servable version label: nope"),
    ("/v1/models/foo:regress", 404, "Servable not found for request: Latest(foo)"),
])
def test_inference_lookup_errors(rest, path, status, error):
    body = {"instances": [1.0]} if path.endswith("predict") else {"examples": [{"x": 1.0}]}
    reply = post(rest.rest_port, path, body)
    assert (reply.status, reply.error) == (status, error)


def test_other_paths_get_an_html_404(rest):
    reply = get(rest.rest_port, "/v2/models/default")
    assert reply.status == 404 and reply.headers["content-type"] == "text/html"


@pytest.mark.parametrize(("body", "error"), [
    ("", "JSON Parse error: The document is empty"),
    ("   ", "JSON Parse error: The document is empty"),
    ("{", "JSON Parse error: Missing a name for object member. at offset: 1"),
    ('{"instances": [1, 2', "JSON Parse error: Missing a comma or ']' after an array element. at offset: 19"),
    ("[1]", "JSON Value: [1] Is not object"),
    ('{"signature_name": 1, "instances": [1.0]}',
     'JSON Value: {\n    "signature_name": 1,\n    "instances": [1.0]\n} not formatted correctly. '
     "'signature_name' key must be a string value."),
    ('{"signature_name": "nope", "instances": [1.0]}', 'Serving signature name: "nope" not found in signature def'),
    ('{"instances": [1.0], "inputs": [1.0]}', 'JSON Value: {\n    "instances": [1.0],\n    "inputs": [1.0]\n} Not '
     "formatted correctly expecting only one of 'inputs' or 'instances' keys to exist "),
    ('{"x": [1.0]}', "Missing 'inputs' or 'instances' key"),
    ('{"instances": 1.0}', 'JSON Value: {\n    "instances": 1.0\n} Excepting \'instances\' to be an list/array'),
    ('{"instances": []}', 'JSON Value: {\n    "instances": []\n} No values in \'instances\' array'),
    ('{"instances": [[1.0], [2.0, 3.0]]}',
     "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: Expecting tensor size: 1 but got: 2"),
    ('{"instances": [[1.0], [[2.0]]]}', "Failed to process element: 1 of 'instances' list. Error: "
     "INVALID_ARGUMENT: Expecting shape [1] but got: [1,1]"),
    ('{"inputs": [[1.0], [2.0, 3.0]]}', "Encountered list at unexpected size: 2 at level: 1 expected size: 1"),
    ('{"inputs": [[1.0], 2.0]}', "JSON Value: 2.0 found at incorrect level: 2 in the JSON DOM. Expected at level: 2"),
    ('{"inputs": [1.0, [2.0]]}', "Encountered list at unexpected level: 1 expected < 1"),
    ('{"inputs": ["a"]}', 'JSON Value: "a" Type: String is not of expected type: float'),
    ('{"inputs": [true]}', "JSON Value: true Type: True is not of expected type: float"),
    ('{"inputs": [null]}', "JSON Value: null Type: Null is not of expected type: float"),
    ('{"inputs": [1e39]}', "Cannot convert JSON value: 1e+39 to float without loss of precision."),
    ('{"inputs": [16777217]}', "Cannot convert JSON value: 16777217 to float without loss of precision."),
    ('{"inputs": [1e400]}', "JSON Parse error: Number too big to be stored in double. (near: 1e400)"),
    ('{"inputs": [1' + "0" * 5000 + ']}', "JSON Parse error: Number too big to be stored in double. (near: 1"
     + "0" * 31 + ")"),
])
def test_bad_predict_bodies(rest, body, error):
    reply = post(rest.rest_port, "/v1/models/default:predict", body)
    assert (reply.status, reply.error) == (400, error)


@pytest.mark.parametrize(("body", "status", "error"), [
    ({"inputs": {"i32": [2.0], "i64": [1], "flag": [True]}}, 400,
     "JSON Value: 2.0 Type: Number is not of expected type: int32"),
    ({"inputs": {"i32": [2**31], "i64": [1], "flag": [True]}}, 400,
     "JSON Value: 2147483648 Type: Number is not of expected type: int32"),
    ({"inputs": {"i32": [1], "i64": [1], "flag": [1]}}, 400, "JSON Value: 1 Type: Number is not of expected type: bool"),
    ({"inputs": {"i32": [1], "i64": [1]}}, 400, "Missing named input: flag in 'inputs' object."),
    ({"inputs": [1]}, 400, "inputs is a plain value/list, but expecting an object as multiple input tensors required "
                           "as per tensorinfo_map"),
    ({"instances": [1]}, 400, "instances is a plain list, but expecting list of objects as multiple input tensors "
                              "required as per tensorinfo_map"),
    ({"instances": [{"i32": 1, "i64": 1, "flag": True, "extra": 1}]}, 400,
     "Failed to process element: 0 key: extra of 'instances' list. Error: INVALID_ARGUMENT: JSON object: does not "
     "have named input: extra"),
    ({"instances": [{"i32": 1, "i64": 1, "flag": True}, [1]]}, 400,
     "Expecting object but got list at item 1 of input list"),
    ({"signature_name": "half_in", "inputs": [1.0]}, 501, "Conversion of JSON Value: 1.0 to type: half"),
    ({"signature_name": "half_in", "instances": [1.0]}, 400,
     "Failed to process element: 0 of 'instances' list. Error: UNIMPLEMENTED: Conversion of JSON Value: 1.0 to "
     "type: half"),
    ({"signature_name": "half_out", "inputs": [1]}, 400, "Failed to write JSON value for tensor type: half"),
])
def test_signature_dtypes_decide(rest, body, status, error):
    reply = post(rest.rest_port, "/v1/models/typed:predict", body)
    assert (reply.status, reply.error) == (status, error)


def test_int64_and_bool_outputs(rest):
    reply = post(rest.rest_port, "/v1/models/typed:predict",
                 {"instances": [{"i32": 1, "i64": 2**62, "flag": True}, {"i32": -1, "i64": 0, "flag": False}]})
    assert reply.status == 200, reply.body
    assert reply.json() == {"predictions": [{"sum": 2**62 + 1, "flag": False}, {"sum": -1, "flag": True}]}
    assert b"4611686018427387905" in reply.body  # int64 as a JSON number, not a string


@pytest.mark.parametrize(("body", "error"), [
    ({"signature_name": "regress_x_to_y"}, "When method is classify, key 'examples' is expected and was not found"),
    ({"examples": {}}, "Expecting 'examples' value to be an list/array"),
    ({"examples": []}, "'examples' value is an empty array"),
    ({"examples": [1]}, "Example must be JSON object but got JSON Number"),
    ({"examples": [{"x": [[1.0]]}]}, "Feature: x has element with unexpected JSON type: Array"),
    ({"examples": [{"x": [1.0, "a"]}]}, "Unexpected element type in feature: x expecting type: float"),
    ({"examples": [{"x": 2**64 - 1}]}, "Feature: x has uint64 element. Only int64 is supported."),
    ({"examples": [{"x": {"b64": "!"}}]}, "Unable to base64 decode"),
])
def test_bad_regress_bodies(rest, body, error):
    reply = post(rest.rest_port, "/v1/models/default:regress", {"signature_name": "regress_x_to_y", **body})
    assert reply.status == 400
    assert reply.error.endswith(error)


@pytest.mark.parametrize("huge", [-(2**70), 2**70, 10**400])
def test_integers_beyond_64_bits_are_doubles_as_in_rapidjson(rest, huge):
    reply = post(rest.rest_port, "/v1/models/default:regress",
                 f'{{"signature_name": "regress_x_to_y", "examples": [{{"x": {huge}}}]}}')
    if abs(huge) < 10**39:  # a float feature: the model reads it
        assert reply.status == 200, reply.body
    else:  # beyond a double: rapidjson's parse error
        assert reply.status == 400 and reply.error.startswith("JSON Parse error: Number too big to be stored in double.")


def test_an_int_feature_reaches_the_model_as_int64(rest):
    """TF Serving's pitfall: ``{"x": 2}`` is an int64 feature, which a float-parsing model refuses."""
    reply = post(rest.rest_port, "/v1/models/default:regress", {"signature_name": "regress_x_to_y", "examples": [{"x": 2}]})
    assert reply.status == 400 and "x" in reply.error


def test_deep_nesting_and_big_bodies_are_refused_cleanly(rest):
    deep = '{"inputs": ' + "[" * 100_000 + "]" * 100_000 + "}"
    reply = post(rest.rest_port, "/v1/models/default:predict", deep)
    assert reply.status == 400 and reply.error.startswith("JSON Parse error")
    medium = '{"inputs": ' + "[" * 900 + "1.0" + "]" * 900 + "}"  # parses, but is no tensor of rank 2
    assert post(rest.rest_port, "/v1/models/default:predict", medium).status in (400, 200)
    bomb = '{"inputs": [' + ", ".join(["1.0"] * 200_000) + "]}"
    reply = post(rest.rest_port, "/v1/models/default:predict", bomb, compress=True)
    assert reply.status == 200 and len(reply.json()["outputs"]) == 200_000


_json_leaves = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True),
                         st.text(max_size=5), st.fixed_dictionaries({"b64": st.text(max_size=8)}))
_json = st.recursive(_json_leaves, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.sampled_from(["inputs", "instances", "x", "i32", "i64", "flag", "signature_name", "examples", "b64"]),
    inner, max_size=3), max_leaves=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=_json, model=st.sampled_from(["default", "typed"]), verb=st.sampled_from(["predict", "classify",
                                                                                      "regress"]))
def test_hostile_bodies_never_get_a_500(rest, doc, model, verb):
    body = json.dumps(doc, allow_nan=True)
    reply = post(rest.rest_port, f"/v1/models/{model}:{verb}", body)
    assert reply.status in (200, 400, 404, 501), (body, reply.body)
    assert "error" in reply.json() or reply.status == 200


def test_rest_api_timeout_answers_504(half_plus):
    """``--rest_api_timeout_in_ms``: a run longer than the timeout is DEADLINE_EXCEEDED, HTTP 504."""
    port = free_port()
    with ServerProcess("--model_name=default", f"--model_base_path={half_plus / 'half_plus_two'}",
                       f"--rest_api_port={port}", "--rest_api_timeout_in_ms=1"):
        body = '{"inputs": [' + ", ".join(["[1.5]"] * 300_000) + "]}"  # no machine reads and runs this in 1 ms
        reply = post(port, "/v1/models/default:predict", body)
        assert (reply.status, reply.error) == (504, "Timed out waiting for notification")
