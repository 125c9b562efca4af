"""Inputs fitted to a signature before they are sent, and the signatures that makes cheap.

TF Serving checks neither dtypes nor shapes: a float64 array for a float32 input comes back as
``Expects arg[0] to be float but double is provided``, a wrong width as the model's own
``Matrix size-incompatible ... [[{{node ...}}]]``. Knowing the signature, the client converts
what numpy converts safely (same-kind casting: float64 -> float32, a list of ints -> float32)
and refuses the rest before sending, naming the input, what it takes and what was sent.

Shapes: a dimension the signature fixes must match when the ranks agree. A different rank is
refused when the signature fixes a dimension wider than 1 (a Keras input ``[?,5]``: its graph
takes rank 2 only, and the server's answer would be graph text); otherwise it is left to the
server, because TF Serving runs whatever the graph accepts (its own tests send a ``[3]`` vector
to half_plus_two's ``[-1,1]`` input). Booleans are not numbers here: numpy would turn them into
floats, but a bool array for a float input is a mistake, so it is refused.

Signatures come from GetModelMetadata once per model and version (or label), then from memory:
the cache is dropped for a model when a newer version than the cached one answers, and when the
server refuses a request for it (NOT_FOUND, INVALID_ARGUMENT, FAILED_PRECONDITION). Inputs the
remembered signature refuses are checked against a fresh one before the error is raised.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import numpy as np

from tfsk._base.naming import DEFAULT_SIGNATURE

from ._errors import InputError
from ._types import ModelMetadata, TensorSpec, describe_array

__all__ = ["MISSING", "SignatureCache", "fit_inputs"]

MISSING = object()
Key = tuple[str, "int | None", "str | None"]


class SignatureCache:
    """(model, version, label) -> ModelMetadata (``None``: the server offers none), least recently used dropped first."""

    def __init__(self, size: int = 512) -> None:
        self._size = size
        self._entries: OrderedDict[Key, ModelMetadata | None] = OrderedDict()
        self._lock = threading.Lock()  # one client is shared by threads

    def get(self, key: Key) -> Any:
        with self._lock:
            found = self._entries.get(key, MISSING)
            if found is not MISSING:
                self._entries.move_to_end(key)
            return found

    def put(self, key: Key, metadata: ModelMetadata | None) -> None:
        with self._lock:
            self._entries[key] = metadata
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def forget(self, model: str) -> None:
        with self._lock:
            for key in [k for k in self._entries if k[0] == model]:
                del self._entries[key]


def _where(name: str, model: str, signature: str) -> str:
    return f"input '{name}' of model '{model}' (signature '{signature}')"


def _fits(shape: tuple[int, ...], fixed: tuple[int | None, ...] | None) -> bool:
    """Whether ``shape`` matches every dimension the signature fixes (another rank: the server decides,
    unless the signature fixes a dimension wider than 1)."""
    if fixed is None:
        return True
    if len(shape) != len(fixed):
        return not any(f is not None and f > 1 for f in fixed)
    return all(f is None or f == s for f, s in zip(fixed, shape))


def _fit(name: str, value: Any, spec: TensorSpec, where: str) -> tuple[Any, bool]:
    """``value`` as the array to send and whether its dtype was converted; InputError if it does not fit."""
    try:
        array = value if isinstance(value, np.ndarray) else np.asarray(value)
    except (TypeError, ValueError) as error:  # ragged lists and the like
        raise InputError(f"{where} cannot be an array: {error}", input=name, expected=spec.describe()) from None

    sent = describe_array(array)  # what the caller sent, before any conversion

    def refuse(reason: str) -> InputError:
        return InputError(f"{where} takes {spec.describe()}; sent {sent}: {reason}",
                          input=name, expected=spec.describe(), sent=sent)

    converted = False
    wanted, kind = spec.dtype, array.dtype.kind
    if kind == "b" and wanted.kind in "fc" and array.size:
        raise refuse(f"send numbers ({wanted}), not booleans; convert them yourself (array.astype(np.{wanted})) "
                     f"if that is what you mean")
    if wanted == np.dtype(object):
        if kind not in "OSU" and array.size:
            raise refuse("send strings (str or bytes)")
    elif array.dtype != wanted:
        if array.size and kind in "OSUV":
            raise refuse(f"send numbers ({wanted}), not strings or objects")
        if array.size and (kind in "Mm" or not np.can_cast(array.dtype, wanted, "same_kind")):
            raise refuse(f"numpy does not convert {array.dtype} to {wanted} safely; convert it yourself "
                         f"(array.astype(np.{wanted})) if that is what you mean")
        if array.size and kind in "iu" and wanted.kind in "iu":  # same kind, but the values must fit
            info = np.iinfo(wanted)
            if array.min() < info.min or array.max() > info.max:
                raise refuse(f"values outside {wanted}'s range [{info.min}, {info.max}]")
        array, converted = array.astype(wanted), True
    fixed = spec.shape
    if fixed is not None and not _fits(array.shape, fixed):
        if array.ndim != len(fixed):
            raise refuse(f"rank {array.ndim}, the signature's is {len(fixed)}"
                         + (" (one example is a list inside a list)" if array.ndim + 1 == len(fixed) else ""))
        axis, want, size = next((i, f, s) for i, (f, s) in enumerate(zip(fixed, array.shape)) if f is not None and f != s)
        raise refuse(f"dimension {axis} is {size}, the signature fixes it at {want}")
    return array, converted


def fit_inputs(inputs: Mapping[str, Any], metadata: ModelMetadata, signature: str | None,
               model: str) -> tuple[Mapping[str, Any], bool]:
    """The inputs to send, converted where the signature says so, and whether any was converted.

    Names the signature does not have are left for the server to report (its message names
    what is missing and what is extra, as TF Serving's does).
    """
    name = signature or DEFAULT_SIGNATURE
    found = metadata.signatures.get(name)
    if found is None:
        return inputs, False  # the server says which signatures there are
    fitted: dict[str, Any] | None = None
    any_converted = False
    for key, value in inputs.items():
        spec = found.inputs.get(key)
        if spec is None or (type(value) is np.ndarray and value.dtype == spec.dtype and _fits(value.shape, spec.shape)):
            continue  # unknown to the signature (the server reports it), or already right: the common case, kept cheap
        array, converted = _fit(key, value, spec, _where(key, model, name))
        any_converted |= converted
        if array is not value:
            if fitted is None:
                fitted = dict(inputs)
            fitted[key] = array
    return (inputs if fitted is None else fitted), any_converted
