"""Predict requests and responses built and read straight from wire bytes, checked against
TensorFlow Serving's own generated messages."""

import ml_dtypes
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from tensorflow_serving.apis import predict_pb2

from tfsk._base.codec import encode_as_fields, encode_tensor
from tfsk._base.messages import MESSAGES
from tfsk.client._wire import decode_predict_response, encode_predict_request

DTYPES = [np.float16, np.float32, np.float64, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
          np.uint64, np.bool_, np.complex64, np.complex128]


def _spec():
    spec = MESSAGES["ModelSpec"](name="m", signature_name="sig")
    spec.version.value = 7
    return spec


def test_requests_parse_as_tf_serving_requests():
    inputs = {
        "floats": np.arange(12, dtype=np.float32).reshape(3, 4),
        "strided": np.arange(20.0)[::3],
        "big_endian": np.arange(4, dtype=">i8"),
        "strings": np.array([b"a", b"", "é"], dtype=object),
        "scalar": np.float64(2.5),
        "empty": np.zeros((0, 5), np.int32),
    }
    request = predict_pb2.PredictRequest.FromString(encode_predict_request(_spec(), inputs, ["y", "z"]))
    assert (request.model_spec.name, request.model_spec.version.value, request.model_spec.signature_name) == ("m", 7, "sig")
    assert list(request.output_filter) == ["y", "z"]
    for name, value in inputs.items():
        expected = value if name != "strings" else np.array([b"a", b"", "é".encode()], dtype=object)
        decoded = tf.make_ndarray(request.inputs[name])
        assert decoded.shape == np.shape(value)
        np.testing.assert_array_equal(decoded, expected)
    assert request.inputs["floats"].tensor_content  # numerics travel as tensor_content


def test_bfloat16_round_trips():
    array = np.array([[1.5, -2.0]], dtype=ml_dtypes.bfloat16)
    request = predict_pb2.PredictRequest.FromString(encode_predict_request(_spec(), {"x": array}))
    response = predict_pb2.PredictResponse()
    response.outputs["x"].CopyFrom(request.inputs["x"])
    outputs, _ = decode_predict_response(response.SerializeToString())
    assert outputs["x"].dtype == array.dtype
    np.testing.assert_array_equal(outputs["x"], array)


def test_big_endian_arrays_are_sent_little_endian():
    request = predict_pb2.PredictRequest.FromString(encode_predict_request(_spec(), {"x": np.array([1, 2], ">i4")}))
    assert request.inputs["x"].tensor_content == b"\x01\x00\x00\x00\x02\x00\x00\x00"


def test_responses_decode_every_encoding_tf_serving_uses():
    response = predict_pb2.PredictResponse()
    response.model_spec.name = "m"
    response.model_spec.version.value = 3
    arrays = {"content": np.arange(6, dtype=np.float32).reshape(2, 3), "strings": np.array([b"x", b"yz"], dtype=object),
              "scalar": np.float32(1.5), "empty": np.zeros((0, 2), np.float64)}
    for name, value in arrays.items():
        response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
    encode_as_fields(np.array([[1, 2], [3, 4]], np.int64), response.outputs["typed"])
    short = response.outputs["short"]
    short.dtype = tf.float32.as_datatype_enum
    short.tensor_shape.dim.add().size = 4
    short.float_val.extend([5.0, 6.0])  # TF repeats the last value: [5, 6, 6, 6]
    outputs, spec = decode_predict_response(response.SerializeToString())
    assert (spec.name, spec.version.value) == ("m", 3)
    for name, value in arrays.items():
        assert outputs[name].shape == np.shape(value)
        np.testing.assert_array_equal(outputs[name], value)
    np.testing.assert_array_equal(outputs["typed"], [[1, 2], [3, 4]])
    np.testing.assert_array_equal(outputs["short"], [5, 6, 6, 6])


def test_tensor_content_outputs_are_zero_copy_read_only_views():
    response = predict_pb2.PredictResponse()
    response.outputs["x"].CopyFrom(tf.make_tensor_proto(np.ones((300, 300), np.float32)))
    encode_as_fields(np.full((300, 300), 2.0), response.outputs["typed"])  # TF Serving's default form
    data = response.SerializeToString()
    outputs, _ = decode_predict_response(data)
    for name, value in (("x", 1.0), ("typed", 2.0)):
        assert not outputs[name].flags.writeable and not outputs[name].flags.owndata
        assert np.shares_memory(outputs[name], np.frombuffer(data, np.uint8))  # read in place
        copy = outputs[name].copy()
        copy += 1
        assert copy.sum() == (value + 1) * 300 * 300


def test_a_tensor_content_of_the_wrong_size_is_refused_as_a_client_error():
    from tfsk.client import ClientError, TensorDecodeError
    from tfsk.client._requests import prediction_from

    response = predict_pb2.PredictResponse()
    response.outputs["x"].CopyFrom(tf.make_tensor_proto(np.ones(4, np.float32)))
    response.outputs["x"].tensor_content = b"\x00" * 15
    with pytest.raises(TensorDecodeError, match="answer of m cannot be read: .*15 bytes, 16 expected") as caught:
        prediction_from(response.SerializeToString(), "m", None)
    assert isinstance(caught.value, ClientError) and isinstance(caught.value, ValueError)
    with pytest.raises(ClientError, match="cannot be read"):
        prediction_from(b"\x0a\x05\x0a\x01", "m", None)  # a truncated answer


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(DTYPES).flatmap(lambda d: hnp.arrays(np.dtype(d), hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))))
def test_request_and_response_round_trip_property(array):
    request = predict_pb2.PredictRequest.FromString(encode_predict_request(_spec(), {"a": array}))
    response = predict_pb2.PredictResponse()
    response.outputs["a"].CopyFrom(request.inputs["a"])
    outputs, _ = decode_predict_response(response.SerializeToString())
    assert outputs["a"].dtype == array.dtype and outputs["a"].shape == array.shape
    np.testing.assert_array_equal(outputs["a"], array)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from([np.float32, np.float64]).flatmap(
    lambda d: hnp.arrays(np.dtype(d), hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5))),
    st.integers(-2, 2))
def test_typed_float_answers_decode_as_the_message_codec_does(array, surplus):
    """Packed float_val/double_val read in place; short or long fields keep TF's fill rules."""
    from tfsk._base.codec import decode_tensor

    response = predict_pb2.PredictResponse()
    encode_as_fields(array, response.outputs["a"])
    field = getattr(response.outputs["a"], "float_val" if array.dtype == np.float32 else "double_val")
    if surplus > 0:
        field.extend([7.0] * surplus)
    elif surplus < 0 and len(field) > 1:
        del field[surplus:]
    outputs, _ = decode_predict_response(response.SerializeToString())
    expected = decode_tensor(response.outputs["a"])
    assert outputs["a"].dtype == expected.dtype and outputs["a"].shape == expected.shape
    np.testing.assert_array_equal(outputs["a"], expected)
    big = predict_pb2.PredictResponse()  # large enough to be read in place rather than parsed
    encode_tensor(np.zeros(1 << 16, np.uint8), big.outputs["pad"])
    big.outputs["a"].CopyFrom(response.outputs["a"])
    outputs, _ = decode_predict_response(big.SerializeToString())
    np.testing.assert_array_equal(outputs["a"], expected)
    assert outputs["a"].dtype == expected.dtype and outputs["a"].shape == expected.shape
