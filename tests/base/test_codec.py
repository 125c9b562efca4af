"""numpy <-> TensorProto: every dtype and edge case, checked against TensorFlow's own codec."""

import tracemalloc

import ml_dtypes
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from tensorflow.core.framework import tensor_pb2

from tfsk._base.codec import (
    TensorDecodeError,
    decode_plain,
    decode_tensor,
    encode_as_fields,
    encode_tensor,
    measure_tensor,
)
from tfsk._base.messages import TensorProto

NUMERIC = [np.float16, np.float32, np.float64, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16,
           np.uint32, np.uint64, np.bool_, np.complex64, np.complex128]


def round_trip(array, encode, proto_class=TensorProto):
    proto = encode(array, proto_class())
    wire = proto.SerializeToString()
    ours = decode_tensor(proto_class.FromString(wire))
    theirs = tf.make_ndarray(tensor_pb2.TensorProto.FromString(wire))  # TensorFlow reads our bytes the same way
    return ours, theirs


@pytest.mark.parametrize("dtype", NUMERIC + [ml_dtypes.bfloat16])
@pytest.mark.parametrize("encode", [encode_tensor, encode_as_fields])
@pytest.mark.parametrize("shape", [(), (0,), (3,), (2, 3), (0, 4), (2, 1, 3)])
def test_every_dtype_and_shape_round_trips(dtype, encode, shape):
    array = (np.arange(int(np.prod(shape))) % 3).reshape(shape).astype(dtype)
    ours, theirs = round_trip(array, encode)
    assert ours.dtype == np.dtype(dtype) and ours.shape == shape
    np.testing.assert_array_equal(ours, array)
    np.testing.assert_array_equal(theirs, array)


def test_numerics_go_to_tensor_content_and_strings_to_string_val():
    proto = encode_tensor(np.ones((2, 2), np.float32), TensorProto())
    assert len(proto.tensor_content) == 16 and not proto.float_val
    proto = encode_tensor(np.array([b"a", "é"], dtype=object), TensorProto())
    assert list(proto.string_val) == [b"a", "é".encode()] and proto.dtype == 7


def test_strings_bytes_and_unicode():
    for value in (np.array([b"x", b"", b"\x00\xff"], dtype=object), np.array(["a", "bé"]), np.array(b"scalar", dtype=object)):
        ours, theirs = round_trip(value, encode_tensor)
        expected = np.vectorize(lambda s: s.encode() if isinstance(s, str) else s, otypes=[object])(value)
        assert ours.dtype == object and ours.shape == value.shape
        assert ours.tolist() == expected.tolist() == theirs.tolist()


def test_non_contiguous_and_big_endian_arrays():
    base = np.arange(24, dtype=np.float64).reshape(4, 6)
    for array in (base[:, ::2], base.T, base.astype(">f8"), np.arange(5, dtype=">i4")):
        ours, theirs = round_trip(array, encode_tensor)
        np.testing.assert_array_equal(ours, array)
        np.testing.assert_array_equal(theirs, array)
        assert ours.dtype.isnative


def test_tensorflow_protos_decode_like_make_ndarray():
    for value in (np.float32(2.5), np.array([[1, 2]], np.int64), np.array([True]), np.array([1 + 2j], np.complex128),
                  np.array(["a", "b"], dtype=object), np.zeros((0, 3), np.float32)):
        proto = tf.make_tensor_proto(value)
        np.testing.assert_array_equal(decode_tensor(proto), tf.make_ndarray(proto))


def test_short_typed_fields_repeat_their_last_value_like_tensorflow():
    proto = tensor_pb2.TensorProto(dtype=tf.float32.as_datatype_enum, float_val=[1.0, 2.0])
    proto.tensor_shape.dim.add().size = 5
    np.testing.assert_array_equal(decode_tensor(proto), [1, 2, 2, 2, 2])
    np.testing.assert_array_equal(decode_tensor(proto), tf.make_ndarray(proto))
    empty = tensor_pb2.TensorProto(dtype=tf.int32.as_datatype_enum)
    empty.tensor_shape.dim.add().size = 3
    np.testing.assert_array_equal(decode_tensor(empty), [0, 0, 0])
    surplus = tensor_pb2.TensorProto(dtype=tf.float32.as_datatype_enum, float_val=[7.0, 8.0, 9.0])  # no shape: scalar
    assert decode_tensor(surplus).shape == () and decode_tensor(surplus) == 7.0
    strings = tensor_pb2.TensorProto(dtype=tf.string.as_datatype_enum)
    strings.tensor_shape.dim.add().size = 2
    assert decode_tensor(strings).tolist() == [b"", b""]


