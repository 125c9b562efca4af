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

import functools
import math
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from .dtypes import DataType, numpy_dtype, tf_dtype_of, tf_type_string
from .errors import TfskError
from .messages import MESSAGES
from .packed import length_prefix, tensor_header, varints

__all__ = ["TensorDecodeError", "TensorSize", "decode_plain", "decode_tensor", "dtype_number", "encode_as_fields",
           "encode_tensor", "measure_tensor", "tensor_bytes", "tensor_pieces"]

#: TensorFlow's TensorShape allows this many dimensions.
MAX_DIMS = 254
#: A numpy array allows this many (numpy 2: 64; numpy 1: 32); TensorFlow's own Python feeds have the same bound.
NUMPY_MAX_DIMS = 64 if int(np.__version__.split(".")[0]) >= 2 else 32
_INT64_MAX = 2**63 - 1
# A decoded string element: its reference in the object array, and the bytes object it points to.
_REFERENCE_BYTES = 8
_BYTES_OBJECT_OVERHEAD = 33

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
_COMPLEX = (DataType.DT_COMPLEX64, DataType.DT_COMPLEX128)
_SMALL_PAYLOAD = 1 << 16
#: TensorProto's field numbers of the typed fields.
_FIELD_NUMBERS = {"float_val": 5, "double_val": 6, "int_val": 7, "string_val": 8, "scomplex_val": 9, "int64_val": 10,
                  "bool_val": 11, "dcomplex_val": 12, "half_val": 13, "uint32_val": 16, "uint64_val": 17}
_HALVES = (DataType.DT_HALF, DataType.DT_BFLOAT16)
_LITTLE = {kind: np.dtype(kind).newbyteorder("<") for kind in (np.float32, np.float64)}  # packed float/double bytes


class TensorDecodeError(TfskError, ValueError):
    """A TensorProto that TensorFlow itself would refuse to turn into a tensor, or that numpy cannot hold.

    ``tensorflow_refuses`` is False for the second kind: shapes TensorFlow takes (65 to 254
    dimensions, an empty tensor with a huge dimension) but a numpy array cannot have.
    """

    def __init__(self, message: str, *, tensorflow_refuses: bool = True) -> None:
        super().__init__(message)
        self.tensorflow_refuses = tensorflow_refuses


@dataclass(frozen=True)
class TensorSize:
    """What decoding a TensorProto would make, known before anything is allocated."""

    shape: tuple[int, ...]
    dtype: int
    #: Bytes the decoded array takes (string tensors: a reference per element and the bytes objects).
    nbytes: int
    #: Bytes of values the proto itself carries (``tensor_content``, or the typed values present).
    sent: int

    @property
    def made(self) -> int:
        """Bytes decoding creates beyond what was sent: short typed fields repeat their last value, empty ones give zeros."""
        return max(0, self.nbytes - self.sent)

    def describe(self) -> str:
        return f"shape {shape_text(self.shape)} of {tf_type_string(self.dtype)}"


def shape_text(dims: Any) -> str:
    """A shape as TensorFlow's ``TensorShape::DebugString`` writes it: ``[2,3]``."""
    return "[" + ",".join(str(d) for d in dims) + "]"


def _shape(proto: Any, itemsize: int) -> tuple[int, ...]:
    """The dims, with ``TensorShape::IsValidShape``'s checks and messages, then numpy's own limits."""
    dims = tuple(int(d.size) for d in proto.tensor_shape.dim)
    if len(dims) > MAX_DIMS:
        raise TensorDecodeError(f"Shape {shape_text(dims)} has too many dimensions")
    if any(d < 0 for d in dims):
        raise TensorDecodeError(f"Shape {shape_text(dims)} is not fully defined")
    count = 1
    for d in dims:
        count *= d
        if count > _INT64_MAX:
            raise TensorDecodeError(f"Shape {shape_text(dims)} is too large (more than 2**63 - 1 entries)")
    # Shapes TensorFlow takes but a numpy array cannot (TF Serving itself would serve them).
    if len(dims) > NUMPY_MAX_DIMS:
        raise TensorDecodeError(
            f"Shape {shape_text(dims)} has {len(dims)} dimensions; a numpy array holds at most {NUMPY_MAX_DIMS}",
            tensorflow_refuses=False)
    span = itemsize
    for d in dims:
        span *= d or 1  # numpy checks the non-zero dimensions even when the array is empty
    if span > _INT64_MAX:
        raise TensorDecodeError(
            f"Shape {shape_text(dims)} cannot be held in a numpy array: its non-zero dimensions times the "
            f"{itemsize}-byte element size exceed 2**63 - 1 bytes", tensorflow_refuses=count > 0)
    return dims


