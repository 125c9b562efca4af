"""`tfsk stack check`: the compose file against tfsk.toml and the files it mounts, on every machine."""

import json
import shutil

import pytest
import yaml
from support import python, tfsk

from tfsk import deploy
from tfsk import serving_config as sc


def check(directory, **environ):
    spec = deploy.load_stack(directory / "docker-compose.yml", environ=environ)
    reports = deploy.check_stack(spec.compose, spec.declaration)
    return reports, {f.code for r in reports for f in r.findings}


def edit(path, old, new):
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def test_the_repository_stack_passes_once_the_configs_are_written(served_stack_dir):
    reports, codes = check(served_stack_dir)
    assert all(r.ok for r in reports) and not codes, [str(f) for r in reports for f in r.findings]
    run = tfsk("stack", "check", cwd=served_stack_dir)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "docker-compose.yml: OK (0 error(s), 0 warning(s))" in run.stdout


def test_a_fresh_clone_is_told_to_write_the_configs(stack_dir):
    reports, codes = check(stack_dir)
    assert "mount-missing" in codes and not reports[0].ok
    run = tfsk("stack", "check", "--json", cwd=stack_dir)
    data = json.loads(run.stdout)
    assert run.returncode == 1 and not data["ok"]
    missing = [f for r in data["reports"] for f in r["findings"] if f["code"] == "mount-missing"]
    assert missing and "tfsk config write" in missing[0]["action"] and "demo-models" in missing[0]["message"]


def test_monitoring_path_and_port_must_agree_with_tfsk_toml(served_stack_dir):
    edit(served_stack_dir / "monitoring" / "prometheus.yml", "port: 8501", "port: 9999")
    edit(served_stack_dir / "tfsk.toml", 'path = "/monitoring/prometheus/metrics"', 'path = "/metrics"')
    sc.write_configs(sc.load_declaration(served_stack_dir / "tfsk.toml"))
    _, codes = check(served_stack_dir)
    assert {"monitoring-path", "monitoring-port"} <= codes


def test_a_base_path_outside_the_mount_is_refused(served_stack_dir):
    edit(served_stack_dir / "tfsk.toml", 'container_root = "/models"', 'container_root = "/srv/models"')
    sc.write_configs(sc.load_declaration(served_stack_dir / "tfsk.toml"))
    _, codes = check(served_stack_dir)
    assert {"mount-mismatch", "base-path-not-mounted"} <= codes


def test_flags_tf_serving_would_ignore_or_refuse_are_errors(served_stack_dir):
    compose = served_stack_dir / "docker-compose.yml"
    edit(compose, "      - --port=8500\n", "      - --port\n      - \"8500\"\n")
    edit(compose, "--enable_model_warmup=true", "--enable_model_warmup=yes")
    edit(compose, "--monitoring_config_file=/models/monitoring.config", "--monitoring_config_file=/etc/monitoring.config")
    reports, codes = check(served_stack_dir)
    assert {"flag-form", "bool-flag", "path-not-mounted"} <= codes and not reports[0].ok


def test_batching_needs_both_switches(served_stack_dir):
    _, codes = check(served_stack_dir, TFSK_BATCHING_PARAMETERS_FILE="/models/batching_parameters.config")
    assert "batching-file-without-batching" in codes
    _, codes = check(served_stack_dir, TFSK_BATCHING="true")
    assert "batching-defaults" in codes and "batching-file-without-batching" not in codes
    reports, codes = check(served_stack_dir, TFSK_BATCHING="true",
                           TFSK_BATCHING_PARAMETERS_FILE="/models/batching_parameters.config")
    assert not codes & {"batching-defaults", "batching-file-without-batching"}


def test_the_healthcheck_may_use_only_what_the_image_has(served_stack_dir):
    compose = served_stack_dir / "docker-compose.yml"
    data = yaml.safe_load(compose.read_text())
    data["services"]["serving"]["healthcheck"]["test"] = [
        "CMD-SHELL", "curl -f http://localhost:8501/v1/models/composed || exit 1"]
    compose.write_text(yaml.safe_dump(data))
    _, codes = check(served_stack_dir)
    assert "healthcheck-tool" in codes
    data["services"]["serving"]["healthcheck"]["test"] = ["CMD-SHELL", "exec 3<>/dev/tcp/127.0.0.1/8501"]
    compose.write_text(yaml.safe_dump(data))
    _, codes = check(served_stack_dir)
    assert "healthcheck-shell" in codes and "healthcheck-tool" not in codes
    script = served_stack_dir / "monitoring" / "healthcheck.sh"
    data["services"]["serving"]["healthcheck"]["test"] = ["CMD", "bash", "/usr/local/bin/tfsk-healthcheck"]
    compose.write_text(yaml.safe_dump(data))
    script.write_text(script.read_text() + "wget -q -O- http://localhost:8501/ # added\n")
    _, codes = check(served_stack_dir)
    assert "healthcheck-tool" in codes  # found inside the mounted script


