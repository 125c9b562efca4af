"""Composed models seen from the client: which parts (and part versions) they hold, and whether
the parts inside still compute what the standalone part versions compute.

Plans over metadata, lineage and predictions (see ``_plans``), so ``Client`` and ``AsyncClient``
share them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from tfsk._base.naming import DEFAULT_SIGNATURE, PART_SIGNATURE_PREFIX
from tfsk._base.naming import INPUT_SEPARATOR as SEPARATOR

from ._calls import lineage, metadata, predict
from ._errors import InputError, ServingError
from ._plans import Plan
from ._types import (
    ConsistencyReport,
    ModelMetadata,
    PartCheck,
    PartInfo,
    Prediction,
    TensorSpec,
)

if TYPE_CHECKING:
    from ._base import BaseClient

__all__ = ["check_consistency", "parts"]


def _parts(found: ModelMetadata, recorded: Mapping[str, Any] | None) -> list[PartInfo]:
    versions = {p["name"]: p["version"] for p in (recorded or {}).get("parts", [])}
    order = list(versions) or sorted(s[len(PART_SIGNATURE_PREFIX):] for s in found.signatures
                                     if s.startswith(PART_SIGNATURE_PREFIX))
    listed = []
    for name in order:
        signature = found.signatures.get(PART_SIGNATURE_PREFIX + name)
        if signature is not None:
            listed.append(PartInfo(name, PART_SIGNATURE_PREFIX + name, versions.get(name), signature.inputs,
                                   signature.outputs))
    return listed


def parts(client: BaseClient, model: str, *, version: int | None = None,
          label: str | None = None) -> Plan[list[PartInfo]]:
    """The ``part_<name>`` signatures of a composed model, with the part versions its lineage names
    (empty for a model that is not composed)."""
    found = yield from metadata(client, model, version=version, label=label)
    return _parts(found, (yield from lineage(client, model, version=found.version)))


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


def _check_part(client: BaseClient, model: str, pinned: int, part: PartInfo, given: Mapping[str, Any],
                composed: Prediction, atol: float) -> Plan[PartCheck]:
    missing = [f"{part.name}{SEPARATOR}{k}" for k in part.inputs if f"{part.name}{SEPARATOR}{k}" not in given]
    if missing:
        raise InputError(f"inputs for {model} lack {', '.join(missing)} (keys are the composed model's input names)")
    part_inputs = {k: given[f"{part.name}{SEPARATOR}{k}"] for k in part.inputs}
    problems: list[str] = []
    sides: dict[str, Prediction] = {}
    standalone = f"standalone {part.name}@{part.version if part.version is not None else 'latest'}"
    for side, (name, version, signature) in {"part signature": (model, pinned, part.signature),
                                             standalone: (part.name, part.version, None)}.items():
        try:
            answer = yield from predict(client, name, part_inputs, version=version, signature=signature)
        except ServingError as error:
            problems.append(f"the {side} could not be asked: {error}")
            continue
        sides[side if side != standalone else f"standalone {part.name}@{answer.version}"] = answer
    differences: dict[str, float] = {}
    for output in part.outputs:
        inside = composed.get(f"{part.name}{SEPARATOR}{output}")
        if inside is None:
            problems.append(f"{model}@{pinned} has no output '{part.name}{SEPARATOR}{output}'")
            continue
        for side, answer in sides.items():
            if output in answer:
                differences[f"{output} ({side})"] = _difference(inside, answer[output])
            else:
                problems.append(f"the {side} has no output '{output}'")
    if any(d > atol for d in differences.values()):
        verdict = "differs"
    else:
        verdict = "could_not_compare" if problems else "consistent"
    return PartCheck(part.name, part.version, differences, verdict, "; ".join(problems) or None)  # type: ignore[arg-type]


def check_consistency(client: BaseClient, model: str, inputs: Mapping[str, Any] | None = None, *,
                      version: int | None = None, label: str | None = None,
                      atol: float = 1e-5) -> Plan[ConsistencyReport]:
    """Run the composed model and the standalone part versions it was built from on the same inputs.

    ``inputs`` are keyed by the composed model's input names (made up from its signature when
    omitted). Each part's outputs inside the composed model, through its ``part_<name>``
    signature, and from the standalone part model at the lineage's version must agree within
    ``atol``. The report's ``verdict`` tells a part that differs from one that could not be asked
    (``could_not_compare``) and from a model that is not composed (``not_composed``). ``label``
    checks the version it names (``stable``); the label is read once, so a label that moves meanwhile
    does not mix two versions in one report.
    """
    found = yield from metadata(client, model, version=version, label=label)
    pinned = found.version  # every call below asks this exact version
    recorded = yield from lineage(client, model, version=pinned)
    listed = _parts(found, recorded)
    if not listed:
        return ConsistencyReport(model, pinned, [], atol, recorded)
    signature = found.signatures[DEFAULT_SIGNATURE]
    rng = np.random.default_rng(0)
    given = dict(inputs) if inputs is not None else {k: _example(v, rng) for k, v in signature.inputs.items()}
    composed = yield from predict(client, model, given, version=pinned)
    checks = []
    for part in listed:
        checks.append((yield from _check_part(client, model, pinned, part, given, composed, atol)))
    return ConsistencyReport(model, pinned, checks, atol, recorded)
