"""Captured Predict traffic: TF Serving's PredictionLog TFRecords, read back without TensorFlow by
``read_capture``, by ``tf.data`` and TF Serving's own classes, and by a devserver as warmup records."""

import json
import shutil

import numpy as np
import pytest
import tensorflow as tf
from server_process import ServerProcess
from tensorflow_serving.apis import prediction_log_pb2

from tfsk._base import layout
from tfsk._base.messages import MESSAGES
from tfsk.client import Capture, CaptureError, Client, InvalidArgumentError, read_capture
from tfsk.client._capture import CallRecord


def _features(seed, rows=2):
    return {"features": np.random.default_rng(seed).standard_normal((rows, 10)).astype(np.float32)}


def test_a_capture_reads_back_with_each_calls_figures_and_tensorflow_reads_it(demo_server, tmp_path):
    capture = Capture(tmp_path / "captured")
    with Client(demo_server.address, capture=capture) as serving:
        answers = [serving.predict("tower_a", _features(seed), label="stable") for seed in range(3)]
        answers.append(serving.predict("tower_b", _features(9), version=1))
        with pytest.raises(InvalidArgumentError):
            serving.predict("tower_a", _features(4), label="no_such_label")
    capture.close()
    calls = list(read_capture(tmp_path / "captured"))
    assert [(c.model, c.label, c.version, c.status) for c in calls] == [
        ("tower_a", "stable", 1, "OK")] * 3 + [("tower_b", None, 1, "OK"), ("tower_a", "no_such_label", None, "INVALID_ARGUMENT")]
    assert all(c.signature == "serving_default" and 0 < c.latency_seconds < 30 for c in calls)
    assert calls[-1].response is None and "Unrecognized servable version label" in calls[-1].details
    for seed, (call, answer) in enumerate(zip(calls, answers, strict=False)):
        np.testing.assert_array_equal(call.inputs["features"], _features(seed if seed < 3 else 9)["features"])
        np.testing.assert_array_equal(call.outputs["embedding"], answer["embedding"])
        assert call.request.model_spec.version_label == ("stable" if seed < 3 else "")
    assert capture.stats().captured == 5

    (file,) = (tmp_path / "captured").glob("*.tfrecord")
    logs = [prediction_log_pb2.PredictionLog.FromString(r.numpy()) for r in tf.data.TFRecordDataset(str(file))]
    assert len(logs) == 5 and all(log.WhichOneof("log_type") == "predict_log" for log in logs)
    assert logs[0].log_metadata.model_spec.name == "tower_a" and logs[0].log_metadata.model_spec.version.value == 1
    assert logs[-1].log_metadata.model_spec.version_label == "no_such_label"
    np.testing.assert_array_equal(tf.make_ndarray(logs[1].predict_log.request.inputs["features"]), _features(1)["features"])
    np.testing.assert_array_equal(tf.make_ndarray(logs[1].predict_log.response.outputs["embedding"]), answers[1]["embedding"])
    assert [json.loads(line)["status"] for line in file.with_suffix(".jsonl").read_text().splitlines()][-1] == "INVALID_ARGUMENT"


def test_a_capture_file_is_a_devservers_warmup_file(demo_server, demo_base, tmp_path):
    capture = Capture(tmp_path / "captured")
    with Client(demo_server.address, capture=capture) as serving:
        for seed in range(4):
            serving.predict("tower_c", {"features": np.full((1, 5), seed, np.float32)})
    capture.close()
    (file,) = (tmp_path / "captured").glob("*.tfrecord")
    version = tmp_path / "models" / "tower_c" / "1"
    shutil.copytree(demo_base / "tower_c" / "1", version)
    shutil.copy(file, version / layout.ASSETS_EXTRA / layout.WARMUP_FILE)
    with ServerProcess("--model_name=tower_c", f"--model_base_path={version.parent}") as server, \
            Client(server.address) as fresh:
        assert fresh.wait_until_available("tower_c", 1, timeout=60) == 1
        assert "tower_c version 1: 4 records" in server.log()
    assert [c.model for c in read_capture(version / layout.ASSETS_EXTRA / layout.WARMUP_FILE)] == ["tower_c"] * 4


def _record(number):
    request = MESSAGES["PredictRequest"](output_filter=[str(number)])
    request.model_spec.name = "m"
    return CallRecord("m", "serving_default", "stable", 1, request.SerializeToString(), b"", 0.01, id=str(number))


def test_a_capture_stays_within_its_bounds_keeping_the_newest(tmp_path):
    capture = Capture(tmp_path, max_records=8)
    for number in range(40):
        capture.write(_record(number))
    capture.close()
    kept = [c.id for c in read_capture(tmp_path)]
    assert 6 <= len(kept) <= 8 and kept == [str(n) for n in range(40 - len(kept), 40)]
    stats = capture.stats()
    assert (stats.captured, stats.removed) == (40, 40 - len(kept))
    assert len(list(tmp_path.glob("*.tfrecord"))) == len(list(tmp_path.glob("*.jsonl"))) <= 4

    sized = Capture(tmp_path / "sized", max_bytes=4000)
    for number in range(100):
        sized.write(_record(number))
    sized.close()
    assert sum(p.stat().st_size for p in (tmp_path / "sized").iterdir()) <= 4000


def test_a_sampled_capture_takes_its_share_and_bad_input_says_what_to_give(tmp_path):
    capture = Capture(tmp_path, rate=0.25, seed=3)
    taken = sum(capture.sampled() for _ in range(4000))
    assert 900 < taken < 1100 and capture.stats().sampled_out == 4000 - taken
    with pytest.raises(CaptureError, match="no such file or folder"):
        list(read_capture(tmp_path / "missing"))
    with pytest.raises(CaptureError, match="holds no capture files"):
        list(read_capture(tmp_path))
    (tmp_path / "junk.tfrecord").write_bytes(b"not a tfrecord at all")
    with pytest.raises(CaptureError, match=r"junk.tfrecord at byte 0"):
        list(read_capture(tmp_path))
    with pytest.raises(Exception, match="rate 2 is not a share"):
        Capture(tmp_path, rate=2)
