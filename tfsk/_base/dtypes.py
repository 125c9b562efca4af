"""TensorFlow's DataType numbers and names, and their numpy counterparts, without TensorFlow."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["DTYPE_NAMES", "DataType", "numpy_dtype", "tf_dtype_of", "tf_type_string"]


class DataType:
    """``tensorflow.DataType`` enum numbers (tensorflow/core/framework/types.proto)."""

    DT_INVALID = 0
    DT_FLOAT = 1
    DT_DOUBLE = 2
    DT_INT32 = 3
    DT_UINT8 = 4
    DT_INT16 = 5
    DT_INT8 = 6
    DT_STRING = 7
    DT_COMPLEX64 = 8
    DT_INT64 = 9
    DT_BOOL = 10
    DT_BFLOAT16 = 14
    DT_UINT16 = 17
    DT_COMPLEX128 = 18
    DT_HALF = 19
    DT_RESOURCE = 20
    DT_VARIANT = 21
    DT_UINT32 = 22
    DT_UINT64 = 23


try:  # bfloat16 has no numpy dtype of its own; ml_dtypes (a TensorFlow dependency) provides one
    import ml_dtypes

    _BFLOAT16: Any = np.dtype(ml_dtypes.bfloat16)
except ImportError:  # pragma: no cover - depends on the environment
    _BFLOAT16 = None

_NUMPY: dict[int, Any] = {
    DataType.DT_FLOAT: np.dtype(np.float32),
    DataType.DT_DOUBLE: np.dtype(np.float64),
    DataType.DT_HALF: np.dtype(np.float16),
    DataType.DT_INT8: np.dtype(np.int8),
    DataType.DT_INT16: np.dtype(np.int16),
    DataType.DT_INT32: np.dtype(np.int32),
    DataType.DT_INT64: np.dtype(np.int64),
    DataType.DT_UINT8: np.dtype(np.uint8),
    DataType.DT_UINT16: np.dtype(np.uint16),
    DataType.DT_UINT32: np.dtype(np.uint32),
    DataType.DT_UINT64: np.dtype(np.uint64),
    DataType.DT_BOOL: np.dtype(np.bool_),
    DataType.DT_COMPLEX64: np.dtype(np.complex64),
    DataType.DT_COMPLEX128: np.dtype(np.complex128),
    DataType.DT_STRING: np.dtype(object),
}
if _BFLOAT16 is not None:
    _NUMPY[DataType.DT_BFLOAT16] = _BFLOAT16

#: TF's ``DataTypeString`` names, as they appear in TF Serving's error messages.
DTYPE_NAMES: dict[int, str] = {
    DataType.DT_INVALID: "INVALID",
    DataType.DT_FLOAT: "float",
    DataType.DT_DOUBLE: "double",
    DataType.DT_INT32: "int32",
    DataType.DT_UINT8: "uint8",
    DataType.DT_INT16: "int16",
    DataType.DT_INT8: "int8",
    DataType.DT_STRING: "string",
    DataType.DT_COMPLEX64: "complex64",
    DataType.DT_INT64: "int64",
    DataType.DT_BOOL: "bool",
    DataType.DT_BFLOAT16: "bfloat16",
    DataType.DT_UINT16: "uint16",
    DataType.DT_COMPLEX128: "complex128",
    DataType.DT_HALF: "half",
    DataType.DT_RESOURCE: "resource",
    DataType.DT_VARIANT: "variant",
    DataType.DT_UINT32: "uint32",
    DataType.DT_UINT64: "uint64",
}


def numpy_dtype(dtype: int) -> Any:
    """The numpy dtype holding values of TF ``dtype``; KeyError for types numpy cannot hold."""
    return _NUMPY[dtype]


def tf_type_string(dtype: int) -> str:
    return DTYPE_NAMES.get(dtype, f"unknown dtype enum ({dtype})")


def tf_dtype_of(array: np.ndarray) -> int:
    """The TF DataType for a numpy array (bytes, str and object arrays are DT_STRING)."""
    kind = array.dtype
    if kind.kind in "OSU":
        return DataType.DT_STRING
    if _BFLOAT16 is not None and kind == _BFLOAT16:
        return DataType.DT_BFLOAT16
    for number, candidate in _NUMPY.items():
        if candidate == kind.newbyteorder("=") and number != DataType.DT_STRING:
            return number
    raise TypeError(f"numpy dtype {array.dtype} has no TensorFlow counterpart")