def test_typed_fields_as_tf_serving_sends_them():
    """TF Serving answers with AsProtoField: typed values, and an empty but present shape for scalars."""
    for value in (np.float32(3.0), np.array([[3.0, 3.5]], np.float32), np.array([1, 2], np.int8), np.array([b"s"], object)):
        ours = encode_as_fields(value, tensor_pb2.TensorProto())
        reference = tensor_pb2.TensorProto()
        reference.CopyFrom(tf.make_tensor_proto(value))
        assert ours.HasField("tensor_shape") and not ours.tensor_content
        np.testing.assert_array_equal(decode_tensor(ours), tf.make_ndarray(reference))


@pytest.mark.parametrize("mutate, message", [
    (lambda p: setattr(p, "dtype", 0), "no dtype"),
    (lambda p: setattr(p, "tensor_content", b"\x00" * 5), "tensor_content has 5 bytes, 8 expected"),
    (lambda p: p.tensor_shape.dim.add().__setattr__("size", -1), r"Shape \[2,-1\] is not fully defined"),
    (lambda p: setattr(p, "dtype", 20), "cannot be decoded"),
])
def test_tensors_tensorflow_refuses_are_refused(mutate, message):
    proto = encode_tensor(np.ones(2, np.float32), TensorProto())
    mutate(proto)
    with pytest.raises(TensorDecodeError, match=message):
        decode_tensor(proto)


def test_too_many_dimensions():
    proto = TensorProto(dtype=1)
    for _ in range(255):
        proto.tensor_shape.dim.add().size = 1
    with pytest.raises(TensorDecodeError, match=r"^Shape \[1(,1){254}\] has too many dimensions$"):
        decode_tensor(proto)


def shaped(dims, dtype=1, **fields):
    proto = TensorProto(dtype=dtype, **fields)
    for size in dims:
        proto.tensor_shape.dim.add().size = size
    return proto


@pytest.mark.parametrize("dims, message", [
    ([2**62, 2, 2], r"Shape \[4611686018427387904,2,2\] is too large \(more than 2\*\*63 - 1 entries\)"),
    ([1] * 65, r"has 65 dimensions; a numpy array holds at most 64"),
    ([2**63 - 1, 0], r"Shape \[9223372036854775807,0\] cannot be held in a numpy array"),
    ([2147483648, 2147483648], r"cannot be held in a numpy array: .* 4-byte element size exceed 2\*\*63 - 1 bytes"),
])
def test_shapes_that_cannot_exist_are_refused_before_any_allocation(dims, message):
    """TF's IsValidShape refusals in TF's words; shapes TF takes but numpy cannot hold, in words of their own."""
    tracemalloc.start()
    try:
        with pytest.raises(TensorDecodeError, match=message):
            measure_tensor(shaped(dims))
        with pytest.raises(TensorDecodeError, match=message):
            decode_tensor(shaped(dims))
        assert tracemalloc.get_traced_memory()[1] < 1_000_000  # numpy reports its buffers to tracemalloc
    finally:
        tracemalloc.stop()


def test_measure_says_what_decoding_would_make_without_making_it():
    tracemalloc.start()
    try:
        zeros = measure_tensor(shaped([100_000_000, 7]))  # 40 bytes on the wire
        repeated = measure_tensor(shaped([1_000_000, 10], float_val=[1.5]))
        huge = measure_tensor(shaped([1_000_000, 1_000_000]))
        assert tracemalloc.get_traced_memory()[1] < 1_000_000
    finally:
        tracemalloc.stop()
    assert (zeros.nbytes, zeros.sent, zeros.made) == (2_800_000_000, 0, 2_800_000_000)
    assert (repeated.nbytes, repeated.sent, repeated.made) == (40_000_000, 4, 39_999_996)
    assert huge.nbytes == 4 * 10**12 and huge.describe() == "shape [1000000,1000000] of float"
    content = measure_tensor(encode_tensor(np.ones((3, 2), np.float64), TensorProto()))
    assert (content.nbytes, content.sent, content.made) == (48, 48, 0)
    strings = shaped([1000], dtype=7, string_val=[b"ab"])
    assert (measure_tensor(strings).made, measure_tensor(strings).sent) == (1000 * 8 + 33, strings.ByteSize())


