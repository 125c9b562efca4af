"""Warmup records in the form TF Serving replays them before a version becomes AVAILABLE."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

from tfsk._base import layout
from tfsk._base.naming import MAX_WARMUP_RECORDS

from ._errors import ExportError

__all__ = ["WarmupRequest", "read_warmup", "write_warmup"]

WarmupRequest = tuple[str, Mapping[str, np.ndarray]]  # (signature name, inputs)


def write_warmup(version_dir: Path, model_name: str, requests: Sequence[WarmupRequest]) -> Path:
    """Write ``assets.extra/tf_serving_warmup_requests``: one Predict request a record."""
    if len(requests) > MAX_WARMUP_RECORDS:
        raise ExportError(
            f"{len(requests)} warmup requests given; TF Serving fails to load a version with more "
            f"than {MAX_WARMUP_RECORDS}: give fewer example batches"
        )
    path = Path(version_dir) / layout.ASSETS_EXTRA / layout.WARMUP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for signature_name, inputs in requests:
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature_name)
            )
            for name, value in inputs.items():
                request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return path


def read_warmup(version_dir: Path) -> list[prediction_log_pb2.PredictionLog]:
    """Parse the warmup records of a version (empty list when it has none)."""
    path = Path(version_dir) / layout.ASSETS_EXTRA / layout.WARMUP_FILE
    if not path.exists():
        return []
    records = []
    for raw in tf.data.TFRecordDataset(str(path)).as_numpy_iterator():
        log = prediction_log_pb2.PredictionLog()
        log.ParseFromString(raw)
        records.append(log)
    return records
