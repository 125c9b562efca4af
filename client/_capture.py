"""Sampled capture of Predict traffic, in TF Serving's own format.

A capture is a folder of TFRecord files of ``PredictionLog`` records (``predict_log`` with the
request and the response; ``log_metadata.model_spec`` names the model, signature and the version
that answered, else the label asked): exactly what ``assets.extra/tf_serving_warmup_requests`` and
TF Serving's request logger hold, so a file serves as warmup records as it is. What TF Serving's
format has no field for (latency, the label asked, the status of a failed call, which call a
shadow copy mirrors) is kept beside each ``<stem>.tfrecord`` in ``<stem>.jsonl``: one JSON line
per record, naming the record by its byte offset. A line is written after its record is flushed,
so a reader (``read_capture``) never follows a line to half a record, even while capture goes on.

Bounded: when the files written exceed ``max_records`` or ``max_bytes``, the oldest are removed
(files rotate at a quarter of either bound, so between 3/4 and all of the bounds stay).
"""

from __future__ import annotations

import json
import logging
import os
import random
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfsk._base.packed import length_delimited, varint
from tfsk._base.records import RecordWriter, record_size

from ._errors import ClientError
from ._requests import model_spec

__all__ = ["CAPTURE_SUFFIX", "SIDECAR_SUFFIX", "Capture", "CaptureStats", "CallRecord", "prediction_log"]

log = logging.getLogger(__name__)

CAPTURE_SUFFIX = ".tfrecord"
SIDECAR_SUFFIX = ".jsonl"
# PredictionLog: log_metadata = 1, predict_log = 6; PredictLog: request = 1, response = 2;
# LogMetadata: model_spec = 1, timestamp_secs = 4 (varint).
_METADATA, _PREDICT_LOG, _REQUEST, _RESPONSE, _TIMESTAMP_KEY = 1, 6, 1, 2, bytes([4 << 3])


@dataclass(frozen=True)
class CallRecord:
    """One Predict call as the client saw it: what was sent and answered, and how it went."""

    model: str
    signature: str
    label: str | None
    version: int | None  # the version that answered (else the one asked)
    request: bytes  # a serialized PredictRequest
    response: bytes | None  # a serialized PredictResponse; None when the call failed
    latency_seconds: float
    status: str = "OK"  # the gRPC status code's name
    details: str = ""
    id: str = ""
    shadow_of: str | None = None  # the id of the call this one mirrors
    time: float = 0.0  # when the call was sent (seconds since the epoch)


def prediction_log(call: CallRecord) -> bytes:
    """The serialized PredictionLog of ``call``, put together from its serialized parts (no parse)."""
    spec = model_spec(call.model, call.version, None if call.version is not None else call.label, call.signature)
    metadata = length_delimited(1, spec.SerializeToString())
    metadata += _TIMESTAMP_KEY + varint(int(call.time))
    body = length_delimited(_REQUEST, call.request)
    if call.response is not None:
        body += length_delimited(_RESPONSE, call.response)
    return b"".join((length_delimited(_METADATA, metadata), length_delimited(_PREDICT_LOG, body)))


@dataclass(frozen=True)
class CaptureStats:
    captured: int  # records written
    sampled_out: int  # calls the rate left out
    removed: int  # records removed with the oldest files, to stay within the bounds
    failed: int  # records that could not be written (the error is logged; the caller never sees it)


