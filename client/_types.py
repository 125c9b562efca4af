"""Plain, typed results: what a model takes and returns, and how its versions are doing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["ConsistencyReport", "ModelMetadata", "PartCheck", "PartInfo", "Prediction", "Signature", "TensorSpec", "VersionStatus"]


@dataclass(frozen=True)
class TensorSpec:
    """A signature tensor: numpy dtype (object for strings) and shape (``None`` = any size)."""

    dtype: np.dtype
    shape: tuple[int | None, ...] | None
    tensor_name: str = ""

    def describe(self) -> str:
        name = "string" if self.dtype == np.dtype(object) else str(self.dtype)
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
    """How one part's outputs inside the composed model compare with the standalone part version."""

    name: str
    version: int | None
    max_abs_difference: dict[str, float]
    consistent: bool
    problem: str | None = None


@dataclass(frozen=True)
class ConsistencyReport:
    model: str
    version: int
    parts: list[PartCheck]
    tolerance: float
    lineage: dict[str, Any] | None = None

    @property
    def consistent(self) -> bool:
        return all(p.consistent for p in self.parts)
