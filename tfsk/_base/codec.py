"""numpy <-> ``tensorflow.TensorProto``, following TensorFlow's own rules, with numpy only.

Works on any message class with TensorProto's fields (TensorFlow's generated class or the
client's own), so the client and the devserver share one codec.

Decoding follows ``Tensor::FromProto``: ``tensor_content`` wins when present and must have the
exact byte size; otherwise the typed ``*_val`` field is read, a short field repeats its last
value to fill the shape, an empty one gives zeros, surplus values are ignored; no shape means a
scalar. Encoding writes numerics as little-endian ``tensor_content`` (fast to build and parse);
:func:`encode_as_fields` writes typed fields the way TF Serving answers by default.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .dtypes import DataType, numpy_dtype, tf_dtype_of, tf_type_string

__all__ = ["TensorDecodeError", "decode_tensor", "encode_as_fields", "encode_tensor"]

MAX_DIMS = 254
_INT64_MAX = 2**63 - 1

# dtype -> (typed field, numpy dtype the field's values are read as)
_FIELDS: dict[int, tuple[str, Any]] = {
    DataType.DT_FLOAT: ("float_val", np.float32),
    DataType.DT_DOUBLE: ("double_val", np.float64),
    DataType.DT_INT32: ("int_val", np.int32),
    DataType.DT_INT16: ("int_val", np.int32),
    DataType.DT_INT8: ("int_val", np.int32),
    DataType.DT_UINT8: ("int_val", np.int32),
    DataType.DT_UINT16: ("int_val", np.int32),
    DataType.DT_INT64: ("int64_val", np.int64),
    DataType.DT_UINT32: ("uint32_val", np.uint32),
    DataType.DT_UINT64: ("uint64_val", np.uint64),
    DataType.DT_BOOL: ("bool_val", np.bool_),
    DataType.DT_HALF: ("half_val", np.int32),
    DataType.DT_BFLOAT16: ("half_val", np.int32),
    DataType.DT_COMPLEX64: ("scomplex_val", np.float32),
    DataType.DT_COMPLEX128: ("dcomplex_val", np.float64),
    DataType.DT_STRING: ("string_val", object),
}


class TensorDecodeError(ValueError):
    """A TensorProto that TensorFlow itself would refuse to turn into a tensor."""


def _shape(proto: Any) -> tuple[int, ...]:
    dims = tuple(int(d.size) for d in proto.tensor_shape.dim)
    if len(dims) > MAX_DIMS:
        raise TensorDecodeError(f"tensor has {len(dims)} dimensions, more than {MAX_DIMS}")
    if any(d < 0 for d in dims):
        raise TensorDecodeError(f"tensor shape {list(dims)} has a negative dimension")
    count = 1
    for d in dims:
        count *= d
        if count > _INT64_MAX:
            raise TensorDecodeError("tensor shape overflows int64")
    return dims


def read_varint(data: bytes | memoryview, offset: int) -> tuple[int, int]:
    """A protobuf varint at ``offset``: (value, offset after it)."""
    value = shift = 0
    while True:
        if offset >= len(data):
            raise TensorDecodeError("truncated data: a varint runs past the end")
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, offset
        shift += 7


def _strings_from_content(content: bytes, count: int) -> np.ndarray:
    # TF's string-list encoding: all lengths as varints, then all bytes.
    lengths, offset = [], 0
    for _ in range(count):
        length, offset = read_varint(content, offset)
        lengths.append(length)
    values = np.empty(count, dtype=object)
    for index, length in enumerate(lengths):
        values[index] = content[offset : offset + length]
        offset += length
    if offset != len(content):
        raise TensorDecodeError("string tensor_content does not match its element count")
    return values


def decode_tensor(proto: Any, content: bytes | memoryview | None = None) -> np.ndarray:
    """The numpy array a TensorProto stands for; :class:`TensorDecodeError` where TF would refuse it.

    ``content`` stands in for ``proto.tensor_content`` when the caller holds it elsewhere (the wire
    reader passes a view of the response, so the array is not copied).
    """
    dtype = int(proto.dtype)
    if dtype == DataType.DT_INVALID:
        raise TensorDecodeError("tensor has no dtype")
    try:
        target = numpy_dtype(dtype)
    except KeyError:
        raise TensorDecodeError(f"tensor dtype {tf_type_string(dtype)} cannot be decoded") from None
    shape = _shape(proto)
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    content = proto.tensor_content if content is None else content
    if content:
        if dtype == DataType.DT_STRING:
            return _strings_from_content(content, count).reshape(shape)
        expected = count * target.itemsize
        if len(content) != expected:
            raise TensorDecodeError(f"tensor_content has {len(content)} bytes, {expected} expected for shape {list(shape)}")
        return np.frombuffer(content, dtype=target.newbyteorder("<")).astype(target, copy=False).reshape(shape)

    field, read_as = _FIELDS[dtype]
    raw = getattr(proto, field)
    is_complex = dtype in (DataType.DT_COMPLEX64, DataType.DT_COMPLEX128)
    if dtype == DataType.DT_STRING:
        values = np.empty(len(raw), dtype=object)
        values[:] = list(raw)
    else:
        values = np.asarray(raw, dtype=read_as)
        if is_complex:
            values = values[: len(values) // 2 * 2].view(target) if len(values) >= 2 else np.empty(0, target)
        elif dtype in (DataType.DT_HALF, DataType.DT_BFLOAT16):
            values = values.astype(np.uint16).view(target)
        else:
            values = values.astype(target, copy=False)
    if len(values) >= count:
        flat = values[:count]
    elif len(values):
        flat = np.concatenate([values, np.repeat(values[-1:], count - len(values))])
    else:
        flat = np.full(count, b"" if dtype == DataType.DT_STRING else 0, dtype=target)
    return flat.reshape(shape)


def _as_array(value: Any) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind == "U":
        array = np.vectorize(lambda s: s.encode("utf-8"), otypes=[object])(array) if array.size else array.astype(object)
    return array


def _start(proto: Any, array: np.ndarray) -> int:
    dtype = tf_dtype_of(array)
    proto.dtype = dtype
    proto.tensor_shape.SetInParent()  # scalars carry an empty, present shape, as TF writes them
    for size in array.shape:
        proto.tensor_shape.dim.add().size = size
    return dtype


def _strings(array: np.ndarray) -> list[bytes]:
    out = []
    for item in array.ravel():
        if isinstance(item, str):
            item = item.encode("utf-8")
        elif not isinstance(item, (bytes, bytearray)):
            raise TypeError(f"string tensors hold bytes or str, got {type(item).__name__}")
        out.append(bytes(item))
    return out


def encode_tensor(value: Any, proto: Any) -> Any:
    """Fill ``proto`` (a TensorProto) from ``value``: numerics as ``tensor_content``, strings as ``string_val``."""
    array = _as_array(value)
    dtype = _start(proto, array)
    if dtype == DataType.DT_STRING:
        proto.string_val.extend(_strings(array))
    else:
        target = numpy_dtype(dtype).newbyteorder("<")
        proto.tensor_content = np.ascontiguousarray(array, dtype=target).tobytes()
    return proto


def encode_as_fields(value: Any, proto: Any) -> Any:
    """Fill ``proto`` with typed ``*_val`` fields, as TF Serving's default ``AsProtoField`` does."""
    array = _as_array(value)
    dtype = _start(proto, array)
    field, write_as = _FIELDS[dtype]
    if dtype == DataType.DT_STRING:
        getattr(proto, field).extend(_strings(array))
        return proto
    flat = array.ravel()
    if dtype in (DataType.DT_HALF, DataType.DT_BFLOAT16):
        flat = flat.view(np.uint16).astype(np.int32)
    elif dtype in (DataType.DT_COMPLEX64, DataType.DT_COMPLEX128):
        flat = np.ascontiguousarray(flat).view(write_as)
    getattr(proto, field).extend(flat.astype(write_as, copy=False).tolist())
    return proto
