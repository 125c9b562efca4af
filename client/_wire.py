"""Predict requests and responses straight to and from wire bytes, without copying tensor data
more than once.

Going through message objects copies a large tensor four or five times (array -> bytes ->
message -> serialized -> parsed -> bytes). Here a request is assembled from small serialized
headers and the arrays' own buffers, joined once; a response's ``tensor_content`` becomes a numpy
array that views the response bytes directly (read-only; ``.copy()`` it to modify). Tensors in
typed ``float_val``/``double_val`` fields (what TF Serving sends by default) holding one value
per element are read in place the same way; other typed fields go through the message codec.

Protobuf wire format: a field is ``varint(number << 3 | wire_type)`` then its value; length-
delimited values (wire type 2: strings, bytes, sub-messages, map entries) are
``varint(length) + bytes``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
import functools
import math
from typing import Any

import numpy as np

from tfsk._base.codec import (
    TensorDecodeError,
    _as_array,
    decode_plain,
    decode_tensor,
    dtype_number,
    encode_tensor,
    read_varint,
)
from tfsk._base.dtypes import DataType, numpy_dtype
from tfsk._base.messages import MESSAGES
from tfsk._base.packed import tensor_header
from tfsk._base.packed import varint as _varint

__all__ = ["decode_predict_response", "encode_predict_request"]

_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5
TensorProto = MESSAGES["TensorProto"]
TensorShapeProto = MESSAGES["TensorShapeProto"]
PredictResponse = MESSAGES["PredictResponse"]


def _decode_message(tensor: Any) -> np.ndarray:
    plain = decode_plain(tensor, measure=False)
    return decode_tensor(tensor) if plain is None else plain[0]


def _key(number: int, wire_type: int) -> bytes:
    return _varint(number << 3 | wire_type)


_VIEW_FROM = 1 << 16


def _length_delimited_bytes(number: int, payload: bytes) -> bytes:
    return _key(number, _LENGTH) + _varint(len(payload)) + payload


@functools.lru_cache(maxsize=1024)
def _numeric_head(name: str, dtype: np.dtype, shape: tuple[int, ...]) -> tuple[bytes, np.dtype] | None:
    """An ``inputs`` map entry up to its tensor's content (the content's bytes follow it), and the
    little-endian dtype the content is written in; None for strings and dtypes TF does not have."""
    try:
        number = dtype_number(dtype)
    except TypeError:
        return None
    if number == DataType.DT_STRING:
        return None
    wire_dtype = numpy_dtype(number).newbyteorder("<")
    nbytes = math.prod(shape) * wire_dtype.itemsize
    tensor_head = tensor_header(number, shape) + _key(4, _LENGTH) + _varint(nbytes)
    key = _length_delimited_bytes(1, name.encode("utf-8")) + _key(2, _LENGTH) + _varint(len(tensor_head) + nbytes)
    return _key(2, _LENGTH) + _varint(len(key) + len(tensor_head) + nbytes) + key + tensor_head, wire_dtype


def _input_entry(name: str, value: Any) -> list[Any]:
    """One ``inputs`` map entry as pieces: a small cached head, then the array's buffer itself."""
    array = value if type(value) is np.ndarray else _as_array(value)
    found = _numeric_head(name, array.dtype, array.shape)
    if found is None:  # strings (and anything unusual): the message codec
        tensor = encode_tensor(array, TensorProto()).SerializeToString()
        key = _length_delimited_bytes(1, name.encode("utf-8")) + _length_delimited_bytes(2, tensor)
        return [_length_delimited_bytes(2, key)]
    head, wire_dtype = found
    if array.dtype != wire_dtype or not array.flags.c_contiguous:
        array = np.ascontiguousarray(array, dtype=wire_dtype)
    if array.nbytes < _VIEW_FROM:  # a small copy costs less than making a view
        return [head, array.tobytes()]
    return [head, array.reshape(-1).view(np.uint8).data]  # a bytes view, any dtype


