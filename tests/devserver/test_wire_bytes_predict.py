"""Predict on wire bytes, on a real server: large plain requests are read in place and answers
written once from the output arrays; every request gets the answer (or the error) the message
path gives, whichever way it was read."""

import grpc
import numpy as np
import pytest

from tests.server_process import ServerProcess

LARGE_ROWS = 20_000  # 80 kB of float32: read in place (tfsk._base.wire.IN_PLACE_FROM is 64 KiB)


@pytest.fixture(scope="module")
def server(half_plus):
    with ServerProcess("--model_name=default", f"--model_base_path={half_plus / 'half_plus_two'}") as process:
        yield process


def _request(tensor):
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "default"
    request.inputs["x"].CopyFrom(tensor)
    return request


def _predict(server, request):
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    return prediction_service_pb2_grpc.PredictionServiceStub(server.channel).Predict(request, timeout=60)


def _values(response):
    import tensorflow as tf

    return tf.make_ndarray(response.outputs["y"])


def _typed(x, **extra):
    from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

    shape = tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=s) for s in x.shape])
    return tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=shape, float_val=x.reshape(-1), **extra)


@pytest.mark.parametrize("rows", [3, LARGE_ROWS])
@pytest.mark.parametrize("form", ["tensor_content", "float_val"])
def test_plain_requests_of_every_size_and_form(server, rows, form):
    import tensorflow as tf

    x = np.random.default_rng(rows).standard_normal((rows, 1)).astype(np.float32)
    from tfsk._base.wire import read_predict_request

    tensor = tf.make_tensor_proto(x) if form == "tensor_content" else _typed(x)
    in_place = read_predict_request(_request(tensor).SerializeToString())
    assert in_place is not None and np.array_equal(in_place.tensors["x"][1], x)  # the path the server takes
    response = _predict(server, _request(tensor))
    np.testing.assert_array_equal(_values(response), x * np.float32(0.5) + np.float32(2))
    assert response.outputs["y"].float_val  # TF Serving's default answer form
    assert (response.model_spec.name, response.model_spec.version.value,
            response.model_spec.signature_name) == ("default", 123, "serving_default")


def test_large_requests_in_other_forms_follow_tensorflow_rules(server):
    """Not the plain form, so read by the protobuf runtime: a short typed field repeats its last
    value, as TensorFlow's FromProto does; a version_number changes nothing."""
    x = np.ones((LARGE_ROWS, 1), np.float32)
    short = _typed(x[:1])
    short.tensor_shape.dim[0].size = LARGE_ROWS
    versioned = _typed(x * 4, version_number=7)
    from tfsk._base.wire import read_predict_request

    assert read_predict_request(_request(versioned).SerializeToString()) is None
    assert np.all(_values(_predict(server, _request(short))) == 2.5)
    assert np.all(_values(_predict(server, _request(versioned))) == 4.0)


def test_large_and_small_requests_get_the_same_errors(server):
    import tensorflow as tf

    def error_of(rows, mutate):
        request = _request(tf.make_tensor_proto(np.zeros((rows, 1), np.float64)))
        mutate(request)
        with pytest.raises(grpc.RpcError) as caught:
            _predict(server, request)
        return caught.value.code(), caught.value.details()

    def rename(request):
        request.inputs["z"].CopyFrom(request.inputs["x"])
        del request.inputs["x"]

    for mutate in (lambda request: None, rename):  # a float64 feed for a float input; an unknown alias
        small, large = error_of(3, mutate), error_of(LARGE_ROWS, mutate)
        assert small == large and small[0] == grpc.StatusCode.INVALID_ARGUMENT, (small, large)


def test_unparsable_bytes_are_refused_and_the_server_keeps_serving(server):
    raw = server.channel.unary_unary("/tensorflow.serving.PredictionService/Predict")
    rng = np.random.default_rng(9)
    for size in (40, 1 << 17):
        with pytest.raises(grpc.RpcError) as caught:
            raw(b"\x0a\xff\xff\xff\x0f" + rng.bytes(size), timeout=30)  # a field claiming 4 GB
        # gRPC's own answer for a request it cannot parse (TF Serving's C++ gRPC: INTERNAL as well)
        assert caught.value.code() == grpc.StatusCode.INTERNAL
        assert caught.value.details() == "Exception deserializing request!"
    assert server.process.poll() is None
    x = np.full((2, 1), 2, np.float32)
    np.testing.assert_array_equal(_values(_predict(server, _request(_typed(x)))), [[3.0], [3.0]])
