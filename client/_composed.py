"""Composed models seen from the client: which parts (and part versions) they hold, and whether
the parts inside still compute what the standalone part versions compute."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from tfsk._base.naming import INPUT_SEPARATOR as SEPARATOR
from tfsk._base.naming import PART_SIGNATURE_PREFIX

from ._errors import ServingError
from ._types import ConsistencyReport, PartCheck, PartInfo, TensorSpec

if TYPE_CHECKING:
    from ._client import Client

__all__ = ["check_consistency", "list_parts"]


def _part_versions(lineage: Mapping[str, Any] | None) -> dict[str, int]:
    return {p["name"]: p["version"] for p in (lineage or {}).get("parts", [])}


def list_parts(client: Client, model: str, *, version: int | None = None, label: str | None = None) -> list[PartInfo]:
    """The ``part_<name>`` signatures of a composed model, with the part versions its lineage names."""
    metadata = client.metadata(model, version=version, label=label)
    versions = _part_versions(client.lineage(model, version=metadata.version))
    order = list(versions) or sorted(s[len(PART_SIGNATURE_PREFIX):] for s in metadata.signatures if s.startswith(PART_SIGNATURE_PREFIX))
    parts = []
    for name in order:
        signature = metadata.signatures.get(PART_SIGNATURE_PREFIX + name)
        if signature is None:
            continue
        parts.append(PartInfo(name, PART_SIGNATURE_PREFIX + name, versions.get(name), signature.inputs, signature.outputs))
    return parts


def _example(spec: TensorSpec, rng: np.random.Generator, batch: int = 2) -> np.ndarray:
    shape = tuple(batch if i == 0 else (d or 1) for i, d in enumerate(spec.shape or (None,)))
    if spec.dtype == np.dtype(object):
        return np.full(shape, b"", dtype=object)
    if spec.dtype.kind in "iub":
        return rng.integers(0, 2 if spec.dtype.kind == "b" else 10, shape).astype(spec.dtype)
    return rng.standard_normal(shape).astype(spec.dtype)


def _difference(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return float("inf")
    if a.dtype.kind in "fc" and b.dtype.kind in "fc":
        return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0
    return 0.0 if np.array_equal(a, b) else float("inf")


def check_consistency(client: Client, model: str, inputs: Mapping[str, Any] | None = None, *,
                      version: int | None = None, atol: float = 1e-5) -> ConsistencyReport:
    """Run the composed model and the standalone part versions it was built from on the same inputs.

    ``inputs`` are keyed by the composed model's input names (made up from its signature when
    omitted). Each part's outputs inside the composed model, through its ``part_<name>``
    signature, and from the standalone part model at the lineage's version must agree within
    ``atol``.
    """
    metadata = client.metadata(model, version=version)
    pinned = metadata.version  # every call below asks this exact version
    signature = metadata.signatures["serving_default"]
    rng = np.random.default_rng(0)
    given = dict(inputs) if inputs is not None else {k: _example(v, rng) for k, v in signature.inputs.items()}
    composed = client.predict(model, given, version=pinned)
    lineage = client.lineage(model, version=pinned)
    checks = []
    for part in list_parts(client, model, version=pinned):
        part_inputs = {k: given[f"{part.name}{SEPARATOR}{k}"] for k in part.inputs}
        differences: dict[str, float] = {}
        problem = None
        via_signature = client.predict(model, part_inputs, version=pinned, signature=part.signature)
        try:
            standalone = client.predict(part.name, part_inputs, version=part.version)
        except ServingError as error:
            standalone, problem = None, f"standalone part {part.name}@{part.version} could not be asked: {error}"
        for output in part.outputs:
            inside = composed[f"{part.name}{SEPARATOR}{output}"]
            differences[f"{output} (part signature)"] = _difference(inside, via_signature[output])
            if standalone is not None:
                differences[f"{output} (standalone {part.name}@{standalone.version})"] = _difference(inside, standalone[output])
        consistent = problem is None and all(d <= atol for d in differences.values())
        checks.append(PartCheck(part.name, part.version, differences, consistent, problem))
    return ConsistencyReport(model, pinned, checks, atol, lineage)