def _target(proto: Any) -> tuple[int, Any]:
    dtype = int(proto.dtype)
    if dtype == DataType.DT_INVALID:
        raise TensorDecodeError("tensor has no dtype")
    try:
        return dtype, numpy_dtype(dtype)
    except KeyError:
        raise TensorDecodeError(f"tensor dtype {tf_type_string(dtype)} cannot be decoded") from None


def measure_tensor(proto: Any, content: bytes | memoryview | None = None) -> TensorSize:
    """Check ``proto`` as TensorFlow would and say what decoding it would take, allocating nothing."""
    dtype, target = _target(proto)
    itemsize = _REFERENCE_BYTES if dtype == DataType.DT_STRING else target.itemsize
    shape = _shape(proto, itemsize)
    count = math.prod(shape)
    content = proto.tensor_content if content is None else content
    if dtype == DataType.DT_STRING:
        present = count if content else len(proto.string_val)
        sent = len(content) if content else proto.ByteSize()
        nbytes = count * _REFERENCE_BYTES + min(present, count) * _BYTES_OBJECT_OVERHEAD + sent
        return TensorSize(shape, dtype, nbytes, sent)
    if content:
        return TensorSize(shape, dtype, count * itemsize, len(content))
    present = len(getattr(proto, _FIELDS[dtype][0]))
    if dtype in _COMPLEX:
        present //= 2
    return TensorSize(shape, dtype, count * itemsize, min(present, count) * itemsize)


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


def _strings_from_content(content: bytes | memoryview, count: int) -> np.ndarray:
    # TF's string-list encoding: all lengths as varints, then all bytes.
    if count > len(content):  # each element takes at least its one-byte length
        raise TensorDecodeError("string tensor_content does not match its element count")
    lengths, offset = [], 0
    for _ in range(count):
        length, offset = read_varint(content, offset)
        lengths.append(length)
    values = np.empty(count, dtype=object)
    for index, length in enumerate(lengths):
        values[index] = bytes(content[offset : offset + length])
        offset += length
    if offset != len(content):
        raise TensorDecodeError("string tensor_content does not match its element count")
    return values


