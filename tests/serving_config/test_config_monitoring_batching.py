"""monitoring.config and batching parameters: written with their protos in TF Serving's style, validated on read."""

import pytest

from tfsk import serving_config as sc


def test_monitoring_round_trip_in_tf_serving_style(tmp_path):
    settings = sc.MonitoringSettings()
    text = sc.format_monitoring_config(settings)
    assert text == 'prometheus_config { enable: true path: "/monitoring/prometheus/metrics" }\n'
    path = tmp_path / "monitoring.config"
    sc.write_monitoring_config(sc.MonitoringSettings(True, "/metrics"), path, header="by a test")
    assert sc.read_monitoring_config(path) == sc.MonitoringSettings(True, "/metrics")
    assert sc.parse_monitoring_config(text) == settings


def test_monitoring_as_tf_serving_documents_it():
    # serving_config.md writes a comma after the first field; TF Serving's parser accepts it.
    documented = 'prometheus_config {\n  enable: true,\n  path: "/monitoring/prometheus/metrics"\n}\n'
    assert sc.detect_kind(documented) == "monitoring"
    report = sc.validate_text(documented)
    assert report.kind == "monitoring" and report.findings == ()
    # An empty path means TF Serving's default path.
    default = sc.parse_monitoring_config("prometheus_config { enable: true }")
    assert default.prometheus_path == sc.DEFAULT_PROMETHEUS_PATH


@pytest.mark.parametrize("settings, code, severity", [
    (sc.MonitoringSettings(False), "monitoring-disabled", "warning"),
    (sc.MonitoringSettings(True, "metrics"), "prometheus-path", "error"),
    (sc.MonitoringSettings(True, "/v1/metrics"), "prometheus-path", "warning"),
    (sc.MonitoringSettings(True, "/metrics?x=1"), "prometheus-path", "warning"),
])
def test_monitoring_rules(settings, code, severity):
    report = sc.validate_monitoring_settings(settings)
    assert [(f.code, f.severity.value) for f in report.findings] == [(code, severity)]


def test_monitoring_wire_format_matches_tf_serving_field_numbers():
    message = sc.MonitoringSettings(True, "/m").to_proto()
    # prometheus_config = 1 (message) { enable = 1 (bool), path = 2 (string) }
    assert message.SerializeToString() == bytes([0x0A, 6, 0x08, 1, 0x12, 2]) + b"/m"
    assert isinstance(message, sc.MonitoringConfig)
    assert message.DESCRIPTOR.full_name == "tensorflow.serving.MonitoringConfig"


DOCUMENTED_BATCHING = """max_batch_size { value: 128 }
batch_timeout_micros { value: 0 }
max_enqueued_batches { value: 1000000 }
num_batch_threads { value: 8 }
"""


def test_batching_as_tf_serving_documents_it():
    settings = sc.parse_batching_parameters(DOCUMENTED_BATCHING)
    assert settings == sc.BatchingSettings(max_batch_size=128, batch_timeout_micros=0,
                                           max_enqueued_batches=1000000, num_batch_threads=8)
    # Written back, it is the documented text, zero included.
    assert sc.format_batching_parameters(settings) == DOCUMENTED_BATCHING
    assert sc.detect_kind(DOCUMENTED_BATCHING) == "batching"
    assert sc.validate_text(DOCUMENTED_BATCHING).findings == ()


def test_batching_round_trip_every_field(tmp_path):
    settings = sc.BatchingSettings(
        max_batch_size=64, batch_timeout_micros=500, max_enqueued_batches=20, num_batch_threads=3,
        thread_pool_name="pool", enable_large_batch_splitting=True, max_execution_batch_size=32,
        allowed_batch_sizes=(8, 32), pad_variable_length_inputs=True)
    path = tmp_path / "batching.config"
    sc.write_batching_parameters(settings, path)
    text = path.read_text()
    assert "thread_pool_name { value: \"pool\" }\n" in text
    assert "allowed_batch_sizes: 8\nallowed_batch_sizes: 32\n" in text
    assert sc.read_batching_parameters(path) == settings
    assert sc.BatchingSettings().to_proto().ListFields() == []  # unset stays unset: the scheduler's defaults apply