def test_an_image_older_than_the_exporting_tensorflow_is_warned_about(served_stack_dir):
    reports, codes = check(served_stack_dir, TF_SERVING_VERSION="2.20.0")
    assert {"image-tag", "image-older-than-export"} <= codes
    assert all(r.ok for r in reports)  # warnings: it may still work
    older = [f for r in reports for f in r.findings if f.code == "image-older-than-export"]
    assert {f.model for f in older} == {"tower_a", "tower_b", "tower_c", "composed"}
    assert "exported with TensorFlow 2.21" in older[0].message
    _, codes = check(served_stack_dir, TF_SERVING_VERSION="2.22.0")
    assert "image-older-than-export" not in codes


def test_config_validate_warns_about_an_older_serving_image(served_stack_dir):
    config = served_stack_dir / "demo-models" / "models.config"
    run = tfsk("config", "validate", str(config), "--declaration", str(served_stack_dir / "tfsk.toml"),
               "--serving-image", "tensorflow/serving:2.19.0", cwd=served_stack_dir)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("warning [image-older-than-export]") == 4
    assert "serve it with tensorflow/serving:2.21" in run.stdout
    run = tfsk("config", "validate", str(config), "--declaration", str(served_stack_dir / "tfsk.toml"),
               "--serving-image", "tensorflow/serving:2.21.0", cwd=served_stack_dir)
    assert run.returncode == 0 and "image-older-than-export" not in run.stdout


def test_the_checks_and_the_stack_commands_load_no_tensorflow(served_stack_dir):
    code = ("import sys\nfrom tfsk.cli import stack\ncode = stack.main(['check', '-f', sys.argv[1]])\n"
            "print('exit', code, 'tensorflow' in sys.modules, 'keras' in sys.modules)")
    run = python(code, str(served_stack_dir / "docker-compose.yml"))
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[-1] == "exit 0 False False"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed (apt-get install prometheus)")
def test_stack_check_runs_promtool_on_the_prometheus_config(served_stack_dir):
    edit(served_stack_dir / "monitoring" / "prometheus.yml", "scrape_interval: 5s", "scrape_interval: often")
    run = tfsk("stack", "check", "--json", cwd=served_stack_dir)
    data = json.loads(run.stdout)
    assert run.returncode == 1 and not data["tools"]["Prometheus config"]["ok"]
    assert "often" in data["tools"]["Prometheus config"]["output"]


@pytest.mark.parametrize("spelling, allowed", [
    ("--allow_version_labels_for_unavailable_models", True),  # a bare bool flag is true, as in TF Serving
    ("--allow_version_labels_for_unavailable_models=true", True),
    ("--allow_version_labels_for_unavailable_models=false", False),
])
def test_every_check_reads_the_labels_flag_alike(served_stack_dir, spelling, allowed):
    # Both checks that read this flag must agree: once a bare flag counted as true for
    # labels-at-startup and as false for the served config's label check (a label naming a version
    # not exported yet is an error without the flag, a warning with it).
    declaration = served_stack_dir / "tfsk.toml"
    edit(declaration, "num_versions = 2\n", "num_versions = 2\nlabels = { stable = 7 }\n")
    sc.write_configs(sc.load_declaration(declaration))
    edit(served_stack_dir / "docker-compose.yml", "--allow_version_labels_for_unavailable_models=true", spelling)
    reports, _ = check(served_stack_dir)
    errors = [f for r in reports for f in r.findings if f.severity is sc.Severity.ERROR]
    assert (not errors) == allowed, [str(f) for f in errors]


def test_a_corrupt_or_stale_host_config_the_devserver_reads_is_an_error(served_stack_dir):
    host = served_stack_dir / "demo-models" / "models.host.config"
    good = host.read_text()
    host.write_text(good.replace("model_config_list", "model_config_lis", 1))
    reports, codes = check(served_stack_dir)
    assert "host-config-unreadable" in codes
    run = tfsk("stack", "check", cwd=served_stack_dir)
    assert run.returncode == 1 and "models.host.config" in run.stdout and "tfsk config write" in run.stdout, run.stdout
    host.write_text(good.replace('name: "tower_c"', 'name: "tower_x"'))
    assert "host-config-differs" in check(served_stack_dir)[1]


def test_the_exporter_container_leaves_the_host_config_to_the_host(served_stack_dir, tmp_path_factory):
    """Found on a real engine: the exporter container wrote models.host.config with the paths it sees
    (/app/demo-models/...), which `tfsk stack check` on the host then reported as not matching."""
    host_config = served_stack_dir / "demo-models" / "models.host.config"
    written_on_the_host = host_config.read_text()
    # the container's view: the same files under another root (as /app is in the exporter service)
    container_view = tmp_path_factory.mktemp("app")
    (container_view / "demo-models").symlink_to(served_stack_dir / "demo-models")
    shutil.copy(served_stack_dir / "tfsk.toml", container_view / "tfsk.toml")
    run = tfsk("stack", "prepare", "--declaration", str(container_view / "tfsk.toml"), "--container",
               cwd=container_view)
    assert run.returncode == 0, run.stdout + run.stderr
    assert host_config.read_text() == written_on_the_host
    assert str(container_view) not in host_config.read_text()
    _, codes = check(served_stack_dir)
    assert not codes, codes
    # without --container the same run rewrites it with paths the host cannot use, and check says so
    tfsk("stack", "prepare", "--declaration", str(container_view / "tfsk.toml"), cwd=container_view)
    assert str(container_view) in host_config.read_text()
    _, codes = check(served_stack_dir)
    assert "host-config-differs" in codes
