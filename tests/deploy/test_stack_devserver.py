"""`tfsk stack` on the devserver, for real: the compose file's serving flags run on this machine."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from server_process import free_port
from support import REPO, tfsk

from tfsk import deploy
from tfsk.client import Client


def ports_env():
    grpc_port, rest_port = free_port(), free_port()
    return grpc_port, rest_port, {"TFSK_GRPC_PORT": str(grpc_port), "TFSK_REST_PORT": str(rest_port)}


def refused(port):
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def test_devserver_arguments_map_container_paths_and_ports_to_the_host(served_stack_dir):
    spec = deploy.load_stack(served_stack_dir / "docker-compose.yml", environ={"TFSK_GRPC_PORT": "9700"})
    arguments = deploy.devserver_arguments(spec)
    models = served_stack_dir / "demo-models"
    assert arguments[:3] == ["--port=9700", "--rest_api_port=8501", f"--model_config_file={models / 'models.host.config'}"]
    assert f"--monitoring_config_file={models / 'monitoring.config'}" in arguments
    assert "--batching_parameters_file=" in arguments and arguments[-1] == "--bind_address=127.0.0.1"
    batched = deploy.devserver_arguments(deploy.load_stack(
        served_stack_dir / "docker-compose.yml",
        environ={"TFSK_BATCHING": "true", "TFSK_BATCHING_PARAMETERS_FILE": "/models/batching_parameters.config"}))
    assert {"--enable_batching=true", f"--batching_parameters_file={models / 'batching_parameters.config'}"} <= set(batched)
    # models.host.config out of date with models.config: refused, with the fix
    host_config = models / "models.host.config"
    host_config.write_text(host_config.read_text().replace("tower_a", "tower_x"))
    with pytest.raises(deploy.StackError, match="run `tfsk config write`"):
        deploy.devserver_arguments(spec)
    # a config that is not the declaration's: its base paths are translated into the state folder
    (models / "other.config").write_text('model_config_list { config { name: "composed" base_path: '
                                         '"/models/composed" model_platform: "tensorflow" } }\n')
    compose = served_stack_dir / "docker-compose.yml"
    compose.write_text(compose.read_text().replace("/models/models.config", "/models/other.config"))
    spec = deploy.load_stack(compose, environ={"TFSK_PUBLISH_ADDRESS": "0.0.0.0"})
    arguments = deploy.devserver_arguments(spec)
    translated = spec.state_dir / "models.config"
    assert f"--model_config_file={translated}" in arguments and arguments[-1] == "--bind_address=0.0.0.0"
    assert f'base_path: "{models / "composed"}"' in translated.read_text()


def test_stack_up_serves_queries_reports_and_stops_on_the_devserver(stack_dir):
    grpc_port, rest_port, env = ports_env()
    declaration = stack_dir / "tfsk.toml"
    declaration.write_text(declaration.read_text().replace("num_versions = 2\n", "num_versions = 2\nlabels = { stable = 1 }\n"))
    up = tfsk("stack", "up", "--engine", "devserver", "--timeout", "240", cwd=stack_dir, env=env)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert "no model under" in up.stdout and "exporting the demo models" in up.stdout
        assert f"--port={grpc_port} --rest_api_port={rest_port}" in up.stdout
        assert f"gRPC       127.0.0.1:{grpc_port}" in up.stdout and "every model is AVAILABLE" in up.stdout
        features = np.full((1, 5), 0.1, dtype=np.float32)
        with Client(f"127.0.0.1:{grpc_port}") as client:
            assert client.predict("composed", {"features": features}, signature="part_tower_c").version == 1
            assert client.predict("composed", {"features": features}, label="stable",
                                  signature="part_tower_c").version == 1  # a tfsk.toml label survived the start
            assert client.check_consistency("composed").consistent
        status = tfsk("stack", "status", "--engine", "devserver", cwd=stack_dir, env=env)
        assert status.returncode == 0, status.stdout + status.stderr
        assert "health: healthy" in status.stdout and "model composed: 1 AVAILABLE; labels stable->1" in status.stdout
        data = json.loads(tfsk("stack", "status", "--json", cwd=stack_dir, env=env).stdout)
        assert data["engine"] == "devserver" and data["healthy"] and len(data["models"]) == 4
        if not refused(rest_port):  # the devserver serves REST: the container's healthcheck works on it too
            health = subprocess.run(["bash", str(REPO / "monitoring" / "healthcheck.sh"), str(rest_port),
                                     str(stack_dir / "demo-models" / "models.config")], capture_output=True, text=True,
                                    timeout=60)
            assert health.returncode == 0 and "model composed: AVAILABLE" in health.stdout, health.stdout
        logs = tfsk("stack", "logs", "--no-follow", "--engine", "devserver", cwd=stack_dir, env=env)
        assert f"Running gRPC ModelServer at 127.0.0.1:{grpc_port}" in logs.stdout
        smoke = deploy.load_compose(stack_dir / "docker-compose.yml", environ={}).raw["services"]["smoke"]
        run = subprocess.run([*smoke["entrypoint"], smoke["command"][0].replace("serving:8500", f"127.0.0.1:{grpc_port}")],
                             capture_output=True, text=True, timeout=300,
                             env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"})
        assert run.returncode == 0 and "composed version 1: consistent" in run.stdout, run.stdout + run.stderr
        follower = subprocess.Popen([sys.executable, "-m", "tfsk", "stack", "logs", "--engine", "devserver"],
                                    cwd=stack_dir, stdout=subprocess.PIPE, text=True)
        again = tfsk("stack", "up", "--engine", "devserver", cwd=stack_dir, env=env)
        assert again.returncode == 2 and "already running" in again.stderr
        pid = json.loads((stack_dir / ".tfsk" / "stack" / "devserver.pid").read_text())["pid"]
    finally:
        down = tfsk("stack", "down", "--engine", "devserver", cwd=stack_dir, env=env)
    assert down.returncode == 0 and f"stopped the devserver (pid {pid})" in down.stdout
    followed, _ = follower.communicate(timeout=60)  # following ends when the server stops
    assert follower.returncode == 0 and "Running gRPC ModelServer" in followed
    assert refused(grpc_port) and not (stack_dir / ".tfsk" / "stack" / "devserver.pid").exists()
    status = tfsk("stack", "status", "--engine", "devserver", cwd=stack_dir, env=env)
    assert status.returncode == 1 and "not running" in status.stdout
    down = tfsk("stack", "down", "--engine", "devserver", cwd=stack_dir, env=env)
    assert down.returncode == 0 and "not running" in down.stdout


def test_a_broken_flag_in_the_compose_file_fails_with_the_servers_own_words(served_stack_dir):
    compose = served_stack_dir / "docker-compose.yml"
    compose.write_text(compose.read_text().replace("--enable_model_warmup=true", "--enable_model_warmup=yes"))
    grpc_port, _, env = ports_env()
    up = tfsk("stack", "up", "--engine", "devserver", "--timeout", "120", cwd=served_stack_dir, env=env)
    assert up.returncode == 2, up.stdout + up.stderr
    assert "the devserver exited with status 255" in up.stderr
    assert "--- last lines of the server's log ---" in up.stderr and "Illegal value 'yes'" in up.stderr
    assert not (served_stack_dir / ".tfsk" / "stack" / "devserver.pid").exists() and refused(grpc_port)


def test_a_port_in_use_is_reported_before_anything_starts(served_stack_dir):
    grpc_port, _, env = ports_env()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", grpc_port))
        squatter.listen()
        up = tfsk("stack", "up", "--engine", "devserver", "--timeout", "60", cwd=served_stack_dir, env=env)
    assert up.returncode == 2, up.stdout + up.stderr
    assert f"port {grpc_port} on 127.0.0.1 (--port) is in use" in up.stderr and "TFSK_GRPC_PORT" in up.stderr
    assert "Traceback" not in up.stderr and not (served_stack_dir / ".tfsk" / "stack" / "devserver.pid").exists()


def test_without_a_docker_engine_auto_says_so_in_one_line_and_uses_the_devserver(stack_dir):
    problem = deploy.docker_engine_problem()
    if problem is None:
        pytest.skip("a Docker engine answers here: auto picks Docker (tested in test_stack_docker.py)")
    (stack_dir / "docker-compose.yml").write_text((stack_dir / "docker-compose.yml").read_text().replace(
        "--enable_model_warmup=true", "--enable_model_warmup=maybe"))
    (stack_dir / "demo-models").mkdir()
    up = tfsk("stack", "up", "--no-prepare", "--timeout", "60", cwd=stack_dir, env=ports_env()[2])
    assert up.stdout.splitlines()[0] == f"{problem}: running the same stack on the devserver"
    assert up.returncode == 2 and "does not exist" in up.stderr  # no models.config: prepare was skipped


def test_status_is_not_healthy_while_the_config_the_devserver_polls_is_corrupt(served_stack_dir):
    grpc_port, _, env = ports_env()
    up = tfsk("stack", "up", "--engine", "devserver", "--no-prepare", "--timeout", "240", cwd=served_stack_dir, env=env)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        host = served_stack_dir / "demo-models" / "models.host.config"
        host.write_text("model_config_list { config { name: 'x' base_path: ")  # every poll fails on it
        status = tfsk("stack", "status", "--engine", "devserver", cwd=served_stack_dir, env=env)
        assert status.returncode == 1 and "NOT healthy" in status.stdout, status.stdout + status.stderr
        assert f"{host}, the models.config the devserver polls, cannot be read" in status.stdout
        data = json.loads(tfsk("stack", "status", "--json", "--engine", "devserver", cwd=served_stack_dir, env=env).stdout)
        assert data["healthy"] is False and "tfsk config write" in data["config_error"]
    finally:
        tfsk("stack", "down", "--engine", "devserver", cwd=served_stack_dir, env=env)


def test_status_on_a_fresh_clone_says_not_running(stack_dir):
    status = tfsk("stack", "status", "--engine", "devserver", cwd=stack_dir)  # no models.config written yet
    assert status.returncode == 1 and "the stack is not running" in status.stdout, status.stdout + status.stderr
