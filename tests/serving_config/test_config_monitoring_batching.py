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


# Per-model batching: [models.NAME.batching] -> batching_params.pbtxt in each version folder.

def per_model_declaration(root, batching='max_batch_size = 4\nbatch_timeout_micros = 100\n', extra=""):
    (root / "tfsk.toml").write_text(f"""[paths]
host_root = "models"
container_root = "/models"

[models.composed]
{extra}
[models.composed.batching]
{batching}
[models.tower_a]
""")
    return sc.load_declaration(root / "tfsk.toml")


@pytest.fixture
def model_root(demo_base, tmp_path):
    import shutil

    shutil.copytree(demo_base, tmp_path / "models")
    return tmp_path


def test_model_batching_is_declared_per_model(model_root):
    declaration = per_model_declaration(model_root)
    assert declaration.model("composed").batching == sc.BatchingSettings(max_batch_size=4, batch_timeout_micros=100)
    assert declaration.model("tower_a").batching is None and declaration.batching is None
    with pytest.raises(sc.DeclarationError, match=r"\[models.composed\].batching: unknown key\(s\) max_batch"):
        per_model_declaration(model_root, batching="max_batch = 4\n")
    with pytest.raises(sc.DeclarationError, match=r"\[models.composed\].batching.max_batch_size: must be int"):
        per_model_declaration(model_root, batching='max_batch_size = "4"\n')


def test_config_write_adds_the_file_to_every_version_folder_and_never_replaces_one(model_root):
    from support import tree_digest

    declaration = per_model_declaration(model_root)
    (model_root / "models" / "composed" / "2").mkdir()  # a second version folder (content is the exporter's job)
    before = tree_digest(model_root / "models" / "tower_a")
    dry = [r for r in sc.write_configs(declaration, dry_run=True) if r.kind == "model-batching"]
    assert [(r.path.parent.name, r.changed) for r in dry] == [("1", True), ("2", True)]
    assert not (model_root / "models" / "composed" / "1" / sc.PER_MODEL_BATCHING_FILE).exists()

    written = [r for r in sc.write_configs(declaration) if r.kind == "model-batching"]
    assert [r.changed for r in written] == [True, True]
    for version in ("1", "2"):
        path = model_root / "models" / "composed" / version / sc.PER_MODEL_BATCHING_FILE
        assert sc.read_batching_parameters(path) == declaration.model("composed").batching
        assert sc.validate_file(path).findings == ()
    assert tree_digest(model_root / "models" / "tower_a") == before  # no batching declared: untouched
    assert [r.findings for r in sc.model_batching_reports(declaration)] == [()]

    # The declaration changes: published versions keep their file, and the difference is reported.
    changed = per_model_declaration(model_root, batching="max_batch_size = 8\n")
    kept = (model_root / "models" / "composed" / "1" / sc.PER_MODEL_BATCHING_FILE).read_text()
    assert [r.changed for r in sc.write_configs(changed) if r.kind == "model-batching"] == [False, False]
    assert (model_root / "models" / "composed" / "1" / sc.PER_MODEL_BATCHING_FILE).read_text() == kept
    (report,) = sc.model_batching_reports(changed)
    assert [(f.code, f.severity.value, f.model) for f in report.findings] == [
        ("model-batching-differs", "warning", "composed")] * 2
    assert "version 1 already has a batching_params.pbtxt" in report.findings[0].message
    # A new version gets the new parameters.
    (model_root / "models" / "composed" / "3").mkdir()
    assert [r.path.parent.name for r in sc.write_configs(changed) if r.kind == "model-batching" and r.changed] == ["3"]
    assert sc.read_batching_parameters(model_root / "models" / "composed" / "3" / sc.PER_MODEL_BATCHING_FILE
                                       ).max_batch_size == 8
    assert not list((model_root / "models" / "composed").glob("*/.*tfsk-tmp"))


def test_settings_that_would_fail_loads_are_not_written(model_root):
    declaration = per_model_declaration(model_root, batching="max_batch_size = 8\nallowed_batch_sizes = [2, 4]\n")
    assert [r for r in sc.write_configs(declaration) if r.kind == "model-batching"] == []
    assert not (model_root / "models" / "composed" / "1" / sc.PER_MODEL_BATCHING_FILE).exists()
    (report,) = sc.model_batching_reports(declaration)
    assert report.codes() == {"allowed-batch-sizes", "model-batching-not-written"} and not report.ok
    assert "the version fails to load" in report.errors[0].message


def test_validate_knows_a_per_model_file(tmp_path):
    path = tmp_path / "1" / sc.PER_MODEL_BATCHING_FILE
    path.parent.mkdir()
    path.write_text("")  # every default: valid BatchingParameters, not an empty models.config
    assert (sc.validate_file(path).kind, sc.validate_file(path).findings) == ("batching", ())
    path.write_text("max_batch_size { value: 8 }\nnum_batch_threads { value: 4 }\n")
    report = sc.validate_file(path)
    assert report.ok and [(f.code, f.field) for f in report.findings] == [("per-model-threads", "num_batch_threads")]
    # The same text as the server's common file: threads are its business, no warning.
    common = tmp_path / "batching.config"
    common.write_text(path.read_text())
    assert sc.validate_file(common).findings == ()


def test_config_write_cli_reports_per_model_files(model_root):
    from support import tfsk

    per_model_declaration(model_root)
    result = tfsk("config", "write", "--declaration", str(model_root / "tfsk.toml"), "--no-disk-check")
    assert result.returncode == 0, result.stderr
    shown = result.stdout.replace(str(model_root) + "/", "")
    assert ("models/composed/1/batching_params.pbtxt  [model-batching: read from the version folder with "
            "--enable_batching --enable_per_model_batching_parameters]") in shown
