"""Example inputs: checked against a signature, or made up when the user gave none."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._errors import ExportError
from ._specs import TensorSpecInfo

__all__ = ["Examples", "normalize_examples", "synthesize_examples"]

Batch = Mapping[str, Any]
#: One batch (input name -> array) or several; each batch becomes one warmup request.
Examples = Batch | Sequence[Batch]


def _numpy_dtype(spec: TensorSpecInfo) -> Any:
    return object if spec.dtype == "string" else np.dtype(spec.dtype)


def normalize_examples(examples: Examples, inputs: Mapping[str, TensorSpecInfo], what: str) -> list[dict[str, np.ndarray]]:
    """Check ``examples`` against the signature ``inputs``; return them as a list of batches."""
    batches = [examples] if isinstance(examples, Mapping) else list(examples)
    if not batches:
        raise ExportError(f"{what}: the example list is empty; give at least one batch or none at all")
    normalized = []
    for number, batch in enumerate(batches, 1):
        if set(batch) != set(inputs):
            missing, extra = sorted(set(inputs) - set(batch)), sorted(set(batch) - set(inputs))
            raise ExportError(
                f"{what}: example batch {number} has inputs {sorted(batch)}, expected {sorted(inputs)} "
                f"(missing {missing}, unexpected {extra})"
            )
        arrays = {}
        for name, spec in inputs.items():
            try:
                array = np.asarray(batch[name], dtype=_numpy_dtype(spec))
            except (TypeError, ValueError) as error:
                raise ExportError(f"{what}: example input '{name}' is not {spec.dtype}: {error}") from None
            probe = TensorSpecInfo(spec.dtype, tuple(array.shape))
            if not spec.compatible_with(probe):
                raise ExportError(
                    f"{what}: example input '{name}' has shape {array.shape}, the signature takes {spec.describe()}"
                )
            arrays[name] = array
        normalized.append(arrays)
    return normalized


def synthesize_examples(inputs: Mapping[str, TensorSpecInfo], batch: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
    """Deterministic example inputs for verification when the user gave none."""
    rng = np.random.default_rng(seed)
    examples = {}
    for name, spec in inputs.items():
        shape = tuple(batch if i == 0 else (d or 1) for i, d in enumerate(spec.shape or (None,)))
        if spec.dtype == "string":
            examples[name] = np.full(shape, b"", dtype=object)
        elif spec.dtype == "bool":
            examples[name] = rng.integers(0, 2, shape).astype(bool)
        elif np.issubdtype(np.dtype(spec.dtype), np.integer):
            examples[name] = rng.integers(0, 10, shape).astype(spec.dtype)
        else:
            examples[name] = rng.standard_normal(shape).astype(spec.dtype)
    return examples
