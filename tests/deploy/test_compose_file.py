"""docker-compose.yml itself: what it runs, how Compose reads it, and Compose's own validator."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import pytest
from support import REPO

from tfsk import deploy
from tfsk import serving_config as sc


def repo_compose(**environ):
    return deploy.load_compose(REPO / "docker-compose.yml", environ=environ)


def test_default_image_tag_is_the_tensorflow_the_exporter_pins():
    pins = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["export"]
    tensorflow = next(p for p in pins if p.startswith("tensorflow=="))
    serving = repo_compose().service("serving")
    assert serving.image == f"tensorflow/serving:{tensorflow.split('==')[1].split()[0]}"
    assert repo_compose(TF_SERVING_VERSION="2.20.0").service("serving").image == "tensorflow/serving:2.20.0"


def test_serving_replaces_the_entrypoint_and_passes_every_flag():
    serving = repo_compose().service("serving")
    assert serving.entrypoint == ("tensorflow_model_server",)
    flags = serving.flags()
    assert flags["port"] == "8500" and flags["rest_api_port"] == "8501"
    assert flags["model_config_file"] == "/models/models.config"
    assert int(flags["model_config_file_poll_wait_seconds"]) > 0
    assert flags["file_system_poll_wait_seconds"] == "1"
    assert flags["monitoring_config_file"] == "/models/monitoring.config"
    assert flags["enable_model_warmup"] == "true"
    assert flags["allow_version_labels_for_unavailable_models"] == "true"
    assert flags["enable_batching"] == "false" and flags["batching_parameters_file"] == ""
    assert serving.raw["platform"] == "linux/amd64"
    assert serving.raw["restart"] == "unless-stopped"
    assert serving.raw["depends_on"]["exporter"]["condition"] == "service_completed_successfully"
    assert all(m.read_only for m in serving.mounts)
    assert serving.host_path("/models/composed/1") == REPO / "demo-models" / "composed" / "1"


def test_ports_are_on_loopback_unless_one_variable_opens_them():
    ports = repo_compose().service("serving").ports
    assert {(p.host_ip, p.published, p.target) for p in ports} == {("127.0.0.1", 8500, 8500),
                                                                    ("127.0.0.1", 8501, 8501)}
    opened = repo_compose(TFSK_PUBLISH_ADDRESS="0.0.0.0", TFSK_GRPC_PORT="9500").service("serving").ports
    assert {(p.host_ip, p.published) for p in opened} == {("0.0.0.0", 9500), ("0.0.0.0", 8501)}
    for name in ("prometheus", "grafana"):
        assert all(p.host_ip == "127.0.0.1" for p in repo_compose().service(name).ports)


def test_replicas_get_port_ranges_that_must_not_overlap():
    scaled = repo_compose(TFSK_GRPC_PORT="8500-8502", TFSK_REST_PORT="8510-8512")
    ports = scaled.service("serving").ports
    assert {(p.target, p.published, p.published_last) for p in ports} == {(8500, 8500, 8502), (8501, 8510, 8512)}
    declaration = sc.load_declaration(REPO / "tfsk.toml")
    codes = [f.code for r in deploy.check_stack(scaled, declaration, check_disk=False) for f in r.findings]
    assert "port-clash" not in codes
    clashing = repo_compose(TFSK_GRPC_PORT="8500-8502")  # REST stays 8501, inside the gRPC range
    findings = [f for r in deploy.check_stack(clashing, declaration, check_disk=False) for f in r.findings]
    assert [f.message for f in findings if f.code == "port-clash"] == [
        "host port 8501 is published for both container ports 8500 and 8501: two of them (two replicas with "
        "--scale) would ask for it and one would fail to start"]
    assert "--scale serving=3" in (REPO / "docker-compose.yml").read_text()


def test_batching_is_one_switch_away():
    flags = repo_compose(TFSK_BATCHING="true",
                         TFSK_BATCHING_PARAMETERS_FILE="/models/batching_parameters.config").service("serving").flags()
    assert flags["enable_batching"] == "true"
    assert flags["batching_parameters_file"] == "/models/batching_parameters.config"


def test_profiles_keep_monitoring_and_smoke_optional():
    compose = repo_compose()
    assert compose.service("prometheus").profiles == ("monitoring",)
    assert compose.service("grafana").profiles == ("monitoring",)
    assert compose.service("smoke").profiles == ("smoke",)
    assert compose.service("serving").profiles == () and compose.service("exporter").profiles == ()
    for name in ("prometheus", "grafana"):
        image = compose.service(name).image
        assert re.fullmatch(r"[a-z/]+:v?\d+\.\d+\.\d+", image), f"{name} image {image!r} is not pinned to a release"
    smoke = compose.raw["services"]["smoke"]
    assert smoke["build"]["target"] == "light" and "--target dns:///serving:8500" in smoke["command"][0]
    assert all(f"tfsk {verb} " in smoke["command"][0] for verb in ("status", "check", "predict"))


def test_interpolation_follows_compose():
    variables = {"SET": "x", "EMPTY": ""}
    cases = {
        "${SET}": "x", "$SET/y": "x/y", "${UNSET:-d}": "d", "${EMPTY:-d}": "d", "${EMPTY-d}": "",
        "${UNSET-d}": "d", "${SET:+alt}": "alt", "${EMPTY:+alt}": "", "${EMPTY+alt}": "alt", "$$HOME": "$HOME",
        "a${UNSET}b": "ab",
    }
    for text, expected in cases.items():
        assert deploy.interpolate(text, variables) == expected, text
    with pytest.raises(deploy.StackError, match="variable UNSET is required: set me"):
        deploy.interpolate("${UNSET:?set me}", variables)
    with pytest.raises(deploy.StackError, match=r"write \$\$ for a literal \$"):
        deploy.interpolate("cost: $5", variables)


def test_env_file_beside_the_compose_file_is_read_and_the_environment_wins(stack_dir):
    (stack_dir / ".env").write_text("# ports\nTFSK_GRPC_PORT=9100\nexport TFSK_REST_PORT='9101'\n")
    serving = deploy.load_compose(stack_dir / "docker-compose.yml", environ={}).service("serving")
    assert {p.published for p in serving.ports} == {9100, 9101}
    serving = deploy.load_compose(stack_dir / "docker-compose.yml", environ={"TFSK_GRPC_PORT": "9200"}).service("serving")
    assert {p.published for p in serving.ports} == {9200, 9101}
    (stack_dir / ".env").write_text("not a variable line\n")
    with pytest.raises(deploy.StackError, match=r"\.env:1: expected KEY=VALUE"):
        deploy.load_compose(stack_dir / "docker-compose.yml", environ={})


def test_unreadable_or_broken_compose_files_get_one_clear_error(tmp_path):
    with pytest.raises(deploy.StackError, match="cannot read the compose file"):
        deploy.load_compose(tmp_path / "missing.yml")
    (tmp_path / "bad.yml").write_text("services: [\n")
    with pytest.raises(deploy.StackError, match="not valid YAML"):
        deploy.load_compose(tmp_path / "bad.yml")
    (tmp_path / "other.yml").write_text("just: text\n")
    with pytest.raises(deploy.StackError, match="not a compose file"):
        deploy.load_compose(tmp_path / "other.yml")
    with pytest.raises(deploy.StackError, match="no service 'nope'"):
        deploy.load_compose(REPO / "docker-compose.yml", environ={}).service("nope")


@pytest.mark.skipif(deploy.validate_with_compose_cli(REPO / "docker-compose.yml") is None,
                    reason="neither `docker compose` nor `docker-compose` is installed (apt-get install docker-compose)")
def test_compose_validates_the_file_and_refuses_a_broken_one(stack_dir):
    result = deploy.validate_with_compose_cli(REPO / "docker-compose.yml")
    assert result.ok, result.output
    broken = stack_dir / "docker-compose.yml"
    broken.write_text(broken.read_text().replace("    restart: unless-stopped\n", "    restart: sometimes\n    colour: red\n", 1))
    result = deploy.validate_with_compose_cli(broken)
    assert not result.ok and ("colour" in result.output or "restart" in result.output), result.output


def test_dockerfile_is_pinned_slim_non_root_and_its_context_is_small():
    dockerfile = (REPO / "Dockerfile").read_text()
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", dockerfile, re.M).group(1)
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", base), base
    stages = re.findall(r"^FROM (\S+) AS (\w+)$", dockerfile, re.M)
    assert [name for _, name in stages] == ["light", "exporter"]
    users = re.findall(r"^USER (\S+)$", dockerfile, re.M)
    assert users[-1] == "1000:1000" and dockerfile.rstrip().endswith("USER 1000:1000")
    assert all("--constraint constraints.txt" in line for line in dockerfile.splitlines() if "pip install" in line)
    copied = re.findall(r"^COPY (\S+) ", dockerfile, re.M)
    package_dirs = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    assert set(package_dirs.values()) | {"tfsk"} <= set(copied)
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    assert [line for line in ignore if line and not line.startswith("#")][0] == "*"  # out unless listed
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert {"pyproject.toml", "constraints.txt", "README.md"} | set(package_dirs.values()) <= allowed
    assert not {".venv", "demo-models", ".git", "tests"} & allowed
    compose = repo_compose()
    assert compose.raw["services"]["exporter"]["build"]["target"] == "exporter"
    exporter = compose.raw["services"]["exporter"]
    assert exporter["user"] == "0:0" and 'ENTRYPOINT ["tfsk-exporter"]' in dockerfile
    entrypoint = (REPO / "deploy" / "exporter-entrypoint.sh").read_text()
    assert 'exec setpriv --reuid="${owner%:*}"' in entrypoint and 'stat -c %u:%g "$declaration"' in entrypoint


def test_the_image_version_check_reads_tags_as_docker_writes_them():
    assert sc.serving_image_version("tensorflow/serving:2.21.0") == "2.21.0"
    assert sc.serving_image_version("tensorflow/serving:2.21.0-gpu") == "2.21.0"
    assert sc.serving_image_version("registry:5000/tensorflow/serving:2.20.1@sha256:abc") == "2.20.1"
    assert sc.serving_image_version("tensorflow/serving:latest") is None
    assert sc.serving_image_version("registry:5000/tensorflow/serving") is None
    assert shutil.which("bash"), "the healthcheck tests need bash"


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv, as the exporter container has")
def test_the_exporter_entrypoint_gives_the_model_folder_to_the_declarations_owner():
    with tempfile.TemporaryDirectory() as folder:  # pytest's tmp_path is not reachable by another uid
        check_entrypoint(Path(folder))


def check_entrypoint(tmp_path):
    (tmp_path / "tfsk.toml").write_text("")
    os.chown(tmp_path / "tfsk.toml", 4321, 4321)
    (tmp_path / "models").mkdir()  # root-owned, as Docker creates a missing bind-mount folder
    tmp_path.chmod(0o755)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "TFSK_DECLARATION": str(tmp_path / "tfsk.toml"), "TFSK_MODELS": str(tmp_path / "models")}
    run = subprocess.run(["sh", str(REPO / "deploy" / "exporter-entrypoint.sh"), "config", "monitoring", "--out",
                          str(tmp_path / "models" / "monitoring.config")], capture_output=True, text=True, env=env,
                         timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    written = tmp_path / "models" / "monitoring.config"
    assert (written.stat().st_uid, (tmp_path / "models").stat().st_uid) == (4321, 4321)
    assert "prometheus_config" in written.read_text()