def _typed_values(proto: Any, dtype: int, target: Any) -> np.ndarray:
    field, read_as = _FIELDS[dtype]
    raw = getattr(proto, field)
    if dtype == DataType.DT_STRING:
        return np.fromiter(raw, dtype=object, count=len(raw))
    values = np.asarray(raw, dtype=read_as)
    if dtype in _COMPLEX:
        return values[: len(values) // 2 * 2].view(target)
    if dtype in _HALVES:
        return values.astype(np.uint16).view(target)
    return values.astype(target, copy=False)


def _filled(values: np.ndarray, count: int, dtype: int, target: Any) -> np.ndarray:
    """``FromProtoField``: surplus values ignored, a short field repeats its last value, an empty one gives zeros."""
    if len(values) >= count:
        return values[:count]
    if not len(values):
        return np.full(count, b"", dtype=object) if dtype == DataType.DT_STRING else np.zeros(count, dtype=target)
    flat = np.empty(count, dtype=target)  # one allocation, filled in place
    flat[: len(values)] = values
    flat[len(values) :] = values[-1]
    return flat


# dtype -> (the little-endian dtype of its tensor_content, the native one, its typed field or None)
# for the dtypes decode_plain reads: typed fields only where each holds one value of the array's type.
_PLAIN: dict[int, tuple[Any, Any, str | None]] = {
    number: (numpy_dtype(number).newbyteorder("<"), numpy_dtype(number).newbyteorder("="), _FIELDS[number][0] if number in (
        DataType.DT_FLOAT, DataType.DT_DOUBLE, DataType.DT_INT32, DataType.DT_INT64) else None)
    for number in (DataType.DT_FLOAT, DataType.DT_DOUBLE, DataType.DT_INT32, DataType.DT_INT64, DataType.DT_INT8,
                   DataType.DT_INT16, DataType.DT_UINT8, DataType.DT_UINT16, DataType.DT_UINT32, DataType.DT_UINT64,
                   DataType.DT_BOOL, DataType.DT_COMPLEX64, DataType.DT_COMPLEX128)
}
_LITTLE_ENDIAN = sys.byteorder == "little"


@functools.lru_cache(maxsize=1024)
def _plain_layout(dtype: int, shape_bytes: bytes) -> tuple[tuple[int, ...], int, Any, Any, str | None] | None:
    """What decode_plain needs of a (dtype, serialized shape) pair; requests repeat a few of them."""
    plain = _PLAIN.get(dtype)
    if plain is None and dtype != DataType.DT_STRING:
        return None
    shape = tuple(d.size for d in MESSAGES["TensorShapeProto"].FromString(shape_bytes).dim)
    if len(shape) > NUMPY_MAX_DIMS or min(shape, default=1) <= 0:
        return None
    if plain is None:
        return shape, math.prod(shape), None, np.dtype(object), "string_val"
    return shape, math.prod(shape), *plain


def decode_plain(proto: Any, content: bytes | memoryview | None = None, *,
                 measure: bool = True) -> tuple[np.ndarray, int] | None:
    """The common valid case of :func:`decode_tensor` with the fewest steps: a non-empty numeric
    tensor whose ``tensor_content`` (or float/double/int32/int64 typed field) holds exactly its
    values, or a string tensor with one ``string_val`` per element. Returns the array and the
    bytes the request sent for it (as :func:`measure_tensor` counts them; 0 for strings when not
    ``measure``: counting them takes a pass over the message), or None when the tensor needs
    :func:`decode_tensor`'s checks (which then give the same array or TensorFlow's refusal).
    """
    layout = _plain_layout(proto.dtype, proto.tensor_shape.SerializeToString())
    if layout is None:
        return None
    shape, count, wire, native, field = layout
    content = proto.tensor_content if content is None else content
    if wire is None:  # strings as TF Serving sends them: one string_val per element
        values = proto.string_val
        if content or len(values) != count:
            return None
        return np.array(values, dtype=object).reshape(shape), proto.ByteSize() if measure else 0
    if content:
        if len(content) != count * wire.itemsize:
            return None
        values = np.frombuffer(content, dtype=native) if _LITTLE_ENDIAN else np.frombuffer(content, wire).astype(native)
        return values.reshape(shape), len(content)
    if field is None:
        return None
    values = getattr(proto, field)
    if len(values) != count:
        return None
    return np.asarray(values, dtype=native).reshape(shape), count * wire.itemsize


def decode_tensor(proto: Any, content: bytes | memoryview | None = None) -> np.ndarray:
    """The numpy array a TensorProto stands for; :class:`TensorDecodeError` where TF would refuse it.

    ``content`` stands in for ``proto.tensor_content`` when the caller holds it elsewhere (the wire
    reader passes a view of the response, so the array is not copied). Call :func:`measure_tensor`
    first to bound what decoding may allocate.
    """
    dtype, target = _target(proto)
    content = proto.tensor_content if content is None else content
    size = measure_tensor(proto, content)
    shape, count = size.shape, math.prod(size.shape)
    try:
        if content:
            if dtype == DataType.DT_STRING:
                return _strings_from_content(content, count).reshape(shape)
            if len(content) != size.nbytes:
                raise TensorDecodeError(
                    f"tensor_content has {len(content)} bytes, {size.nbytes} expected for shape {list(shape)}")
            return np.frombuffer(content, dtype=target.newbyteorder("<")).astype(target, copy=False).reshape(shape)
        return _filled(_typed_values(proto, dtype, target), count, dtype, target).reshape(shape)
    except MemoryError:  # TensorFlow's allocator returns null and FromProto fails: the same refusal
        raise TensorDecodeError(f"cannot allocate {size.nbytes} bytes for a tensor of {size.describe()}") from None


def _as_array(value: Any) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind == "U":
        array = np.vectorize(lambda s: s.encode("utf-8"), otypes=[object])(array) if array.size else array.astype(object)
    return array


@functools.lru_cache(maxsize=64)
def dtype_number(dtype: np.dtype) -> int:
    """The TF DataType of a numpy dtype (cached: answers and requests repeat a few)."""
    return tf_dtype_of(np.empty(0, dtype))


def _start(proto: Any, array: np.ndarray) -> int:
    dtype = dtype_number(array.dtype)
    proto.MergeFromString(tensor_header(dtype, array.shape))
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


def _extend_strings(field: Any, array: np.ndarray) -> None:
    items = array.ravel().tolist()
    try:
        field.extend(items)  # all bytes: the protobuf runtime takes the list at once
    except TypeError:  # str to encode, or something that is no string (refused with a clear message)
        del field[:]
        field.extend(_strings(array))


def tensor_pieces(value: Any, typed: bool) -> tuple[bytes, np.ndarray] | None:
    """A non-empty numeric tensor's serialized TensorProto in two pieces: every field up to its
    values' length prefix, and the values' wire bytes (uint8), a view of the array's own buffer
    where those bytes are its memory (``tensor_content`` and packed float/double of a
    little-endian array). Joining them writes the tensor with one copy of its values. The values
    are typed ``*_val`` fields (``typed``, TF Serving's default) or ``tensor_content``. None for
    strings and empty tensors (:func:`encode_tensor` / :func:`encode_as_fields` take those).
    """
    array = _as_array(value)
    dtype = dtype_number(array.dtype)
    if dtype == DataType.DT_STRING or not array.size:
        return None
    header = tensor_header(dtype, array.shape)
    if not typed:
        data = np.ascontiguousarray(array, dtype=numpy_dtype(dtype).newbyteorder("<"))
        return header + length_prefix(4, data.nbytes), data.reshape(-1).view(np.uint8)
    field, write_as = _FIELDS[dtype]
    flat = array.reshape(-1) if array.dtype.isnative and array.flags.c_contiguous else (
        np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("=")).reshape(-1))  # views below read native bytes
    if dtype in _HALVES:
        payload = varints(flat.view(np.uint16))
    elif dtype in _COMPLEX or dtype in (DataType.DT_FLOAT, DataType.DT_DOUBLE):
        payload = flat.view(write_as) if dtype in _COMPLEX else flat
        payload = payload.astype(_LITTLE[write_as], copy=False).view(np.uint8)
    else:
        payload = varints(flat)
    return header + length_prefix(_FIELD_NUMBERS[field], payload.nbytes), payload