class Capture:
    """Where and how much Predict traffic a client writes down (``Client(..., capture=Capture(folder))``).

    ``rate``: the share of calls captured (a seeded random choice when ``seed`` is given); shadow
    pairs are captured whole. ``max_records``/``max_bytes``: the most this capture keeps on disk.
    Thread-safe; one capture may serve several clients, so closing a client leaves it open:
    :meth:`close` it when done (every record is flushed as it is written, so a capture left open
    is readable as it stands). Writing never raises into a call: a failure is logged and counted
    (:meth:`stats`). An ``AsyncClient`` writes from its event loop: small appends to the page
    cache, no waiting on the disk.
    """

    def __init__(self, folder: str | os.PathLike[str], *, rate: float = 1.0, max_records: int = 100_000,
                 max_bytes: int = 1 << 30, seed: int | None = None, prefix: str = "calls") -> None:
        if not 0.0 <= rate <= 1.0:
            raise ClientError(f"capture rate {rate} is not a share between 0 and 1 (0.1 captures one call in ten)")
        if max_records < 1 or max_bytes < 1:
            raise ClientError(f"capture bounds max_records={max_records}, max_bytes={max_bytes}: both must be positive")
        self.folder = Path(folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ClientError(f"cannot make the capture folder {self.folder}: {error}; give a folder you can write to") \
                from None
        self.rate, self.max_records, self.max_bytes, self.prefix = rate, max_records, max_bytes, prefix
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        # a name no other capture (another process, another Capture here) picks in the same folder
        self._stem = f"{prefix}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{os.getpid()}-{secrets.token_hex(3)}"
        self._files: deque[tuple[Path, int, int]] = deque()  # closed files: (tfrecord path, records, bytes)
        self._writer: RecordWriter | None = None
        self._sidecar: Any = None
        self._current_records = self._current_bytes = 0
        self._sequence = 0
        self._kept_records = self._kept_bytes = 0
        self._captured = self._sampled_out = self._removed = self._failed = 0
        self._closed = False

    def sampled(self) -> bool:
        """Whether to capture the next call (counts the ones left out)."""
        with self._lock:
            chosen = self.rate >= 1.0 or self._random.random() < self.rate
            if not chosen:
                self._sampled_out += 1
            return chosen

    def write(self, call: CallRecord) -> None:
        """Write one call (the caller decided it is captured); never raises."""
        try:
            record = prediction_log(call)
        except Exception:  # noqa: BLE001 - capture must never fail a call
            log.exception("could not capture a call to %s", call.model)
            with self._lock:
                self._failed += 1
            return
        line = {"offset": 0, "id": call.id, "time": round(call.time, 6), "model": call.model,
                "signature": call.signature, "label": call.label, "version": call.version,
                "latency_seconds": round(call.latency_seconds, 6), "status": call.status}
        if call.details:
            line["details"] = call.details
        if call.shadow_of is not None:
            line["shadow_of"] = call.shadow_of
        size = record_size(len(record))
        with self._lock:
            if self._closed:
                return
            try:
                writer = self._open(size)
                line["offset"] = writer.write(record)
                text = json.dumps(line, separators=(",", ":")) + "\n"
                self._sidecar.write(text)
                self._sidecar.flush()
            except OSError as error:
                log.warning("could not capture a call to %s in %s: %s", call.model, self.folder, error)
                self._failed += 1
                return
            self._captured += 1
            self._current_records += 1
            self._current_bytes += size + len(text)

    def _open(self, size: int) -> RecordWriter:
        full = (self._current_records + 1 > max(1, self.max_records // 4)
                or self._current_bytes + size > max(1, self.max_bytes // 4))
        if self._writer is not None and full and self._current_records:
            self._rotate()
        if self._writer is None:
            self._sequence += 1
            path = self.folder / f"{self._stem}-{self._sequence:05d}{CAPTURE_SUFFIX}"
            self._writer = RecordWriter(path)
            self._sidecar = open(path.with_suffix(SIDECAR_SUFFIX), "a", encoding="utf-8")  # noqa: SIM115
        return self._writer

    def _rotate(self) -> None:
        assert self._writer is not None
        self._writer.close()
        self._sidecar.close()
        self._files.append((self._writer.path, self._current_records, self._current_bytes))
        self._kept_records += self._current_records
        self._kept_bytes += self._current_bytes
        self._writer, self._current_records, self._current_bytes = None, 0, 0
        while self._files and (self._kept_records > self.max_records * 3 // 4 or self._kept_bytes > self.max_bytes * 3 // 4):
            path, records, size = self._files.popleft()
            for stale in (path, path.with_suffix(SIDECAR_SUFFIX)):
                stale.unlink(missing_ok=True)
            self._kept_records -= records
            self._kept_bytes -= size
            self._removed += records

    def stats(self) -> CaptureStats:
        with self._lock:
            return CaptureStats(self._captured, self._sampled_out, self._removed, self._failed)

    def close(self) -> None:
        """Close the open file (what was written stays); later calls are not captured."""
        with self._lock:
            self._closed = True
            if self._writer is not None:
                self._writer.close()
                self._sidecar.close()
                self._writer = None

    def __repr__(self) -> str:
        return f"Capture({str(self.folder)!r}, rate={self.rate})"