def encode_predict_request(model_spec: Any, inputs: Mapping[str, Any], output_filter: Sequence[str] = ()) -> bytes:
    """The serialized PredictRequest (``model_spec`` a ModelSpec message)."""
    pieces: list[Any] = [_length_delimited_bytes(1, model_spec.SerializeToString())]
    for name, value in inputs.items():
        pieces += _input_entry(name, value)
    for alias in output_filter:
        pieces.append(_length_delimited_bytes(3, alias.encode("utf-8")))
    return b"".join(pieces)


def _fields(data: memoryview) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value): an int, or a memoryview for length-delimited values."""
    offset = 0
    while offset < len(data):
        key, offset = read_varint(data, offset)
        number, wire_type = key >> 3, key & 7
        if wire_type == _VARINT:
            value, offset = read_varint(data, offset)
        elif wire_type == _LENGTH:
            length, offset = read_varint(data, offset)
            value, offset = data[offset : offset + length], offset + length
        elif wire_type == _FIXED64:
            value, offset = data[offset : offset + 8], offset + 8
        elif wire_type == _FIXED32:
            value, offset = data[offset : offset + 4], offset + 4
        else:
            raise TensorDecodeError(f"unsupported wire type {wire_type}")
        yield number, wire_type, value


# Packed typed fields whose wire bytes are the values themselves (little-endian): read in place.
_IN_PLACE = {(DataType.DT_FLOAT, 5): "<f4", (DataType.DT_DOUBLE, 6): "<f8"}


def _decode_tensor_bytes(data: memoryview) -> np.ndarray:
    dtype, shape_bytes, content, packed = 0, None, None, None
    for number, wire_type, value in _fields(data):
        if number == 1:
            dtype = value
        elif number == 2:
            shape_bytes = value
        elif number == 4:
            content = value
        elif wire_type == _LENGTH and packed is None and number in (5, 6):
            packed = (number, value)
        elif number != 3:  # another typed field: the message codec knows every rule for those
            return decode_tensor(TensorProto.FromString(bytes(data)))
    header = TensorProto(dtype=dtype)
    if shape_bytes is not None:
        header.tensor_shape.ParseFromString(bytes(shape_bytes))
    if packed is not None and content is None and (dtype, packed[0]) in _IN_PLACE:
        wire = np.dtype(_IN_PLACE[dtype, packed[0]])
        values = np.frombuffer(packed[1], dtype=wire) if len(packed[1]) % wire.itemsize == 0 else None
        shape = [d.size for d in header.tensor_shape.dim]
        if values is not None and len(shape) <= 32 and all(d >= 0 for d in shape) and values.size == math.prod(shape):
            return values.astype(numpy_dtype(dtype), copy=False).reshape(shape)
    if packed is not None or not content or dtype == DataType.DT_STRING:
        # Short fields repeated, surplus ignored, strings: the message codec applies TF's rules.
        return decode_tensor(TensorProto.FromString(bytes(data)))
    return decode_tensor(header, content)


# Below this size an answer is parsed by the protobuf runtime (one C call) and its tensors copied
# out, which beats walking the fields in Python; above it, reading in place saves the copies.
_IN_PLACE_FROM = 1 << 16


def decode_predict_response(data: bytes) -> tuple[dict[str, np.ndarray], Any]:
    """The outputs (name -> array) and the ModelSpec of a serialized PredictResponse."""
    if len(data) < _IN_PLACE_FROM:
        response = PredictResponse.FromString(data)
        tensors = response.outputs  # keys then lookups: the runtime's items() costs more
        return {name: _decode_message(tensors[name]) for name in tensors}, response.model_spec
    outputs: dict[str, np.ndarray] = {}
    spec = MESSAGES["ModelSpec"]()
    for number, wire_type, value in _fields(memoryview(data)):
        if number == 1 and wire_type == _LENGTH:
            name, tensor = "", memoryview(b"")
            for entry_number, _, entry_value in _fields(value):
                if entry_number == 1:
                    name = bytes(entry_value).decode("utf-8")
                elif entry_number == 2:
                    tensor = entry_value
            outputs[name] = _decode_tensor_bytes(tensor)
        elif number == 2 and wire_type == _LENGTH:
            spec.ParseFromString(bytes(value))
    return outputs, spec
