"""Wire bytes read in place give what the protobuf runtime and TensorFlow's rules give, or None."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tfsk._base.codec import decode_tensor, encode_as_fields, encode_tensor
from tfsk._base.messages import MESSAGES
from tfsk._base.packed import varint
from tfsk._base.wire import read_predict_request, read_tensor

TensorProto = MESSAGES["TensorProto"]
PredictRequest = MESSAGES["PredictRequest"]
DTYPES = ["float32", "float64", "int32", "int64", "uint8", "int16", "bool", "complex64", "float16", "object"]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(DTYPES), st.lists(st.integers(0, 4), max_size=3), st.booleans(),
       st.sampled_from(["none", "short", "extra_value", "versioned", "twice"]))
def test_read_tensor_is_the_runtime_and_tensorflow_or_none(kind, shape, as_content, mutation):
    rng = np.random.default_rng(len(shape))
    if kind == "object":
        value = np.array([b"s%d" % i for i in range(int(np.prod(shape)))], dtype=object).reshape(shape)
    else:
        value = (rng.standard_normal(shape) * 50).astype(kind)
    proto = (encode_tensor if as_content else encode_as_fields)(value, TensorProto())
    if mutation == "short" and proto.float_val:
        del proto.float_val[-1]
    elif mutation == "extra_value" and proto.double_val:
        proto.double_val.append(1.0)
    elif mutation == "versioned":
        proto.version_number = 2
    data = proto.SerializeToString()
    if mutation == "twice":
        data += varint(1 << 3) + varint(proto.dtype)  # the dtype field again: the runtime keeps the last
    found = read_tensor(memoryview(data))
    numeric = kind not in ("object", "float16") and value.size  # half floats: the message codec reads those
    if mutation == "none" and numeric and (as_content or kind in ("float32", "float64")):
        assert found is not None  # the plain form: tensor_content, or packed float/double holding every value
    if mutation in ("versioned", "twice") or (mutation == "short" and proto.float_val) or (
            mutation == "extra_value" and proto.double_val):
        assert found is None  # another field, a field twice, values missing or to spare
    if found is not None:
        dtype, array = found
        expected = decode_tensor(TensorProto.FromString(data))
        assert dtype == proto.dtype and array.dtype == expected.dtype and np.array_equal(array, expected)


def _request(**inputs):
    request = PredictRequest()
    request.model_spec.name = "m"
    request.model_spec.version.value = 4
    for alias, value in inputs.items():
        encode_tensor(value, request.inputs[alias])
    return request


def test_a_plain_request_is_read_with_views_of_its_bytes():
    a, b = np.arange(6, dtype=np.float32).reshape(2, 3), np.arange(2, dtype=np.int64)
    request = _request(a=a, b=b)
    request.output_filter.extend(["y", "z"])
    data = request.SerializeToString()
    read = read_predict_request(data)
    assert read.model_spec == request.model_spec and read.output_filter == ["y", "z"]
    assert {alias: (d, v.tolist()) for alias, (d, v) in read.tensors.items()} == {"a": (1, a.tolist()), "b": (9, b.tolist())}
    assert np.shares_memory(read.tensors["a"][1], np.frombuffer(data, np.uint8))  # nothing copied


def test_anything_but_the_plain_form_is_left_to_the_runtime():
    plain = _request(a=np.ones(3, np.float32)).SerializeToString()
    assert read_predict_request(plain) is not None
    no_spec = PredictRequest()
    encode_tensor(np.ones(3, np.float32), no_spec.inputs["a"])
    entry = plain[plain.index(b"\x12", 2):]  # the inputs map entry, after the ModelSpec
    cases = {
        "no model spec": no_spec.SerializeToString(),
        "model spec twice": plain + plain[: plain.index(b"\x12", 2)],
        "alias twice": plain + entry,
        "strings": _request(a=np.array([b"x"], dtype=object)).SerializeToString(),
        "unknown field": plain + varint(9 << 3) + varint(1),
        "truncated": plain[:-1],
        "garbage": b"\x0a\xff\xff\xff\xff\x0f" + bytes(10),
        "alias not UTF-8": _request(a=np.ones(1, np.float32)).SerializeToString().replace(b"\x0a\x01a", b"\x0a\x01\xff"),
    }
    for name, data in cases.items():
        assert read_predict_request(data) is None, name
