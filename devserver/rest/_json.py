"""REST bodies <-> tensors and Examples, with TF Serving's rules and messages (``util/json_tensor.cc``).

JSON carries no dtypes: the signature's declared dtype decides how each value is read. A regular
numeric body goes through numpy in one step; anything else (strings, b64, ragged lists, a value
of the wrong JSON type) takes the value-by-value walk TF Serving does, which also gives its exact
error for the first bad value.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
from typing import Any

import numpy as np

from tfsk._base.dtypes import DataType, numpy_dtype, tf_dtype_of, tf_type_string

from .._status import StatusError
from ._json_values import float_texts, json_type, json_value_text, nest

__all__ = ["RequestFormat", "b64_decode", "checked_value", "document", "format_error", "is_b64", "json_text",
           "predict_inputs_from_json", "predict_outputs_json"]


class RequestFormat(enum.Enum):
    ROW = "instances"
    COLUMNAR = "inputs"


_INT_RANGES = {
    DataType.DT_INT32: (-(2**31), 2**31 - 1), DataType.DT_INT16: (-(2**31), 2**31 - 1),
    DataType.DT_INT8: (-(2**31), 2**31 - 1), DataType.DT_UINT8: (-(2**31), 2**31 - 1),
    DataType.DT_INT64: (-(2**63), 2**63 - 1), DataType.DT_UINT32: (0, 2**32 - 1),
    DataType.DT_UINT64: (0, 2**64 - 1),
}
_NARROW = (DataType.DT_INT16, DataType.DT_INT8, DataType.DT_UINT8)
#: The largest integers float and double hold exactly (``IsLosslessDecimal``).
_LOSSLESS = {DataType.DT_FLOAT: (2**24 - 1, float(np.finfo(np.float32).max)),
             DataType.DT_DOUBLE: (2**53 - 1, float(np.finfo(np.float64).max))}


#: numpy's limit on dimensions (TF's is 254); one is kept for the batch of a row-format request.
MAX_RANK = 63


def is_b64(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def b64_decode(value: Any) -> bytes:
    if not is_b64(value):
        raise StatusError.invalid_argument(f"JSON Value: {json_value_text(value)} not formatted correctly for base64 data")
    text = value["b64"].strip()
    try:  # absl::Base64Unescape takes the standard alphabet, with or without padding
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise StatusError.invalid_argument("Unable to base64 decode") from None


def format_error(doc: Any, text: str) -> StatusError:
    """``FormatError``: the offending document, then what is wrong with it."""
    return StatusError.invalid_argument(f"JSON Value: {json_value_text(doc)} {text}")


def _type_error(value: Any, dtype: int) -> StatusError:
    return StatusError.invalid_argument(
        f"JSON Value: {json_value_text(value)} Type: {json_type(value)} is not of expected type: {tf_type_string(dtype)}")


def checked_value(value: Any, dtype: int) -> Any:
    """``AddValueToTensor``: one JSON leaf as a value of ``dtype``."""
    if dtype in _LOSSLESS:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _type_error(value, dtype)
        max_int, max_float = _LOSSLESS[dtype]
        lossless = (abs(value) <= max_int) if isinstance(value, int) and -(2**63) <= value < 2**64 else (
            not np.isfinite(float(value)) or abs(float(value)) <= max_float)
        if not lossless:
            raise StatusError.invalid_argument(
                f"Cannot convert JSON value: {json_value_text(value)} to {tf_type_string(dtype)} without loss of precision.")
        return value
    if dtype in _INT_RANGES:
        low, high = _INT_RANGES[dtype]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise _type_error(value, dtype)
        return value
    if dtype == DataType.DT_BOOL:
        if not isinstance(value, bool):
            raise _type_error(value, dtype)
        return value
    if dtype == DataType.DT_STRING:
        if not isinstance(value, str):
            raise _type_error(value, dtype)
        return value.encode("utf-8", errors="surrogateescape")
    raise StatusError.unimplemented(f"Conversion of JSON Value: {json_value_text(value)} to type: {tf_type_string(dtype)}")


def _dense_shape(value: Any) -> tuple[int, ...]:
    """``GetDenseTensorShape``: the nesting of the first element at each level."""
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if len(shape) > MAX_RANK:
            raise StatusError.invalid_argument(
                f"JSON lists nested more than {MAX_RANK} levels deep: the devserver holds tensors of at most "
                f"{MAX_RANK} dimensions (numpy's limit)")
        if not value:
            break
        value = value[0]
    return tuple(shape)


def _fill(value: Any, level: int, shape: tuple[int, ...], dtype: int, out: list[Any]) -> None:
    """``FillTensorProto``: every leaf at depth ``rank``, every list of its level's size."""
    rank = len(shape)
    if not isinstance(value, list):
        if level != rank:
            raise StatusError.invalid_argument(
                f"JSON Value: {json_value_text(value)} found at incorrect level: {level + 1} in the JSON DOM. "
                f"Expected at level: {rank}")
        if isinstance(value, dict):
            if dtype != DataType.DT_STRING:
                raise _type_error(value, dtype)
            out.append(b64_decode(value))
        else:
            out.append(checked_value(value, dtype))
        return
    if level >= rank:
        raise StatusError.invalid_argument(f"Encountered list at unexpected level: {level} expected < {rank}")
    if len(value) != shape[level]:
        raise StatusError.invalid_argument(
            f"Encountered list at unexpected size: {len(value)} at level: {level} expected size: {shape[level]}")
    for item in value:
        _fill(item, level + 1, shape, dtype, out)


