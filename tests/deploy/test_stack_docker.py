"""The stack on a real Docker engine with the real tensorflow/serving image.

Runs unchanged wherever both exist; elsewhere every test skips and says which is missing.
"""

import json
import os
import shutil
import subprocess
import urllib.request

import numpy as np
import pytest
from server_process import free_port
from support import REPO, tfsk

from tfsk import deploy
from tfsk.client import Client, NotFoundError

pytestmark = pytest.mark.docker

#: What the exporter image is built from (docker-compose.yml's build context), copied with the stack files.
SOURCES = ("Dockerfile", ".dockerignore", "pyproject.toml", "constraints.txt", "README.md", "docker-compose.yml",
           "tfsk.toml", "monitoring", "tfsk", "exporter", "serving_config", "client", "devserver", "deploy")


def _missing() -> str | None:
    problem = deploy.docker_engine_problem()
    if problem is not None:
        return problem
    image = deploy.load_compose(REPO / "docker-compose.yml", environ={}).service("serving").image
    if subprocess.run(["docker", "image", "inspect", image], capture_output=True, timeout=60).returncode != 0:
        return f"the image {image} is not present here (docker pull --platform linux/amd64 {image})"
    return None


@pytest.fixture(scope="module")
def docker_stack(tmp_path_factory):
    reason = _missing()
    if reason is not None:
        pytest.skip(f"needs a Docker engine and the tensorflow/serving image: {reason}")
    project = tmp_path_factory.mktemp("tfskstack")
    for name in SOURCES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, project / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, project / name)
    grpc_port, rest_port = free_port(), free_port()
    env = {"TFSK_GRPC_PORT": str(grpc_port), "TFSK_REST_PORT": str(rest_port)}
    up = tfsk("stack", "up", "--engine", "docker", "--build", "--timeout", "900", cwd=project, env=env, timeout=1800)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield project, grpc_port, rest_port, env, up
    finally:
        tfsk("stack", "down", "--engine", "docker", cwd=project, env=env, timeout=300)


def test_up_prints_the_endpoints_and_the_container_is_healthy(docker_stack):
    project, grpc_port, rest_port, env, up = docker_stack
    assert f"gRPC       127.0.0.1:{grpc_port}" in up.stdout and f"REST       http://127.0.0.1:{rest_port}" in up.stdout
    status = tfsk("stack", "status", "--json", "--engine", "docker", cwd=project, env=env)
    data = json.loads(status.stdout)
    assert data["engine"] == "docker" and data["healthy"], status.stdout


def test_the_client_gets_the_same_answers_from_tf_serving(docker_stack):
    _, grpc_port, _, _, _ = docker_stack
    with Client(f"127.0.0.1:{grpc_port}") as client:
        assert {v.state for v in client.status("composed")} == {"AVAILABLE"}
        signature = client.metadata("composed").signatures["serving_default"]
        inputs = {name: np.full((2, spec.shape[1]), 0.5, np.float32) for name, spec in signature.inputs.items()}
        assert client.predict("composed", inputs)["prediction"].shape == (2, 1)
        assert client.check_consistency("composed").consistent
        with pytest.raises(NotFoundError, match="Servable not found for request: Latest"):
            client.predict("no_such_model", inputs)


def test_rest_status_and_metrics_are_served_as_declared(docker_stack):
    _, grpc_port, rest_port, _, _ = docker_stack
    with urllib.request.urlopen(f"http://127.0.0.1:{rest_port}/v1/models/composed", timeout=30) as response:
        assert json.load(response)["model_version_status"][0]["state"] == "AVAILABLE"
    with urllib.request.urlopen(f"http://127.0.0.1:{rest_port}/monitoring/prometheus/metrics", timeout=30) as response:
        assert ":tensorflow:serving:request_count" in response.read().decode()


def test_the_smoke_service_passes_with_the_light_install(docker_stack):
    project, _, _, env, _ = docker_stack
    command = deploy.DockerStack(deploy.load_stack(project / "docker-compose.yml")).compose
    run = subprocess.run([*command, "--profile", "smoke", "run", "--rm", "smoke"], capture_output=True, text=True,
                         cwd=project, env={**os.environ, **env}, timeout=1800)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "consistent" in run.stdout
