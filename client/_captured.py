"""Reading captured traffic back: a capture folder, one of its files, or any TFRecord file of
``PredictionLog`` records (a version's warmup records, TF Serving's request log)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from tfsk._base import layout
from tfsk._base.messages import MESSAGES
from tfsk._base.records import RecordError, read_record_at, read_records, record_size

from ._capture import CAPTURE_SUFFIX, SIDECAR_SUFFIX
from ._codec import decode_tensor
from ._errors import ClientError
from ._requests import predict_request

__all__ = ["CaptureError", "CapturedCall", "read_capture"]

PredictionLog = MESSAGES["PredictionLog"]


class CaptureError(ClientError, ValueError):
    """A capture (or warmup) file that cannot be read: missing, not TFRecord, or a record that is not a PredictionLog."""


@dataclass(frozen=True)
class CapturedCall:
    """One captured Predict call.

    ``request``/``response`` are TF Serving's ``PredictRequest``/``PredictResponse`` messages
    (``response`` is None for a failed call, or a warmup record without one). ``label`` is the
    label the call asked for, ``version`` the version that answered (else the one asked);
    ``status`` the gRPC status code's name (``"OK"``), ``latency_seconds`` None where the file
    does not say (warmup records). ``shadow_of`` is the ``id`` of the call a shadow copy mirrors.
    """

    request: Any
    response: Any | None
    model: str
    signature: str
    label: str | None
    version: int | None
    latency_seconds: float | None
    status: str = "OK"
    details: str = ""
    id: str = ""
    shadow_of: str | None = None
    time: float | None = None
    file: Path | None = None
    offset: int = 0

    @property
    def inputs(self) -> dict[str, np.ndarray]:
        """The request's inputs as numpy arrays."""
        return {name: decode_tensor(tensor) for name, tensor in self.request.inputs.items()}

    @property
    def outputs(self) -> dict[str, np.ndarray] | None:
        """The answer's outputs as numpy arrays (None when there is no answer)."""
        if self.response is None:
            return None
        return {name: decode_tensor(tensor) for name, tensor in self.response.outputs.items()}


def _parse(data: bytes, where: str) -> Any:
    try:
        return PredictionLog.FromString(data)
    except Exception as error:  # noqa: BLE001 - protobuf's DecodeError, or worse for random bytes
        raise CaptureError(f"{where}: a record that is not a PredictionLog ({error}); give a capture folder, a "
                           f"capture file or a warmup file (TFRecord of PredictionLog)") from None


def _plain(path: Path) -> Iterator[CapturedCall]:
    """A TFRecord file of PredictionLog without a sidecar: warmup records, TF Serving's logs."""
    offset = 0
    for data in read_records(path):
        log = _parse(data, f"{path} at byte {offset}")
        here, offset = offset, offset + record_size(len(data))
        if log.WhichOneof("log_type") != "predict_log":
            continue  # classify/regress/multi-inference records: no Predict to replay
        request = log.predict_log.request
        spec = log.log_metadata.model_spec if log.log_metadata.HasField("model_spec") else request.model_spec
        asked = request.model_spec
        version = spec.version.value if spec.HasField("version") else (
            asked.version.value if asked.HasField("version") else None)
        yield CapturedCall(
            request=request, response=log.predict_log.response if log.predict_log.HasField("response") else None,
            model=spec.name or asked.name, signature=spec.signature_name or asked.signature_name,
            label=asked.version_label or spec.version_label or None, version=version, latency_seconds=None,
            time=float(log.log_metadata.timestamp_secs) or None, file=path, offset=here)


def _examples(path: Path) -> Iterator[CapturedCall]:
    """An examples file as ``tfsk export --examples`` takes it (numpy.savez: input name -> batch): one request."""
    try:
        with np.load(path, allow_pickle=False) as arrays:
            inputs = {name: arrays[name] for name in arrays.files}
    except (OSError, ValueError) as error:
        raise CaptureError(f"{path}: cannot read it as an .npz examples file ({error})") from None
    request = MESSAGES["PredictRequest"].FromString(predict_request("", inputs, None, None, None, None))
    yield CapturedCall(request=request, response=None, model="", signature="", label=None, version=None,
                       latency_seconds=None, file=path)


def _lines(sidecar: Path) -> Iterator[dict[str, Any]]:
    with open(sidecar, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.endswith("\n"):
                return  # being written right now: its record is complete, its line not yet
            try:
                yield json.loads(line)
            except json.JSONDecodeError as error:
                raise CaptureError(f"{sidecar} line {number}: not JSON ({error})") from None


def _with_sidecar(path: Path, sidecar: Path) -> Iterator[CapturedCall]:
    file: BinaryIO
    with open(path, "rb") as file:
        for entry in _lines(sidecar):
            offset = int(entry["offset"])
            where = f"{path} at byte {offset}"
            try:
                log = _parse(read_record_at(file, path, offset), where)
            except RecordError as error:
                raise CaptureError(str(error)) from None
            predict_log = log.predict_log
            yield CapturedCall(
                request=predict_log.request, response=predict_log.response if predict_log.HasField("response") else None,
                model=entry["model"], signature=entry.get("signature", ""), label=entry.get("label"),
                version=entry.get("version"), latency_seconds=entry.get("latency_seconds"),
                status=entry.get("status", "OK"), details=entry.get("details", ""), id=entry.get("id", ""),
                shadow_of=entry.get("shadow_of"), time=entry.get("time"), file=path, offset=offset)


def _files(root: Path) -> list[Path]:
    warmup = root / layout.ASSETS_EXTRA / layout.WARMUP_FILE
    if root.is_dir() and warmup.exists():
        return [warmup]
    if root.is_dir():
        found = sorted(p for p in root.iterdir() if p.suffix == CAPTURE_SUFFIX)
        if not found:
            raise CaptureError(f"{root} holds no capture files (*{CAPTURE_SUFFIX}); give the folder a client's "
                               f"Capture wrote to, or one file")
        return found
    if root.suffix == SIDECAR_SUFFIX:
        return [root.with_suffix(CAPTURE_SUFFIX)]
    if not root.exists():
        raise CaptureError(f"{root}: no such file or folder; give a capture folder, a capture file or a warmup file")
    return [root]


def read_capture(path: str | os.PathLike[str]) -> Iterator[CapturedCall]:
    """Every captured Predict call under ``path``, oldest file first.

    ``path``: a capture folder (what ``Capture`` writes to), one of its ``.tfrecord`` files (or
    their ``.jsonl`` sidecars), any TFRecord file of ``PredictionLog`` records, e.g. a version's
    ``assets.extra/tf_serving_warmup_requests`` (read without latency or status), a version
    folder (its warmup records), or an ``.npz`` examples file (one request, no model name).
    Files a bounded capture removes while this reads are skipped. Raises :class:`CaptureError`
    for a file that is not what it should be, naming the file and byte offset.
    """
    for file in _files(Path(path)):
        sidecar = file.with_suffix(SIDECAR_SUFFIX)
        try:
            if sidecar.exists() and file.suffix == CAPTURE_SUFFIX:
                yield from _with_sidecar(file, sidecar)
            elif file.suffix == ".npz":
                yield from _examples(file)
            else:
                yield from _plain(file)
        except FileNotFoundError:
            if Path(path).is_dir():
                continue  # removed by the capture's bounds meanwhile
            raise CaptureError(f"{file}: no such file; give a capture folder, a capture file or a warmup file") \
                from None
        except RecordError as error:
            raise CaptureError(str(error)) from None
