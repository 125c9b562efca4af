"""Plain descriptions of signatures: what was asked for, what was written, what lineage records."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SignatureSpec", "TensorSpecInfo"]

Shape = tuple[int | None, ...]


@dataclass(frozen=True)
class TensorSpecInfo:
    """One named signature tensor: numpy-style dtype name and shape (``None`` = any size)."""

    dtype: str
    shape: Shape | None  # None: unknown rank

    def to_json(self) -> dict[str, Any]:
        return {"dtype": self.dtype, "shape": None if self.shape is None else list(self.shape)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TensorSpecInfo:
        shape = data.get("shape")
        return cls(str(data["dtype"]), None if shape is None else tuple(shape))

    def describe(self) -> str:
        if self.shape is None:
            return f"{self.dtype}[?]"
        dims = ",".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.dtype}[{dims}]"

    def compatible_with(self, other: TensorSpecInfo) -> bool:
        """Same dtype and rank, and equal sizes wherever both sizes are known."""
        if self.dtype != other.dtype or self.shape is None or other.shape is None:
            return self.dtype == other.dtype and self.shape == other.shape
        if len(self.shape) != len(other.shape):
            return False
        return all(a is None or b is None or a == b for a, b in zip(self.shape, other.shape))


@dataclass(frozen=True)
class SignatureSpec:
    """A signature's named inputs and outputs (method is always ``tensorflow/serving/predict``)."""

    inputs: dict[str, TensorSpecInfo] = field(default_factory=dict)
    outputs: dict[str, TensorSpecInfo] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "inputs": {k: v.to_json() for k, v in sorted(self.inputs.items())},
            "outputs": {k: v.to_json() for k, v in sorted(self.outputs.items())},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SignatureSpec:
        return cls(
            {k: TensorSpecInfo.from_json(v) for k, v in data.get("inputs", {}).items()},
            {k: TensorSpecInfo.from_json(v) for k, v in data.get("outputs", {}).items()},
        )