def _array(values: list[Any], shape: tuple[int, ...], dtype: int) -> np.ndarray:
    if dtype == DataType.DT_STRING:
        array = np.empty(len(values), dtype=object)
        array[:] = values
        return array.reshape(shape)
    if dtype in _NARROW:  # TF keeps these in int_val (int32) and narrows without a range check
        return np.array(values, dtype=np.int64).astype(numpy_dtype(dtype)).reshape(shape)
    return np.array(values, dtype=numpy_dtype(dtype)).reshape(shape)


def _fast(value: Any, dtype: int, may_hold_bools: bool) -> np.ndarray | None:
    """A regular list of numbers (or of bools) in one numpy call; None sends it to the exact walk."""
    if dtype == DataType.DT_STRING or (may_hold_bools and dtype != DataType.DT_BOOL):
        return None  # numpy would turn true into 1: only the walk rejects a bool where a number is due
    try:
        array = np.array(value)
    except (ValueError, TypeError, OverflowError):
        return None
    kind = array.dtype.kind
    if dtype == DataType.DT_BOOL:
        return array if kind == "b" else None
    if dtype in _LOSSLESS:
        max_int, max_float = _LOSSLESS[dtype]
        if kind in "iu" and (array.size == 0 or np.abs(array).max() <= max_int):
            return array.astype(numpy_dtype(dtype))
        if kind == "f":
            finite = np.abs(array[np.isfinite(array)])
            if finite.size == 0 or finite.max() <= max_float:
                return array.astype(numpy_dtype(dtype))
        return None
    if dtype in _INT_RANGES and kind in "iu":
        low, high = _INT_RANGES[dtype]
        if array.size == 0 or (int(array.min()) >= low and int(array.max()) <= high):
            return array.astype(numpy_dtype(dtype))
    return None


def _tensor(value: Any, dtype: int, may_hold_bools: bool) -> np.ndarray:
    array = _fast(value, dtype, may_hold_bools)
    if array is not None:
        return array
    shape = _dense_shape(value)
    values: list[Any] = []
    _fill(value, 0, shape, dtype, values)
    return _array(values, shape, dtype)


def _is_element_object(value: Any) -> bool:
    return isinstance(value, dict) and not is_b64(value)


def _instances(instances: list[Any], inputs: dict[str, int], may_hold_bools: bool) -> dict[str, np.ndarray]:
    """``FillTensorMapFromInstancesList``: one tensor per input, dim 0 = number of instances."""
    names = sorted(inputs)
    if not isinstance(instances[0], dict) and len(names) > 1:
        raise StatusError.invalid_argument(
            "instances is a plain list, but expecting list of objects as multiple input tensors required as per "
            "tensorinfo_map")
    objects = _is_element_object(instances[0])
    if objects and all(_is_element_object(e) and sorted(e) == names for e in instances):
        fast = {n: _fast([e[n] for e in instances], inputs[n], may_hold_bools) for n in names}
        if all(a is not None for a in fast.values()):
            return fast  # type: ignore[return-value]
    elif not objects and not any(_is_element_object(e) for e in instances):
        array = _fast(instances, inputs[names[0]], may_hold_bools)
        if array is not None:
            return {names[0]: array}
    collected: dict[str, list[Any]] = {n: [] for n in names}
    shapes: dict[str, tuple[tuple[int, ...], int]] = {}

    def add(item: Any, name: str) -> None:
        if name not in inputs:
            raise StatusError.invalid_argument(f"JSON object: does not have named input: {name}")
        shape = _dense_shape(item)
        values: list[Any] = []
        _fill(item, 0, shape, inputs[name], values)
        if name not in shapes:
            shapes[name] = (shape, len(values))
        elif shapes[name][1] != len(values):
            raise StatusError.invalid_argument(f"Expecting tensor size: {shapes[name][1]} but got: {len(values)}")
        elif shapes[name][0] != shape:
            raise StatusError.invalid_argument(
                f"Expecting shape [{','.join(map(str, shapes[name][0]))}] but got: [{','.join(map(str, shape))}]")
        collected[name].extend(values)

    for index, element in enumerate(instances):
        if objects:
            if not _is_element_object(element):
                raise StatusError.invalid_argument(f"Expecting object but got list at item {index} of input list")
            for key, item in element.items():
                try:
                    add(item, key)
                except StatusError as error:
                    raise StatusError.invalid_argument(
                        f"Failed to process element: {index} key: {key} of 'instances' list. Error: {error}") from None
            if set(element) != set(names):
                raise StatusError.invalid_argument(
                    f"Failed to process element: {index} of 'instances' list. JSON object: "
                    f"{json_value_text(element)} must only have keys: {','.join(names)}")
        else:
            if _is_element_object(element):
                raise StatusError.invalid_argument(f"Expecting value/list but got object at item {index} of input list")
            try:
                add(element, names[0])
            except StatusError as error:
                raise StatusError.invalid_argument(
                    f"Failed to process element: {index} of 'instances' list. Error: {error}") from None
    return {n: _array(collected[n], (len(instances),) + shapes[n][0], inputs[n]) for n in names}