def test_batching_wire_format_matches_tf_serving_field_numbers():
    message = sc.BatchingSettings(max_batch_size=128, allowed_batch_sizes=(4,), pad_variable_length_inputs=True,
                                  enable_large_batch_splitting=True).to_proto()
    # max_batch_size = 1 (Int64Value{value = 1}), allowed_batch_sizes = 6 (packed int64),
    # pad_variable_length_inputs = 7, enable_large_batch_splitting = 8 (BoolValue).
    assert message.SerializeToString() == bytes([0x0A, 3, 0x08, 0x80, 0x01, 0x32, 1, 4, 0x38, 1, 0x42, 2, 0x08, 1])


def test_effective_settings_fill_the_scheduler_defaults():
    effective = sc.BatchingSettings(max_batch_size=16).effective()
    assert (effective.max_batch_size, effective.batch_timeout_micros, effective.max_enqueued_batches) == (16, 0, 10)
    assert effective.num_batch_threads >= 1 and effective.enable_large_batch_splitting is False
    assert sc.BatchingSettings().effective().max_batch_size == 1000


@pytest.mark.parametrize("settings, code, severity, text", [
    (sc.BatchingSettings(max_batch_size=0), "batching-range", "error", "max_batch_size is 0"),
    (sc.BatchingSettings(num_batch_threads=0), "batching-range", "error", "num_batch_threads is 0"),
    (sc.BatchingSettings(batch_timeout_micros=-1), "batching-range", "error", "batch_timeout_micros is -1"),
    (sc.BatchingSettings(max_batch_size=32, allowed_batch_sizes=(8, 16)), "allowed-batch-sizes", "error",
     "the last allowed batch size is 16 but max_batch_size is 32"),
    (sc.BatchingSettings(allowed_batch_sizes=(8, 1000)), None, None, None),
    (sc.BatchingSettings(max_batch_size=16, allowed_batch_sizes=(8, 4, 16)), "allowed-batch-sizes", "error",
     "not strictly increasing"),
    (sc.BatchingSettings(max_batch_size=16, max_execution_batch_size=8), "batch-splitting", "warning", "ignored"),
    (sc.BatchingSettings(enable_large_batch_splitting=True), "batch-splitting", "error", "as 0"),
    (sc.BatchingSettings(max_batch_size=8, enable_large_batch_splitting=True, max_execution_batch_size=16),
     "batch-splitting", "error", "larger than max_batch_size 8"),
    (sc.BatchingSettings(max_batch_size=16, enable_large_batch_splitting=True, max_execution_batch_size=8), None,
     None, None),
])
def test_batching_rules(settings, code, severity, text):
    report = sc.validate_batching_settings(settings)
    if code is None:
        assert report.findings == ()
        return
    assert [(f.code, f.severity.value) for f in report.findings] == [(code, severity)]
    assert text in report.findings[0].message


def test_allowed_sizes_mismatch_carries_tf_servings_message():
    report = sc.validate_batching_settings(sc.BatchingSettings(max_batch_size=32, allowed_batch_sizes=(8, 16)))
    assert report.findings[0].server_message == (
        "Last entry in allowed_batch_sizes must match max_batch_size; last entry was 16; expected 32")


def test_parse_errors_in_monitoring_and_batching_have_positions(tmp_path):
    with pytest.raises(sc.ConfigParseError) as caught:
        sc.parse_batching_parameters("max_batch_size { value: 8 }\nmax_batch_sise { value: 9 }\n")
    assert (caught.value.line, caught.value.column) == (2, 1) and "did you mean 'max_batch_size'" in str(caught.value)
    path = tmp_path / "monitoring.config"
    path.write_text("prometheus_config { enable: yes }\n")
    report = sc.validate_file(path)
    assert report.kind == "monitoring" and report.codes() == {"parse-error"}
    assert report.findings[0].message.startswith("line 1, column")
    assert report.findings[0].server_message == f"Invalid protobuf file: '{path}'"
