"""Replaying ``assets.extra/tf_serving_warmup_requests`` while a version loads (TF Serving §8)."""

from __future__ import annotations

import logging
from pathlib import Path

import tensorflow as tf
from google.protobuf.message import DecodeError
from tensorflow_serving.apis import prediction_log_pb2

from tfsk._base import layout
from tfsk._base.naming import MAX_WARMUP_RECORDS

from ._inference import run_classify, run_multi_inference, run_regress
from ._predict import run_predict
from ._servable import Servable
from ._status import StatusError

__all__ = ["run_warmup"]

logger = logging.getLogger(__name__)
_CASE_NUMBERS = {"session_run_log": 5, "predict_streamed_log": 7}


def _records(path: Path):  # type: ignore[no-untyped-def]
    try:
        for raw in tf.data.TFRecordDataset(str(path)):
            yield raw.numpy()
    except tf.errors.DataLossError as error:
        raise StatusError.from_code_number(15, f"{error.message}. Please verify your warmup data is in TFRecord format.") from None


def _replay(servable: Servable, log: prediction_log_pb2.PredictionLog) -> None:
    kind = log.WhichOneof("log_type")
    if kind == "predict_log":
        run_predict(servable, log.predict_log.request)
    elif kind == "classify_log":
        run_classify(servable, log.classify_log.request)
    elif kind == "regress_log":
        run_regress(servable, log.regress_log.request)
    elif kind == "multi_inference_log":
        run_multi_inference(servable, log.multi_inference_log.request)
    elif kind is not None:
        raise StatusError.unimplemented(f"Unsupported log_type for warmup: {_CASE_NUMBERS.get(kind, kind)}")


def run_warmup(servable: Servable, iterations: int) -> int:
    """Replay the version's warmup records; return how many were read. Any error fails the load."""
    path = servable.path / layout.ASSETS_EXTRA / layout.WARMUP_FILE
    if not path.exists():
        return 0
    count = 0
    for raw in _records(path):
        log = prediction_log_pb2.PredictionLog()
        try:
            log.ParseFromString(raw)
        except DecodeError:
            raise StatusError.invalid_argument(f"Failed to parse warmup record: {raw!r} from {path}") from None
        for _ in range(max(iterations, 1)):
            _replay(servable, log)
        count += 1
        if count > MAX_WARMUP_RECORDS:
            raise StatusError.invalid_argument(f"Number of warmup records exceeds the maximum ({MAX_WARMUP_RECORDS}) at {path}")
    logger.info("finished reading warmup data for %s version %d: %d records", servable.name, servable.version, count)
    return count
