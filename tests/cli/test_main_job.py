"""The README's main job, ``tfsk demo``: export, configure, serve and query, in fresh processes."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from server_process import free_port
from support import REPO, tfsk

from tfsk.cli import CommandError


def _stop(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


def test_the_main_job_runs_end_to_end_then_reuses_unchanged_models(tmp_path):
    declaration = tmp_path / "tfsk.toml"
    declaration.write_text((REPO / "tfsk.toml").read_text())  # the repository's own declaration, rooted in tmp_path
    port = free_port()
    run = tfsk("demo", "--declaration", str(declaration), "--port", str(port), cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"composed: version 1 at {tmp_path / 'demo-models' / 'composed' / '1'}" in run.stdout
    assert "models (host): " in run.stdout and (tmp_path / "demo-models" / "models.host.config").exists()
    assert "composed: version 1 AVAILABLE" in run.stdout
    assert "tower_b: part 1 inside composed@1 via 'part_tower_b'" in run.stdout
    assert "check: composed@1 is consistent" in run.stdout
    assert "done: exported, configured, served and queried." in run.stdout
    assert "cuInit" not in run.stderr and "absl" not in run.stderr
    container_config = (tmp_path / "demo-models" / "models.config").read_text()
    assert 'base_path: "/models/composed"' in container_config

    # Again, kept serving: nothing changed, so the same versions are served; our stdout is not held open.
    kept = subprocess.Popen([sys.executable, "-m", "tfsk", "demo", "--declaration", str(declaration), "--port", str(port),
                             "--keep-serving", "--json"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    out, err = kept.communicate(timeout=300)  # returns: the devserver left holds no pipe of ours
    answer = json.loads(out)
    try:
        assert kept.returncode == 0 and answer["ok"] is True, err
        assert answer["export"]["reused"] is True
        assert {m["model"]: m["version"] for m in answer["export"]["models"]} == {
            "tower_a": 1, "tower_b": 1, "tower_c": 1, "composed": 1}
        assert answer["query"]["consistent"] is True and answer["server"]["kept"] is True
        status = tfsk("status", "composed", "--target", f"127.0.0.1:{port}", "--json")
        assert json.loads(status.stdout)[0]["state"] == "AVAILABLE"

        # The port is taken now: the demo says so at once and queries nobody else's server.
        busy = tfsk("demo", "--declaration", str(declaration), "--port", str(port), "--json", cwd=tmp_path)
        error = json.loads(busy.stdout)
        assert busy.returncode == 2 and f"port {port} on 127.0.0.1 is taken" in error["error"]
        assert not (tmp_path / "demo-models" / "composed" / "2").exists()
    finally:
        _stop(answer["server"]["pid"])

    fresh = tfsk("demo", "--declaration", str(declaration), "--port", str(port), "--fresh", "--json", cwd=tmp_path)
    answer = json.loads(fresh.stdout)
    assert fresh.returncode == 0 and answer["export"]["reused"] is False, fresh.stderr
    assert answer["query"]["available"] == {"tower_a": 2, "tower_b": 2, "tower_c": 2, "composed": 2}


def test_a_devserver_that_dies_at_start_up_is_reported_at_once_with_its_log(tmp_path):
    from tfsk.client import Client
    from tfsk.demo._job import _Server, _wait_available

    config = tmp_path / "models.host.config"
    config.write_text("model_config_list { config { name: 'x' base_path: ")  # the server refuses it and exits
    server = _Server(free_port(), config, tmp_path / "devserver.log", detach=False)
    try:
        with Client(f"127.0.0.1:{server.port}", timeout=5) as serving, pytest.raises(CommandError) as caught:
            _wait_available(serving, server, "x", time.monotonic() + 300)
    finally:
        server.stop()
    message = str(caught.value)
    assert message.startswith("the devserver exited (status 255) before the demo was done")
    assert "Failed to start server. Error: INVALID_ARGUMENT: Invalid protobuf file" in message


def test_the_demo_constants_match_the_exporter_demo():
    from tfsk import demo as exporter_demo
    from tfsk.demo import _job as demo

    assert demo.DEMO_COMPOSED == exporter_demo.COMPOSED_NAME
    assert demo.DEMO_HEAD_FACTORY == exporter_demo.HEAD_FACTORY


def test_a_taken_port_names_the_commands_that_stop_what_holds_it(tmp_path):
    import socket

    declaration = tmp_path / "tfsk.toml"
    declaration.write_text((REPO / "tfsk.toml").read_text())
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        busy = tfsk("demo", "--declaration", str(declaration), "--port", str(port), cwd=tmp_path)
    assert busy.returncode == 2 and f"port {port} on 127.0.0.1 is taken" in busy.stderr
    assert "tfsk stack down" in busy.stderr and "tfsk demo --keep-serving" in busy.stderr
    assert not (tmp_path / "demo-models").exists()  # nothing exported
