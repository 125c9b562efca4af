"""``tfsk config`` as a user runs it: a fresh process, real files, exit codes and messages."""

import json
import os
import shutil

import pytest
from support import REPO, tfsk

from tfsk import serving_config as sc

DEMO_MODELS = ("tower_a", "tower_b", "tower_c", "composed")


@pytest.fixture
def project(tmp_path, demo_base):
    """The repository's tfsk.toml beside a demo-models folder that links to the real demo export."""
    (tmp_path / "tfsk.toml").write_text((REPO / "tfsk.toml").read_text())
    (tmp_path / "demo-models").mkdir()
    for name in DEMO_MODELS:
        os.symlink(demo_base / name, tmp_path / "demo-models" / name)
    return tmp_path


def test_write_derives_every_config_from_the_declaration(project):
    result = tfsk("config", "write", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "wrote demo-models/models.config  [container: --model_config_file=/models/models.config]" in result.stdout
    assert f"--model_config_file={project}/demo-models/models.host.config" in result.stdout
    assert "--enable_batching --batching_parameters_file=/models/batching_parameters.config" in result.stdout
    assert "mount demo-models at /models in the container" in result.stdout
    again = tfsk("config", "write", "--json", cwd=project)
    data = json.loads(again.stdout)
    assert again.returncode == 0 and data["ok"] and not any(f["changed"] for f in data["files"])
    assert [(f["kind"], f["target"]) for f in data["files"]] == [
        ("models", "container"), ("models", "host"), ("monitoring", None), ("batching", None)]
    assert all(not report["findings"] for report in data["validation"])
    host = sc.read_model_server_config(project / "demo-models" / "models.host.config")
    assert [m.base_path for m in sc.model_entries(host)] == [str(project / "demo-models" / n) for n in DEMO_MODELS]


def test_write_before_the_export_writes_and_reports_the_missing_models(tmp_path):
    (tmp_path / "tfsk.toml").write_text((REPO / "tfsk.toml").read_text())
    result = tfsk("config", "write", "--declaration", str(tmp_path / "tfsk.toml"))
    assert result.returncode == 1
    assert result.stdout.count("error [base-path-missing]") == 4
    assert (tmp_path / "demo-models" / "models.config").is_file()
    dry = tfsk("config", "write", "-d", str(tmp_path / "tfsk.toml"), "--dry-run", "--no-disk-check")
    assert dry.returncode == 0 and "unchanged" in dry.stdout and "would write" not in dry.stdout


def test_validate_reports_findings_and_exit_status(project, tmp_path):
    assert tfsk("config", "write", cwd=project).returncode == 0
    good = tfsk("config", "validate", "demo-models/models.config", "demo-models/models.host.config",
                "demo-models/monitoring.config", "demo-models/batching_parameters.config", "--declaration",
                "tfsk.toml", cwd=project)
    assert good.returncode == 0, good.stdout
    assert "demo-models/models.config: OK (models; 0 error(s), 0 warning(s))" in good.stdout
    assert "demo-models/models.host.config: OK (models; 0 error(s), 0 warning(s))" in good.stdout
    assert "demo-models/batching_parameters.config: OK (batching;" in good.stdout
    mapped = tfsk("config", "validate", "demo-models/models.config", "--host-root", "demo-models",
                  "--container-root", "/models", "--startup", "--json", cwd=project)
    assert mapped.returncode == 0 and json.loads(mapped.stdout)["ok"] is True

    bad = tmp_path / "bad.config"
    bad.write_text("model_config_list {\n  config { name: 'x' base_path: 'x' }\n"
                   "  config { name: 'x' base_path: '/nowhere/x' model_platform: 'tensorflow' }\n}\n")
    result = tfsk("config", "validate", str(bad), "--json")
    assert result.returncode == 1
    findings = json.loads(result.stdout)["reports"][0]["findings"]
    assert {(f["model"], f["code"]) for f in findings} == {
        ("x", "duplicate-name"), ("x", "missing-platform"), ("x", "relative-base-path"), ("x", "base-path-missing")}
    assert all(f["action"] for f in findings)
    text = tfsk("config", "validate", str(bad))
    assert "error [relative-base-path] model 'x', base_path:" in text.stdout and "fix:" in text.stdout

    broken = tmp_path / "broken.config"
    broken.write_text("model_config_list {\n  config {\n    name: 'x'\n    platform: 'tensorflow'\n")
    parsed = tfsk("config", "validate", str(broken))
    assert parsed.returncode == 1 and "line 4, column 5" in parsed.stdout and "did you mean" in parsed.stdout


def test_validate_labels_at_start_up(project, tmp_path):
    labelled = tmp_path / "labelled.config"
    labelled.write_text(f"model_config_list {{ config {{ name: 'composed' base_path: '{project}/demo-models/composed' "
                        f"model_platform: 'tensorflow' model_version_policy {{ specific {{ versions: 1 }} }} "
                        f"version_labels {{ key: 'stable' value: 1 }} }} }}")
    unknown = tfsk("config", "validate", str(labelled))
    assert unknown.returncode == 0 and "warning [label-needs-available]" in unknown.stdout
    startup = tfsk("config", "validate", str(labelled), "--startup")
    assert startup.returncode == 1 and "error [label-unavailable]" in startup.stdout
    assert "TF Serving says: Request to assign label to version 1 of model composed" in startup.stdout
    flagged = tfsk("config", "validate", str(labelled), "--startup", "--allow-version-labels-for-unavailable-models")
    assert flagged.returncode == 0, flagged.stdout


def test_plan_label_writes_phases_that_each_validate(project, tmp_path):
    root = tmp_path / "models"
    for version in (1, 2):
        shutil.copytree(project / "demo-models" / "composed" / "1", root / "composed" / str(version))
    live = tmp_path / "live.config"
    live.write_text("model_config_list { config { name: 'composed' base_path: '/models/composed' "
                    "model_platform: 'tensorflow' model_version_policy { specific { versions: 1 } } "
                    "version_labels { key: 'stable' value: 1 } } }")
    mapping = ("--host-root", str(root), "--container-root", "/models")
    result = tfsk("config", "plan-label", str(live), "--model", "composed", "--label", "stable", "--version", "2",
                  "--drop-old", "--out-dir", str(tmp_path / "plan"), *mapping)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "label 'stable' of model 'composed': version 1 -> version 2, 3 phase(s)" in result.stdout
    assert "phase 1: load version 2 of 'composed'" in result.stdout
    phases = sorted((tmp_path / "plan").iterdir())
    assert [p.name for p in phases] == ["phase-1.config", "phase-2.config", "phase-3.config"]
    for phase in phases:
        checked = tfsk("config", "validate", str(phase), *mapping)
        assert checked.returncode == 0, checked.stdout
    assert "# Phase 2 of 3" in phases[1].read_text()
    jumped = tfsk("config", "diff", str(live), str(phases[1]), *mapping)
    assert jumped.returncode == 1 and "REFUSED composed: label-moved stable=1 -> stable=2" in jumped.stdout
    stepped = tfsk("config", "diff", str(phases[0]), str(phases[1]), *mapping, "--json")
    assert stepped.returncode == 0
    assert [c["kind"] for c in json.loads(stepped.stdout)["changes"]] == ["label-moved"]

    planned = tfsk("config", "plan-label", str(live), "--model", "composed", "--label", "stable", "--version", "2",
                   "--json", *mapping)
    data = json.loads(planned.stdout)
    assert planned.returncode == 0 and data["ok"]
    assert [p["wait_for_available_version"] for p in data["phases"]] == [2, None]
    phase_two = sc.parse_model_server_config(data["phases"][1]["config"])
    assert sc.find_model(phase_two, "composed").version_labels["stable"] == 2

    impossible = tfsk("config", "plan-label", str(live), "--model", "composed", "--label", "stable", "--version", "9",
                      *mapping)
    assert impossible.returncode == 2  # no plan can be made: could not run
    assert impossible.stderr.startswith("tfsk config plan-label: error: version 9 is not in '/models/composed'")


def test_diff_says_what_a_reload_does(tmp_path):
    old, new = tmp_path / "old.config", tmp_path / "new.config"
    old.write_text("model_config_list { config { name: 'a' base_path: '/m/a' model_platform: 'tensorflow' } "
                   "config { name: 'b' base_path: '/m/b' model_platform: 'tensorflow' } }")
    new.write_text("model_config_list { config { name: 'a' base_path: '/m/a' model_platform: 'tensorflow' "
                   "model_version_policy { latest { num_versions: 2 } } } }")
    result = tfsk("config", "diff", str(old), str(new), "--no-disk-check")
    assert result.returncode == 0
    assert "a: policy latest 1 -> latest 2" in result.stdout
    assert "b: model-removed: TF Serving unloads every version" in result.stdout
    same = tfsk("config", "diff", str(old), str(old))
    assert same.returncode == 0 and "no difference" in same.stdout


def test_monitoring_and_batching_commands(tmp_path):
    printed = tfsk("config", "monitoring")
    assert printed.returncode == 0
    assert printed.stdout == 'prometheus_config { enable: true path: "/monitoring/prometheus/metrics" }\n'
    out = tmp_path / "monitoring.config"
    written = tfsk("config", "monitoring", "--path", "/metrics", "--out", str(out))
    assert written.returncode == 0 and sc.read_monitoring_config(out).prometheus_path == "/metrics"
    refused = tfsk("config", "monitoring", "--path", "metrics", "--out", str(tmp_path / "no.config"))
    assert refused.returncode == 1 and not (tmp_path / "no.config").exists()
    assert "error [prometheus-path]" in refused.stdout

    batching = tfsk("config", "batching", "--max-batch-size", "64", "--batch-timeout-micros", "0",
                    "--allowed-batch-sizes", "16,64", "--out", str(tmp_path / "batching.config"))
    assert batching.returncode == 0, batching.stdout
    assert "--enable_batching --batching_parameters_file=" in batching.stdout
    assert sc.read_batching_parameters(tmp_path / "batching.config") == sc.BatchingSettings(
        max_batch_size=64, batch_timeout_micros=0, allowed_batch_sizes=(16, 64))
    wrong = tfsk("config", "batching", "--max-batch-size", "64", "--allowed-batch-sizes", "16,32", "--json")
    assert wrong.returncode == 1 and json.loads(wrong.stdout)["validation"]["errors"] == 1


def test_usage_errors_and_unreadable_files_exit_2_with_one_line(tmp_path):
    assert tfsk("config").returncode == 2
    assert tfsk("config", "frobnicate").returncode == 2
    halves = tfsk("config", "validate", "x.config", "--host-root", str(tmp_path))
    assert halves.returncode == 2 and "--host-root and --container-root go together" in halves.stderr
    missing = tfsk("config", "diff", str(tmp_path / "nope.config"), str(tmp_path / "nope.config"))
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
    assert "cannot read models.config file" in missing.stderr
    as_json = tfsk("config", "diff", str(tmp_path / "nope.config"), str(tmp_path / "nope.config"), "--json")
    answer = json.loads(as_json.stdout)
    assert as_json.returncode == 2 and answer["ok"] is False and "cannot read models.config file" in answer["error"]
    usage = tfsk("config", "diff", "--json")
    assert usage.returncode == 2 and "required" in json.loads(usage.stdout)["error"] and usage.stderr == ""
    overview = tfsk("--help")
    assert "config" in overview.stdout and "plan label moves" in overview.stdout
