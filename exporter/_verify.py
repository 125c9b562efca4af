"""Check a written SavedModel through the path TF Serving uses, before it is published.

TF Serving loads the MetaGraph tagged ``serve`` into a session and runs SignatureDef tensor
names; so do we (``tf.compat.v1`` loader, a graph of its own). We compare signature names, keys,
dtypes and shapes with what was asked for, outputs on example inputs with the reference, and
replay the warmup records the way TF Serving would at load time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from tfsk._base.naming import DEFAULT_SIGNATURE, MAX_WARMUP_RECORDS

from ._errors import VerificationError
from ._signature_defs import (
    PREDICT_METHOD,
    SERVE_TAG,
    serving_signature_defs,
    signature_spec,
)
from ._specs import SignatureSpec
from ._warmup import read_warmup

__all__ = ["SignatureRun", "verify_saved_model"]


@dataclass
class SignatureRun:
    """Example inputs for one signature and the outputs the source model gave for them."""

    signature: str
    inputs: Mapping[str, np.ndarray]
    expected: Mapping[str, np.ndarray]


@contextmanager
def _quiet_tensorflow_logs() -> Iterator[None]:
    # The v1 loader is deprecated in favour of tf.saved_model.load, which is not what TF Serving
    # runs; its deprecation notice would only confuse a user reading the export log.
    tf_logger = logging.getLogger("tensorflow")
    previous = tf_logger.level
    tf_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        tf_logger.setLevel(previous)


def _compare_layout(found: Mapping[str, Any], expected: Mapping[str, SignatureSpec]) -> list[str]:
    problems = []
    if set(found) != set(expected):
        problems.append(f"signatures are {sorted(found)}, expected {sorted(expected)}")
    for name in sorted(set(found) & set(expected)):
        signature = found[name]
        if signature.method_name != PREDICT_METHOD:
            problems.append(f"signature '{name}' has method {signature.method_name!r}, expected {PREDICT_METHOD!r}")
        spec = signature_spec(signature)
        for side in ("inputs", "outputs"):
            have, want = getattr(spec, side), getattr(expected[name], side)
            if set(have) != set(want):
                problems.append(f"signature '{name}' has {side} {sorted(have)}, expected {sorted(want)}")
                continue
            for key in sorted(want):
                exact = side == "inputs"
                ok = have[key] == want[key] if exact else want[key].compatible_with(have[key])
                if not ok:
                    problems.append(
                        f"signature '{name}' {side[:-1]} '{key}' is {have[key].describe()}, expected {want[key].describe()}"
                    )
    return problems


def _max_difference(actual: np.ndarray, expected: np.ndarray) -> float:
    if actual.dtype.kind in "fc":
        return float(np.max(np.abs(actual - expected))) if actual.size else 0.0
    return 0.0 if np.array_equal(actual, expected) else float("inf")


def _run(session: tf.compat.v1.Session, signature: Any, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    feeds = {signature.inputs[k].name: v for k, v in inputs.items()}
    fetches = {k: v.name for k, v in signature.outputs.items()}
    return session.run(fetches, feeds)


def verify_saved_model(
    version_dir: Path,
    expected: Mapping[str, SignatureSpec],
    runs: Sequence[SignatureRun],
    *,
    atol: float,
    rtol: float,
) -> dict[str, Any]:
    """Raise :class:`VerificationError` listing every difference; return a summary for lineage."""
    records = read_warmup(version_dir)  # eagerly, before the graph of the session below
    if len(records) > MAX_WARMUP_RECORDS:
        raise VerificationError(f"{len(records)} warmup records; TF Serving accepts at most {MAX_WARMUP_RECORDS}")
    graph = tf.Graph()
    with _quiet_tensorflow_logs(), tf.compat.v1.Session(graph=graph) as session:
        try:
            meta_graph = tf.compat.v1.saved_model.loader.load(session, [SERVE_TAG], str(version_dir))
        except Exception as error:
            raise VerificationError(f"the written SavedModel does not load as TF Serving loads it: {error}") from error
        signatures = serving_signature_defs(meta_graph)
        problems = _compare_layout(signatures, expected)
        if problems:
            raise VerificationError("the written SavedModel differs from what was asked for: " + "; ".join(problems))

        differences: dict[str, float] = {}
        for run in runs:
            actual = _run(session, signatures[run.signature], run.inputs)
            for key, want in run.expected.items():
                got = actual[key]
                got = np.array(got, dtype=object) if isinstance(got, bytes) else np.asarray(got)
                if got.shape != np.shape(want):
                    problems.append(f"'{run.signature}' output '{key}' has shape {got.shape}, expected {np.shape(want)}")
                    continue
                difference = _max_difference(got, np.asarray(want))
                differences[f"{run.signature}/{key}"] = max(difference, differences.get(f"{run.signature}/{key}", 0.0))
                if got.dtype.kind in "fc":
                    close = np.allclose(got, want, atol=atol, rtol=rtol)
                else:
                    close = difference == 0.0
                if not close:
                    problems.append(
                        f"'{run.signature}' output '{key}' differs from the source model by up to "
                        f"{difference:.3g} (tolerance atol={atol}, rtol={rtol})"
                    )
        if problems:
            raise VerificationError("the written SavedModel computes something else: " + "; ".join(problems))

        for number, record in enumerate(records, 1):
            request = record.predict_log.request
            name = request.model_spec.signature_name or DEFAULT_SIGNATURE
            try:
                _run(session, signatures[name], {k: tf.make_ndarray(v) for k, v in request.inputs.items()})
            except Exception as error:
                raise VerificationError(
                    f"warmup record {number} (signature '{name}') fails, so TF Serving would refuse to load "
                    f"this version: {type(error).__name__}: {error}"
                ) from error
    return {
        "loader": "tf.compat.v1.saved_model.loader (as TF Serving)",
        "signatures": sorted(signatures),
        "max_abs_difference": differences,
        "tolerance": {"atol": atol, "rtol": rtol},
        "warmup_records_replayed": len(records),
    }