def test_short_fields_fill_in_one_allocation():
    proto = shaped([2_000_000], float_val=[1.0, 2.0])
    tracemalloc.start()
    try:
        decoded = decode_tensor(proto)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert decoded[:3].tolist() == [1.0, 2.0, 2.0] and decoded.nbytes == 8_000_000
    assert peak < 8_000_000 * 1.2


INTEGERS = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64, np.bool_]


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(INTEGERS).flatmap(lambda d: hnp.arrays(np.dtype(d), hnp.array_shapes(min_dims=1, max_dims=2, max_side=40))))
def test_packed_varints_are_the_bytes_protobuf_writes(array):
    """encode_as_fields builds packed records with numpy; protobuf's own writer must agree byte for byte."""
    ours = encode_as_fields(array, TensorProto())
    reference = TensorProto()
    reference.CopyFrom(ours)
    field = {np.bool_: "bool_val", np.int64: "int64_val", np.uint32: "uint32_val", np.uint64: "uint64_val"}.get(array.dtype.type, "int_val")
    reference.ClearField(field)
    getattr(reference, field).extend(array.ravel().tolist())
    assert ours.SerializeToString() == reference.SerializeToString()
    np.testing.assert_array_equal(decode_tensor(TensorProto.FromString(ours.SerializeToString())), array)


def test_typed_answers_cost_a_copy_not_an_object_per_value():
    array = np.arange(2_000_000, dtype=np.float32)
    tracemalloc.start()
    try:
        proto = encode_as_fields(array, TensorProto())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(proto.float_val) == array.size and proto.float_val[-1] == 1_999_999.0
    assert peak < array.nbytes * 1.5  # the packed record; the old value-by-value path made 4+ GB per 100 M values


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(dtype=st.sampled_from([np.dtype(d) for d in NUMERIC]), shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5)),
       st.sampled_from([encode_tensor, encode_as_fields]))
def test_round_trip_property(array, encode):
    decoded = decode_tensor(TensorProto.FromString(encode(array, TensorProto()).SerializeToString()))
    assert decoded.dtype == array.dtype and decoded.shape == array.shape
    np.testing.assert_array_equal(decoded, array)  # NaN == NaN here, bit patterns survive


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=20), max_size=6))
def test_string_round_trip_property(values):
    array = np.empty(len(values), dtype=object)
    array[:] = values
    assert decode_tensor(encode_tensor(array, TensorProto())).tolist() == values


@settings(max_examples=300, deadline=None)
@given(hnp.arrays(dtype=st.sampled_from([np.dtype(d) for d in NUMERIC]), shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)),
       st.sampled_from([encode_tensor, encode_as_fields]), st.integers(-2, 2), st.integers(-1, 1))
def test_plain_decoding_agrees_with_the_checked_one(array, encode, trim, dim_change):
    """decode_plain gives decode_tensor's array and measure_tensor's sent bytes, or steps aside
    (None) for every tensor it does not prove plain: short or long fields and contents, odd shapes."""
    proto = encode(array, TensorProto())
    if proto.tensor_content and trim:
        proto.tensor_content = proto.tensor_content[:trim] if trim < 0 else proto.tensor_content + b"\0" * trim
    if array.ndim and dim_change:
        proto.tensor_shape.dim[0].size += dim_change
    plain = decode_plain(proto)
    try:
        checked = decode_tensor(proto)
    except TensorDecodeError:
        assert plain is None
        return
    if plain is not None:
        assert plain[0].dtype == checked.dtype and plain[0].shape == checked.shape
        np.testing.assert_array_equal(plain[0], checked)
        assert plain[1] == measure_tensor(proto).sent
    elif array.size and not trim and not dim_change and array.dtype in (np.float32, np.float64, np.int32, np.int64):
        raise AssertionError("a plain tensor was not decoded plainly")


@given(st.lists(st.binary(max_size=8), max_size=6), st.integers(-1, 1))
def test_plain_string_decoding_agrees_with_the_checked_one(values, dim_change):
    proto = encode_tensor(np.array(values, dtype=object), TensorProto())
    proto.tensor_shape.dim[0].size += dim_change
    plain = decode_plain(proto)
    if plain is None:
        assert not values or dim_change
        return
    checked = decode_tensor(proto)
    assert plain[0].dtype == checked.dtype == object and plain[0].shape == checked.shape
    assert plain[0].tolist() == checked.tolist() and plain[1] == measure_tensor(proto).sent
