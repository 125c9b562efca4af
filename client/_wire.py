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

import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tfsk._base.codec import (
    _as_array,
    decode_plain,
    decode_tensor,
    dtype_number,
    encode_tensor,
)
from tfsk._base.dtypes import DataType, numpy_dtype
from tfsk._base.messages import MESSAGES
from tfsk._base.packed import (
    length_delimited,
    length_prefix,
    map_entry_head,
    tensor_header,
)
from tfsk._base.wire import IN_PLACE_FROM, LENGTH, fields, read_tensor

__all__ = ["decode_predict_response", "encode_predict_request"]

TensorProto = MESSAGES["TensorProto"]
TensorShapeProto = MESSAGES["TensorShapeProto"]
PredictResponse = MESSAGES["PredictResponse"]


def _decode_message(tensor: Any) -> np.ndarray:
    plain = decode_plain(tensor, measure=False)
    return decode_tensor(tensor) if plain is None else plain[0]


_VIEW_FROM = 1 << 16


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
    tensor_head = tensor_header(number, shape) + length_prefix(4, nbytes)  # TensorProto.tensor_content = 4
    return map_entry_head(2, name, len(tensor_head) + nbytes) + tensor_head, wire_dtype  # PredictRequest.inputs = 2


def _input_entry(name: str, value: Any) -> list[Any]:
    """One ``inputs`` map entry as pieces: a small cached head, then the array's buffer itself."""
    array = value if type(value) is np.ndarray else _as_array(value)
    found = _numeric_head(name, array.dtype, array.shape)
    if found is None:  # strings (and anything unusual): the message codec, its bytes joined once with the rest
        tensor = encode_tensor(array, TensorProto()).SerializeToString()
        return [map_entry_head(2, name, len(tensor)), tensor]
    head, wire_dtype = found
    if array.dtype != wire_dtype or not array.flags.c_contiguous:
        array = np.ascontiguousarray(array, dtype=wire_dtype)
    if array.nbytes < _VIEW_FROM:  # a small copy costs less than making a view
        return [head, array.tobytes()]
    return [head, array.reshape(-1).view(np.uint8).data]  # a bytes view, any dtype


def encode_predict_request(model_spec: Any, inputs: Mapping[str, Any], output_filter: Sequence[str] = ()) -> bytes:
    """The serialized PredictRequest (``model_spec`` a ModelSpec message)."""
    pieces: list[Any] = [length_delimited(1, model_spec.SerializeToString())]
    for name, value in inputs.items():
        pieces += _input_entry(name, value)
    for alias in output_filter:
        pieces.append(length_delimited(3, alias.encode("utf-8")))
    return b"".join(pieces)


def _decode_tensor_bytes(data: memoryview) -> np.ndarray:
    found = read_tensor(data)  # plain tensor_content or packed float/double: a view of the answer
    if found is not None:
        return found[1]
    return decode_tensor(TensorProto.FromString(bytes(data)))  # every other form: TF's rules, by the message codec


def decode_predict_response(data: bytes) -> tuple[dict[str, np.ndarray], Any]:
    """The outputs (name -> array) and the ModelSpec of a serialized PredictResponse."""
    if len(data) < IN_PLACE_FROM:  # the runtime's one C call beats walking fields in Python
        response = PredictResponse.FromString(data)
        tensors = response.outputs  # keys then lookups: the runtime's items() costs more
        return {name: _decode_message(tensors[name]) for name in tensors}, response.model_spec
    outputs: dict[str, np.ndarray] = {}
    spec = MESSAGES["ModelSpec"]()
    for number, wire_type, value in fields(memoryview(data)):
        if number == 1 and wire_type == LENGTH:
            name, tensor = "", memoryview(b"")
            for entry_number, _, entry_value in fields(value):
                if entry_number == 1:
                    name = bytes(entry_value).decode("utf-8")
                elif entry_number == 2:
                    tensor = entry_value
            outputs[name] = _decode_tensor_bytes(tensor)
        elif number == 2 and wire_type == LENGTH:
            spec.ParseFromString(bytes(value))
    return outputs, spec
