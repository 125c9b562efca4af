"""TF-free TFRecord files (tfsk._base.records) are TensorFlow's: each side reads what the other writes."""

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from tfsk._base import layout
from tfsk._base.messages import MESSAGES, PredictionLog
from tfsk._base.records import RecordError, RecordWriter, read_record_at, read_records, record_size, write_records


def _log(value: float, label: str = "") -> bytes:
    log = PredictionLog()
    log.log_metadata.model_spec.name = "m"
    log.log_metadata.model_spec.version_label = label
    request = log.predict_log.request
    request.model_spec.name = "m"
    request.inputs["x"].dtype = 1
    request.inputs["x"].tensor_shape.dim.add(size=2)
    request.inputs["x"].tensor_content = np.array([value, value + 1], np.float32).tobytes()
    log.predict_log.response.outputs["y"].float_val.append(value * 2)
    return log.SerializeToString()


def test_tensorflow_reads_what_we_write_and_tf_serving_parses_it(tmp_path):
    path = tmp_path / "logs.tfrecord"
    records = [_log(1.0, "stable"), _log(2.0), b"", b"x" * 100_000]
    assert write_records(path, records) == 4
    read = [r.numpy() for r in tf.data.TFRecordDataset(str(path))]
    assert read == records
    theirs = prediction_log_pb2.PredictionLog.FromString(read[0])
    assert theirs.WhichOneof("log_type") == "predict_log"
    assert theirs.log_metadata.model_spec.version_label == "stable"
    np.testing.assert_array_equal(tf.make_ndarray(theirs.predict_log.request.inputs["x"]), [1.0, 2.0])
    assert list(theirs.predict_log.response.outputs["y"].float_val) == [2.0]


def test_we_read_what_tensorflow_writes_and_appends_land_where_told(tmp_path):
    path = tmp_path / "tf.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        for value in (b"a", b"", b"b" * 70_000):
            writer.write(value)
    assert list(read_records(path)) == [b"a", b"", b"b" * 70_000]
    with RecordWriter(path) as appender:
        assert appender.offset == path.stat().st_size
        at = appender.write(b"appended")
    with open(path, "rb") as file:
        assert read_record_at(file, path, at) == b"appended"
        assert read_record_at(file, path, record_size(1)) == b""
    assert [r.numpy() for r in tf.data.TFRecordDataset(str(path))][-1] == b"appended"


def test_the_exporters_warmup_records_read_without_tensorflow(demo_base):
    from tfsk.exporter._warmup import read_warmup

    path = demo_base / "composed" / "1" / layout.ASSETS_EXTRA / layout.WARMUP_FILE
    ours = [PredictionLog.FromString(r) for r in read_records(path)]
    theirs = read_warmup(path.parent.parent)
    assert ours and len(ours) == len(theirs)
    for mine, real in zip(ours, theirs, strict=True):
        assert mine.SerializeToString(deterministic=True) == real.SerializeToString(deterministic=True)
        assert set(mine.predict_log.request.inputs) == set(real.predict_log.request.inputs)


@pytest.mark.parametrize(("where", "says"), [(3, "record length.s CRC"), (14, "record.s data CRC")])
def test_a_corrupt_record_names_the_file_and_offset(tmp_path, where, says):
    path = tmp_path / "bad.tfrecord"
    write_records(path, [b"first", b"second record"])
    data = bytearray(path.read_bytes())
    data[record_size(5) + where] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(RecordError, match=rf"bad.tfrecord at byte {record_size(5)}: the {says}"):
        list(read_records(path))


def test_a_truncated_file_says_so(tmp_path):
    path = tmp_path / "cut.tfrecord"
    write_records(path, [b"first", b"second record"])
    path.write_bytes(path.read_bytes()[:-3])
    reader = read_records(path)
    assert next(reader) == b"first"
    with pytest.raises(RecordError, match=rf"cut.tfrecord at byte {record_size(5)}: truncated record"):
        next(reader)


def test_prediction_log_messages_cross_both_ways():
    theirs = prediction_log_pb2.PredictionLog.FromString(_log(3.0, "canary"))
    theirs.log_metadata.saved_model_tags.append("serve")
    theirs.log_metadata.sampling_config.sampling_rate = 0.5
    ours = MESSAGES["PredictionLog"].FromString(theirs.SerializeToString())
    assert ours.SerializeToString(deterministic=True) == theirs.SerializeToString(deterministic=True)
    assert list(ours.log_metadata.saved_model_tags) == ["serve"]