def predict_inputs_from_json(doc: dict[str, Any], inputs: dict[str, int], *,
                             may_hold_bools: bool = True) -> tuple[RequestFormat, dict[str, np.ndarray]]:
    """``FillPredictRequestFromJson`` after the signature lookup: the request's format and its tensors.

    ``inputs`` maps each signature input alias to its DataType. ``may_hold_bools`` False (the body
    has no ``true``/``false`` token) lets numeric lists skip the per-value check for bools.
    """
    if "instances" in doc:
        if "inputs" in doc:
            raise format_error(doc, "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist ")
        instances = doc["instances"]
        if not isinstance(instances, list):
            raise format_error(doc, "Excepting 'instances' to be an list/array")
        if not instances:
            raise format_error(doc, "No values in 'instances' array")
        return RequestFormat.ROW, _instances(instances, inputs, may_hold_bools)
    if "inputs" not in doc:
        raise StatusError.invalid_argument("Missing 'inputs' or 'instances' key")
    value = doc["inputs"]
    if not isinstance(value, dict) or is_b64(value):
        if len(inputs) > 1:
            raise StatusError.invalid_argument(
                "inputs is a plain value/list, but expecting an object as multiple input tensors required as per "
                "tensorinfo_map")
        (name, dtype), = inputs.items()
        return RequestFormat.COLUMNAR, {name: _tensor(value, dtype, may_hold_bools)}
    tensors = {}
    for name in sorted(inputs):
        if name not in value:
            raise StatusError.invalid_argument(f"Missing named input: {name} in 'inputs' object.")
        tensors[name] = _tensor(value[name], inputs[name], may_hold_bools)
    return RequestFormat.COLUMNAR, tensors


# -- responses ----------------------------------------------------------------------------------
def _value_texts(alias: str, array: np.ndarray) -> list[str]:
    flat = array.ravel()
    kind = array.dtype.kind
    if array.dtype in (np.float32, np.float64):
        return float_texts(flat)
    if kind in "iu" and array.dtype.itemsize <= 8 and array.dtype != np.uint16:
        return list(map(str, flat.tolist()))
    if kind == "b":
        return ["true" if v else "false" for v in flat.tolist()]
    if kind == "O":
        if alias.endswith("_bytes"):
            return ['{"b64": "' + base64.b64encode(bytes(v)).decode("ascii") + '"}' for v in flat]
        return [json_text(bytes(v).decode("utf-8", errors="replace")) for v in flat]
    try:
        name = tf_type_string(tf_dtype_of(array))
    except TypeError:
        name = str(array.dtype)
    raise StatusError.invalid_argument(f"Failed to write JSON value for tensor type: {name}")


def json_text(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def document(key: str, body: str) -> bytes:
    return ("{\n    " + json_text(key) + ": " + body + "\n}\n").encode("utf-8")


def predict_outputs_json(outputs: dict[str, np.ndarray], request_format: RequestFormat) -> bytes:
    """``MakeJsonFromTensors``: ``predictions`` by row for a row request, ``outputs`` for a columnar one."""
    if not outputs:
        raise StatusError.invalid_argument("Cannot convert empty tensor map to JSON")
    aliases = sorted(outputs)
    if request_format is RequestFormat.COLUMNAR:
        texts = {a: nest(_value_texts(a, outputs[a]), outputs[a].shape)[0] for a in aliases}
        if len(aliases) == 1:
            return document("outputs", texts[aliases[0]])
        return document("outputs", "{" + ", ".join(f"{json_text(a)}: {texts[a]}" for a in aliases) + "}")
    batch = None
    for alias in aliases:
        shape = outputs[alias].shape
        if not shape:
            raise StatusError.invalid_argument(f"Tensor name: {alias} has no shape information ")
        if batch is None:
            batch = shape[0]
        elif shape[0] != batch:
            raise StatusError.invalid_argument(
                f"Tensor name: {alias} has inconsistent batch size: {shape[0]} expecting: {batch}")
    rows = {a: nest(_value_texts(a, outputs[a]), outputs[a].shape[1:], outputs[a].shape[0]) for a in aliases}
    if len(aliases) == 1:
        return document("predictions", "[" + ", ".join(rows[aliases[0]]) + "]")
    objects = ("{" + ", ".join(f"{json_text(a)}: {rows[a][i]}" for a in aliases) + "}" for i in range(batch or 0))
    return document("predictions", "[" + ", ".join(objects) + "]")
