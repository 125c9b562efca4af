"""The requests a canary is judged on: captured traffic, else the version's warmup records (where the
exporter keeps its examples), else requests made up from the signature with a fixed seed.

Every source gives ``(signature, inputs)`` pairs for one model; the replay sends each pair to
``stable`` and to ``canary``, so both answer exactly the same questions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tfsk._base import layout
from tfsk._base.naming import DEFAULT_SIGNATURE

from ._session import RolloutError

__all__ = ["GateRequest", "RequestSet", "captured_requests", "synthesized_requests", "warmup_requests"]

_SYNTHESIZED_BATCH = 8  # rows per made-up request: enough values for a distribution, small enough to be quick
_SEED = 23


@dataclass(frozen=True)
class GateRequest:
    signature: str
    inputs: Mapping[str, np.ndarray]


@dataclass(frozen=True)
class RequestSet:
    """The requests and where they came from (said in the report)."""

    requests: tuple[GateRequest, ...]
    source: str

    def order(self, count: int) -> list[int]:
        """Which request to send, ``count`` times (at least each once): round again when there are fewer,
        since percentiles need enough samples; the comparisons count each request once."""
        return [i % len(self.requests) for i in range(max(count, len(self.requests)))] if self.requests else []

    def topped_up(self, more: RequestSet, count: int) -> RequestSet:
        """These requests, then as many of ``more`` as make ``count`` distinct ones."""
        if len(self.requests) >= count:
            return self
        added = more.requests[:count - len(self.requests)]
        return RequestSet(self.requests + added, f"{self.source} and {len(added)} {more.source}")


def _from_predict_requests(model: str, requests: Iterable[Any]) -> list[GateRequest]:
    """``PredictRequest`` messages of ``model`` as gate requests (records of other models are skipped)."""
    from tfsk.client import decode_tensor

    found = []
    for request in requests:
        if request is None or (request.model_spec.name and request.model_spec.name != model):
            continue
        inputs = {name: decode_tensor(tensor) for name, tensor in request.inputs.items()}
        found.append(GateRequest(request.model_spec.signature_name or DEFAULT_SIGNATURE, inputs))
    return found


def captured_requests(model: str, path: Path) -> RequestSet:
    """The Predict requests of ``model`` in a capture (a file or a folder of them)."""
    from tfsk.client import read_capture

    if not Path(path).exists():
        raise RolloutError(f"--capture {path}: no such file or folder; give a capture written by the client "
                           f"(Client(..., capture=...)) or a PredictionLog TFRecord file", resumable=False)
    requests = _from_predict_requests(model, (call.request for call in read_capture(path)))
    if not requests:
        raise RolloutError(f"--capture {path} holds no Predict request of {model!r}: capture traffic to {model} "
                           f"first, or leave --capture out to replay the warmup records", resumable=False)
    return RequestSet(tuple(requests), f"captured traffic ({len(requests)} requests from {path})")


def warmup_requests(model: str, version_dir: Path, shown_from: Path | None = None) -> RequestSet | None:
    """The warmup records of a version (the exporter writes its examples there), or None without any;
    the report names the file relative to ``shown_from`` when it is under it."""
    from google.protobuf.message import DecodeError

    from tfsk._base.messages import PredictionLog
    from tfsk._base.records import RecordError, read_records

    path = version_dir / layout.ASSETS_EXTRA / layout.WARMUP_FILE
    if not path.is_file():
        return None
    try:
        logs = [PredictionLog.FromString(data) for data in read_records(path)]
    except (RecordError, DecodeError) as error:
        raise RolloutError(f"the warmup records {path} cannot be read ({error}); give requests with --capture",
                           resumable=False) from None
    requests = _from_predict_requests(model, (log.predict_log.request for log in logs
                                              if log.WhichOneof("log_type") == "predict_log"))
    if not requests:
        return None
    shown = path.relative_to(shown_from) if shown_from is not None and path.is_relative_to(shown_from) else path
    return RequestSet(tuple(requests), f"warmup records ({len(requests)} requests from {shown})")


def synthesized_requests(signatures: Mapping[str, Any], count: int, seed: int = _SEED) -> RequestSet:
    """``count`` requests to ``serving_default`` made up from its input specs (``tfsk.client`` specs),
    with a fixed seed so two analyses of the same versions send the same numbers."""
    signature = signatures.get(DEFAULT_SIGNATURE)
    if signature is None:
        raise RolloutError(f"the model has no {DEFAULT_SIGNATURE} signature to make requests for; give captured "
                           f"traffic with --capture", resumable=False)
    rng = np.random.default_rng(seed)
    requests = []
    for _ in range(count):
        inputs = {}
        for name, spec in signature.inputs.items():
            dims = spec.shape if spec.shape is not None else (None,)
            shape = tuple(_SYNTHESIZED_BATCH if i == 0 else (d or 1) for i, d in enumerate(dims))
            inputs[name] = _values(rng, spec.dtype, shape)
        requests.append(GateRequest(DEFAULT_SIGNATURE, inputs))
    return RequestSet(tuple(requests), f"requests made up from {DEFAULT_SIGNATURE} (seed {seed})")


def _values(rng: np.random.Generator, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    if dtype.kind in "OSU":
        return np.full(shape, b"", dtype=object)
    if dtype.kind == "b":
        return rng.integers(0, 2, shape).astype(bool)
    if dtype.kind in "iu":
        return rng.integers(0, 10, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)
