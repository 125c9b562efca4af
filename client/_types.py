"""Plain, typed results: what a model takes and returns, and how its versions are doing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

__all__ = ["ConsistencyReport", "ModelMetadata", "PartCheck", "PartInfo", "Prediction", "Signature", "TensorSpec",
           "Verdict", "VersionStatus", "describe_array"]

#: what a consistency check found: ``consistent``; ``differs`` (a part computes something else);
#: ``could_not_compare`` (a side could not be asked, nothing found to differ); ``not_composed``.
Verdict = Literal["consistent", "differs", "could_not_compare", "not_composed"]


def _dtype_name(dtype: np.dtype) -> str:
    return "string" if dtype == np.dtype(object) or dtype.kind in "SU" else str(dtype)


def describe_array(array: np.ndarray) -> str:
    """``float64[1,5]``: an array in the notation :meth:`TensorSpec.describe` uses."""
    return f"{_dtype_name(array.dtype)}[{','.join(str(d) for d in array.shape)}]"


@dataclass(frozen=True)
class TensorSpec:
    """A signature tensor: numpy dtype (object for strings) and shape (``None`` = any size)."""

    dtype: np.dtype
    shape: tuple[int | None, ...] | None
    tensor_name: str = ""

    def describe(self) -> str:
        name = _dtype_name(self.dtype)
        if self.shape is None:
            return f"{name}[?]"
        return f"{name}[{','.join('?' if d is None else str(d) for d in self.shape)}]"


@dataclass(frozen=True)
class Signature:
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]
    method: str


@dataclass(frozen=True)
class ModelMetadata:
    name: str
    version: int
    signatures: dict[str, Signature]


@dataclass(frozen=True)
class VersionStatus:
    """One version as GetModelStatus reports it (``state``: START, LOADING, AVAILABLE, UNLOADING, END)."""

    version: int
    state: str
    error_code: str = "OK"
    error_message: str = ""


class Prediction(dict):  # type: ignore[type-arg]
    """Output name -> numpy array, plus the version and signature that answered."""

    def __init__(self, outputs: dict[str, np.ndarray], *, model: str, version: int, signature: str) -> None:
        super().__init__(outputs)
        self.model = model
        self.version = version
        self.signature = signature

    def __repr__(self) -> str:
        return f"Prediction({self.model}@{self.version}/{self.signature}: {dict.__repr__(self)})"


@dataclass(frozen=True)
class PartInfo:
    """A part of a composed model: its per-part signature and the part version baked in."""

    name: str
    signature: str
    version: int | None
    inputs: dict[str, TensorSpec] = field(default_factory=dict)
    outputs: dict[str, TensorSpec] = field(default_factory=dict)


@dataclass(frozen=True)
class PartCheck:
    """How one part's outputs inside the composed model compare with the standalone part version.

    ``verdict`` is ``consistent``, ``differs`` (some output is further than the tolerance) or
    ``could_not_compare`` (``problem`` says which side could not be asked; nothing found to differ).
    """

    name: str
    version: int | None
    max_abs_difference: dict[str, float]
    verdict: Verdict
    problem: str | None = None

    @property
    def consistent(self) -> bool:
        return self.verdict == "consistent"


@dataclass(frozen=True)
class ConsistencyReport:
    """A composed model version checked part by part; ``verdict`` sums it up (see :data:`Verdict`).

    A part that differs outweighs one that could not be compared; a model without part signatures
    is ``not_composed`` (and has no parts).
    """

    model: str
    version: int
    parts: list[PartCheck]
    tolerance: float
    lineage: dict[str, Any] | None = None

    @property
    def verdict(self) -> Verdict:
        verdicts = {p.verdict for p in self.parts}
        if not verdicts:
            return "not_composed"
        for verdict in ("differs", "could_not_compare"):
            if verdict in verdicts:
                return verdict
        return "consistent"

    @property
    def consistent(self) -> bool:
        return self.verdict == "consistent"
