"""The largest batch a version's warmup records send: no trial may set ``max_batch_size`` below it.

TF Serving replays ``assets.extra/tf_serving_warmup_requests`` through the batching session while
a version loads, so a warmup request of 8 rows under ``max_batch_size`` 4 fails the load ("Task
size 8 is larger than maximum input batch size 4") — the server never serves. Read without
TensorFlow: TFRecord framing (length, its CRC, the record, its CRC) around ``PredictionLog``
messages, whose ``predict_log.request`` is a ``PredictRequest``.
"""

from __future__ import annotations

import struct
from pathlib import Path

from tfsk._base import layout
from tfsk._base.codec import TensorDecodeError
from tfsk._base.messages import MESSAGES
from tfsk._base.wire import fields

__all__ = ["warmup_batch_size"]

_LENGTH_WIRE = 2
_PREDICT_LOG = 6  # PredictionLog.predict_log (classify, regress and multi-inference logs carry examples)
_REQUEST = 1  # PredictLog.request
_HEADER, _FOOTER = 12, 4  # uint64 length + uint32 masked CRC; uint32 masked CRC


def warmup_batch_size(version_dir: Path) -> int:
    """The largest dimension 0 of any input of the version's warmup Predict requests (0: none, or unreadable:
    the server then says what is wrong with the file itself)."""
    try:
        data = (version_dir / layout.ASSETS_EXTRA / layout.WARMUP_FILE).read_bytes()
    except OSError:
        return 0
    largest, offset = 0, 0
    try:
        while offset + _HEADER <= len(data):
            (length,) = struct.unpack_from("<Q", data, offset)
            record = memoryview(data)[offset + _HEADER: offset + _HEADER + length]
            offset += _HEADER + length + _FOOTER
            largest = max(largest, _predict_rows(record))
    except (TensorDecodeError, ValueError):
        return largest
    return largest


def _predict_rows(record: memoryview) -> int:
    rows = 0
    for number, wire, log in fields(record):
        if number != _PREDICT_LOG or wire != _LENGTH_WIRE:
            continue
        for inner, inner_wire, request in fields(log):
            if inner == _REQUEST and inner_wire == _LENGTH_WIRE:
                message = MESSAGES["PredictRequest"].FromString(bytes(request))
                for tensor in message.inputs.values():
                    dims = tensor.tensor_shape.dim
                    if dims:
                        rows = max(rows, int(dims[0].size))
    return rows
