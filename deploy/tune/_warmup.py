"""The largest batch a version's warmup records send: no trial may set ``max_batch_size`` below it.

TF Serving replays ``assets.extra/tf_serving_warmup_requests`` through the batching session while
a version loads, so a warmup request of 8 rows under ``max_batch_size`` 4 fails the load ("Task
size 8 is larger than maximum input batch size 4") — the server never serves.
"""

from __future__ import annotations

from pathlib import Path

from tfsk._base import layout
from tfsk.client import CaptureError, read_capture

__all__ = ["warmup_batch_size"]


def warmup_batch_size(version_dir: Path) -> int:
    """The largest dimension 0 of any input of the version's warmup Predict requests (0: none; an
    unreadable file counts as none, since the server's load then says what is wrong with it)."""
    path = version_dir / layout.ASSETS_EXTRA / layout.WARMUP_FILE
    if not path.is_file():
        return 0
    largest = 0
    try:
        for call in read_capture(path):
            for tensor in call.request.inputs.values():
                if tensor.tensor_shape.dim:
                    largest = max(largest, int(tensor.tensor_shape.dim[0].size))
    except CaptureError:
        pass
    return largest
