"""Recorded requests to send: a version's warmup records (``--examples``) or captured traffic
(``--replay``), both TFRecord files of TF Serving ``PredictionLog``, read without TensorFlow by
the client's :func:`tfsk.client.read_capture`."""

from __future__ import annotations

import os
from pathlib import Path

from tfsk._base import layout
from tfsk._base.messages import MESSAGES

from ._errors import BenchError

__all__ = ["requests_from_records"]


def requests_from_records(path: str | os.PathLike[str], model: str, signature: str, version: int | None = None,
                          label: str | None = None, what: str = "--replay", limit: int = 100_000) -> list[bytes]:
    """The Predict requests the records hold (at most ``limit``), serialized, each addressed to
    ``model``'s ``signature`` (and ``version`` or ``label``) whatever model the records named.
    ``path`` may be a version folder (its warmup records), a capture folder or one file. Calls the
    capture says failed, and shadow copies (mirrors of a call another label answered), are left
    out: the bench replays the traffic users sent, not its echoes or its errors."""
    from tfsk.client import ClientError, read_capture

    where = Path(path)
    warmup = where / layout.ASSETS_EXTRA / layout.WARMUP_FILE
    if where.is_dir() and warmup.exists():
        where = warmup
    if not where.exists():
        raise BenchError(f"{what} {path}: no such file or folder")
    spec = MESSAGES["ModelSpec"](name=model, signature_name=signature)
    if version is not None:
        spec.version.value = version
    if label is not None:
        spec.version_label = label
    found = []
    try:
        for call in read_capture(where):
            if call.status != "OK" or call.shadow_of is not None:
                continue
            request = MESSAGES["PredictRequest"].FromString(call.request.SerializeToString())
            request.model_spec.CopyFrom(spec)
            found.append(bytes(request.SerializeToString()))
            if len(found) >= limit:
                break
    except (ClientError, OSError, ValueError) as error:
        raise BenchError(f"{what} {path}: cannot read its records: {error}") from None
    if not found:
        raise BenchError(f"{what} {path}: holds no Predict requests")
    return found
