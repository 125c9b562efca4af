"""Find and load exported part versions for assembly."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import tensorflow as tf

from tfsk._base import layout
from tfsk._base.naming import DEFAULT_SIGNATURE

from ._errors import ExportError, PartNotFoundError, check_name
from ._lineage import read_lineage
from ._specs import TensorSpecInfo

__all__ = ["LoadedPart", "PartRef", "load_part", "resolve_version"]

LATEST = "latest"


@dataclass(frozen=True)
class PartRef:
    """``name@version``, ``name@latest`` or ``name`` (latest)."""

    name: str
    version: int | None = None  # None: the newest complete version

    @classmethod
    def parse(cls, text: str) -> PartRef:
        name, _, version = text.partition("@")
        check_name(name, "part name")
        if not version or version == LATEST:
            return cls(name)
        parsed = layout.parse_version_reference(version)
        if parsed is None:
            raise ExportError(f"part reference {text!r}: version must be a positive integer or 'latest'")
        return cls(name, parsed)

    def __str__(self) -> str:
        return f"{self.name}@{LATEST if self.version is None else self.version}"


def _spec(tensor_spec: tf.TensorSpec) -> TensorSpecInfo:
    shape = None if tensor_spec.shape.rank is None else tuple(tensor_spec.shape.as_list())
    return TensorSpecInfo(tensor_spec.dtype.name, shape)


@dataclass
class LoadedPart:
    """A part version loaded with ``tf.saved_model.load``, seen through its ``serving_default``."""

    name: str
    version: int
    path: Path
    loaded: Any
    signature: Any
    inputs: dict[str, TensorSpecInfo]
    outputs: dict[str, TensorSpecInfo]
    lineage: dict[str, Any] | None

    def width(self, output: str) -> int:
        """Features this output contributes to the concatenation (all non-batch dims flattened)."""
        shape = self.outputs[output].shape
        if shape is None or any(d is None for d in shape[1:]):
            raise ExportError(
                f"part '{self.name}' output '{output}' has shape {self.outputs[output].describe()}; "
                "concatenation needs every dimension but the batch known"
            )
        return math.prod(cast("tuple[int, ...]", shape[1:])) if len(shape) > 1 else 1  # no None: checked above

    def __call__(self, inputs: dict[str, Any]) -> dict[str, Any]:
        return self.signature(**inputs)


def resolve_version(
    base: Path, name: str, version: int | None, *, what: str = "part", hint: str = "'tfsk export part'"
) -> layout.VersionDir:
    """``base/name``'s complete ``version`` (None: the newest), or :class:`PartNotFoundError` saying what exists."""
    model_dir = base / name
    if not model_dir.is_dir():
        present = sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
        raise PartNotFoundError(
            f"no exported {what} '{name}' under {base} (models there: {present or 'none'}); "
            f"export it first with {hint}"
        )
    complete = [v for v in layout.list_versions(model_dir) if v.complete]
    available = [v.version for v in complete]
    if version is None:
        if not complete:
            raise PartNotFoundError(f"{what} '{name}' has no complete version in {model_dir}; export it first")
        return complete[-1]
    for found in reversed(complete):
        if found.version == version:
            return found
    raise PartNotFoundError(f"{what} '{name}' has no version {version} in {model_dir}; available versions: {available}")


def load_part(parts_base: str | os.PathLike[str], ref: PartRef) -> LoadedPart:
    found = resolve_version(Path(parts_base), ref.name, ref.version)
    try:
        loaded = tf.saved_model.load(str(found.path))
    except Exception as error:
        raise ExportError(f"part {ref.name}@{found.version} at {found.path} does not load: {error}") from error
    signature = loaded.signatures.get(DEFAULT_SIGNATURE)
    if signature is None:
        raise ExportError(
            f"part {ref.name}@{found.version} has no '{DEFAULT_SIGNATURE}' signature "
            f"(it has {sorted(loaded.signatures)}); export it with 'tfsk export part'"
        )
    inputs = {k: _spec(v) for k, v in signature.structured_input_signature[1].items()}
    outputs = {k: _spec(v) for k, v in signature.structured_outputs.items()}
    return LoadedPart(ref.name, found.version, found.path, loaded, signature, inputs, outputs, read_lineage(found.path))
