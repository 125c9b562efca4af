"""Protobuf wire bytes read in place: a message's fields as views of its buffer, a tensor's values
as a numpy array over those views, and the common large PredictRequest without copying its tensors.

Parsing a message copies every bytes field out of the buffer it arrived in (a 38 MB tensor, once
more per parse). Below ``IN_PLACE_FROM`` the protobuf runtime's one C call is faster than walking
fields in Python; above it, reading in place saves the copies. The readers here take only the
plain form (each field once, exactly as many values as the shape says) and answer None for
anything else, so the caller parses the message and applies TensorFlow's rules to the rest:
whichever way a message is read, the result is the same.

Wire format: a field is ``varint(number << 3 | wire_type)`` then its value; length-delimited
values (strings, bytes, sub-messages, map entries, packed repeated scalars) are
``varint(length) + bytes``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from google.protobuf.message import DecodeError

from .codec import TensorDecodeError, _plain_layout, read_varint
from .messages import MESSAGES

__all__ = ["IN_PLACE_FROM", "InPlacePredictRequest", "fields", "read_predict_request", "read_tensor"]

#: Messages at least this large are worth reading in place.
IN_PLACE_FROM = 1 << 16
VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5
# TensorProto: dtype = 1, tensor_shape = 2, tensor_content = 4, float_val = 5, double_val = 6.
_CONTENT, _PACKED = 4, {5: "float_val", 6: "double_val"}


def fields(data: memoryview) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value): an int, or a memoryview for length-delimited and fixed values.

    Raises TensorDecodeError where the bytes are not a protobuf message.
    """
    offset = 0
    value: int | memoryview
    while offset < len(data):
        key, offset = read_varint(data, offset)
        number, wire_type = key >> 3, key & 7
        if wire_type == VARINT:
            value, offset = read_varint(data, offset)
        elif wire_type == LENGTH:
            length, offset = read_varint(data, offset)
            if offset + length > len(data):
                raise TensorDecodeError("truncated data: a field runs past the end")
            value, offset = data[offset : offset + length], offset + length
        elif wire_type in (FIXED64, FIXED32):
            size = 8 if wire_type == FIXED64 else 4
            if offset + size > len(data):
                raise TensorDecodeError("truncated data: a field runs past the end")
            value, offset = data[offset : offset + size], offset + size
        else:
            raise TensorDecodeError(f"unsupported wire type {wire_type}")
        yield number, wire_type, value


def read_tensor(data: memoryview) -> tuple[int, np.ndarray] | None:
    """(dtype, values) of a serialized TensorProto in its plain form, the array viewing ``data``
    (read-only): a numeric tensor whose ``tensor_content``, or packed ``float_val``/``double_val``,
    holds exactly its values. None for anything else (parse the message instead)."""
    dtype, shape, payload, kind, seen = 0, b"", None, 0, set()
    for number, wire_type, value in fields(data):
        if number in seen:
            return None  # repeated fields merge or concatenate: the runtime knows how
        seen.add(number)
        if number == 1 and wire_type == VARINT:
            dtype = value
        elif number == 2 and wire_type == LENGTH:
            shape = bytes(value)
        elif (number == _CONTENT or number in _PACKED) and wire_type == LENGTH and payload is None:
            payload, kind = value, number
        else:
            return None
    if payload is None:
        return None
    try:
        layout = _plain_layout(dtype, shape)
    except DecodeError:
        return None
    if layout is None:
        return None
    dims, count, wire, native, field = layout
    if wire is None or (kind != _CONTENT and _PACKED[kind] != field) or len(payload) != count * wire.itemsize:
        return None  # strings, a typed field of another dtype, values missing or to spare
    values = np.frombuffer(payload, dtype=wire)
    return dtype, (values if wire == native else values.astype(native)).reshape(dims)


@dataclass
class InPlacePredictRequest:
    """A PredictRequest read in place: the ModelSpec parsed, each input's (dtype, array) viewing ``data``."""

    model_spec: Any
    tensors: dict[str, tuple[int, np.ndarray]]
    output_filter: list[str]
    data: bytes


def _map_entry(data: memoryview) -> tuple[str, memoryview] | None:
    key, value = None, None
    for number, wire_type, field in fields(data):
        if wire_type != LENGTH or number not in (1, 2) or (key if number == 1 else value) is not None:
            return None
        if number == 1:
            key = str(field, "utf-8")
        else:
            value = field
    return (key, value) if key is not None and value is not None else None


def read_predict_request(data: bytes) -> InPlacePredictRequest | None:
    """A serialized PredictRequest in its plain form: a ModelSpec, each input once and plain (see
    :func:`read_tensor`), output aliases. None for anything else, malformed bytes included."""
    spec, tensors, output_filter = None, {}, []
    try:
        for number, wire_type, value in fields(memoryview(data)):
            if wire_type != LENGTH:
                return None
            if number == 1 and spec is None:
                spec = MESSAGES["ModelSpec"].FromString(bytes(value))
            elif number == 2:
                entry = _map_entry(value)
                if entry is None or entry[0] in tensors:
                    return None
                tensor = read_tensor(entry[1])
                if tensor is None:
                    return None
                tensors[entry[0]] = tensor
            elif number == 3:
                output_filter.append(str(value, "utf-8"))
            else:
                return None
    except (TensorDecodeError, DecodeError, UnicodeDecodeError):  # the runtime's parse gives its own error
        return None
    if spec is None:
        return None
    return InPlacePredictRequest(spec, tensors, output_filter, data)