def tensor_bytes(value: Any, typed: bool) -> bytes | memoryview | None:
    """The serialized TensorProto of a non-empty numeric tensor, built from its buffer (see
    :func:`tensor_pieces`). None for strings and empty tensors."""
    pieces = tensor_pieces(value, typed)
    if pieces is None:
        return None
    head, payload = pieces
    if payload.nbytes < _SMALL_PAYLOAD:  # small: bytes joined by Python beat building a buffer
        return head + payload.tobytes()
    return b"".join([head, payload.data])


def _encode(value: Any, proto: Any, typed: bool) -> Any:
    data = tensor_bytes(value, typed)
    if data is not None:
        proto.MergeFromString(data)  # the header and the values parsed in one call
        return proto
    array = _as_array(value)
    dtype = _start(proto, array)
    if dtype == DataType.DT_STRING:
        _extend_strings(getattr(proto, _FIELDS[dtype][0]), array)
    return proto


def encode_tensor(value: Any, proto: Any) -> Any:
    """Fill ``proto`` (a TensorProto) from ``value``: numerics as ``tensor_content``, strings as ``string_val``."""
    return _encode(value, proto, typed=False)


def encode_as_fields(value: Any, proto: Any) -> Any:
    """Fill ``proto`` with typed ``*_val`` fields, as TF Serving's default ``AsProtoField`` does.

    Numeric values go in as one packed record parsed by the protobuf runtime, never as one Python
    object per element, so the memory an answer takes stays a small multiple of its size.
    """
    return _encode(value, proto, typed=True)
