"""`docker compose up` for real, on podman (the test's own engine), with the real docker-compose.yml on the
host network and stand-in images. Steps in order; each one an assertion that could fail."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from conftest import OWNER, timed
from support import REPO, tfsk

pytestmark = pytest.mark.engine


def compose(project, *arguments, timeout=1800):
    root, path, env, *_ = project
    return subprocess.run(["docker-compose", "-f", str(path), "--project-directory", str(root), *arguments],
                          cwd=root, env=env, capture_output=True, text=True, timeout=timeout)


def docker(project, *arguments, timeout=120):
    return subprocess.run(["docker", *arguments], env=project[2], capture_output=True, text=True, timeout=timeout)


def container(project, service):
    ids = compose(project, "ps", "-a", "-q", service, timeout=60).stdout.split()
    return ids[0] if ids else None


def state(project, name):
    run = docker(project, "inspect", "--format", "{{json .State}}", name)
    return json.loads(run.stdout) if run.returncode == 0 and run.stdout.strip() else {}


class HealthDriver:
    """Without systemd, podman runs a healthcheck only when asked: ask for the serving container's, every 2 s."""

    def __init__(self, engine, project):
        self.engine, self.project, self.stop = engine, project, threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        while not self.stop.is_set():
            name = container(self.project, "serving")
            if name:
                self.engine.podman("healthcheck", "run", name, check=False, timeout=30)
            self.stop.wait(2)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=60)


def wait_healthy(engine, project, timeout=600):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        name = container(project, "serving")
        if name:
            last = engine.podman("healthcheck", "run", name, check=False, timeout=30)
            if last.returncode == 0:
                return name
        time.sleep(2)
    raise AssertionError(f"serving never turned healthy: {last and (last.stdout + last.stderr)}\n"
                         + compose(project, "logs", "--no-color", "--tail", "40", "serving").stdout)


@pytest.fixture(scope="module")
def up(engine, project):
    started = time.monotonic()
    run = compose(project, "up", "-d")
    timed("docker-compose up -d (exporter build + export)", started)
    try:
        yield run
    finally:
        compose(project, "--profile", "smoke", "--profile", "monitoring", "down", "--timeout", "10", timeout=300)


def test_up_builds_the_exporter_which_exports_the_demo_as_the_owner(engine, project, up):
    root = project[0]
    assert up.returncode == 0, up.stdout[-4000:] + up.stderr[-4000:]
    exporter = container(project, "exporter")
    assert exporter and state(project, exporter).get("ExitCode") == 0
    logs = compose(project, "logs", "--no-color", "exporter").stdout
    models = root / "demo-models"
    assert (models / "models.config").is_file() and (models / "monitoring.config").is_file(), logs
    assert {p.name for p in models.iterdir()} >= {"tower_a", "tower_b", "tower_c", "composed"}, logs
    # the container sees /app/demo-models, not the host's folder: the host's own config is the host's to write
    assert not (models / "models.host.config").exists(), logs
    owners = {(p.stat().st_uid, p.stat().st_gid) for p in [models, *models.rglob("*")]}
    assert owners == {OWNER}, owners


def test_serving_turns_healthy_through_the_healthcheck_script(engine, project, up):
    started = time.monotonic()
    name = wait_healthy(engine, project)
    timed("serving healthy", started)
    assert state(project, name).get("Health", {}).get("Status") == "healthy"
    probe = docker(project, "exec", name, "bash", "/usr/local/bin/tfsk-healthcheck", str(project[4]),
                   "/models/models.config")
    assert probe.returncode == 0 and "model composed: AVAILABLE" in probe.stdout, probe.stdout + probe.stderr
    assert docker(project, "exec", name, "sh", "-c", "command -v curl || command -v wget").returncode != 0


def test_the_smoke_profile_passes_with_the_light_image(engine, project, up):
    started = time.monotonic()
    run = compose(project, "--profile", "smoke", "run", "--rm", "smoke")
    timed("smoke (light image build + run)", started)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert "tower_c" in run.stdout


def test_the_read_only_mounts_are_read_only(engine, project, up):
    name = container(project, "serving")
    for path in ("/models/written-by-the-container", "/usr/local/bin/tfsk-healthcheck"):
        run = docker(project, "exec", name, "bash", "-c", f": > {path}")
        assert run.returncode != 0 and "Read-only file system" in run.stderr, (path, run.stdout, run.stderr)
    assert not (project[0] / "demo-models" / "written-by-the-container").exists()


def test_a_killed_serving_container_comes_back(engine, project, up):
    name = container(project, "serving")
    before = state(project, name)
    os.kill(before["Pid"], signal.SIGKILL)
    started = time.monotonic()
    deadline = started + 120
    while time.monotonic() < deadline:
        now = state(project, name)
        if now.get("Running") and now.get("Pid") not in (0, before["Pid"]):
            break
        time.sleep(1)
    else:
        raise AssertionError(f"not restarted: {state(project, name)}")
    wait_healthy(engine, project)
    timed("restart after SIGKILL until healthy", started)


def test_a_rollout_against_the_containerised_server_while_a_client_asks_stable(engine, project, up):
    root, path, env, grpc, rest = project
    sys.path.insert(0, str(REPO / "tests" / "deploy"))
    from test_rollout_support import ClientLoop, composed_inputs, new_tower

    wait_healthy(engine, project)
    address = f"127.0.0.1:{grpc}"
    keras_file = new_tower(root, "tower_b")
    where = ["--target", address, "--paths", "container"]
    loop = ClientLoop([address], "stable", composed_inputs(address)).start()
    started = time.monotonic()
    try:
        start = tfsk("rollout", "start", "tower_b", "--model", "composed", "--from", str(keras_file), *where,
                     cwd=root, env=env, timeout=900)
        assert start.returncode == 0, start.stdout + start.stderr
        assert "canary -> composed version 2" in start.stdout, start.stdout
        promote = tfsk("rollout", "promote", "composed", *where, cwd=root, env=env)
        assert promote.returncode == 0, promote.stdout + promote.stderr
        finish = tfsk("rollout", "finish", "composed", *where, cwd=root, env=env)
        assert finish.returncode == 0, finish.stdout + finish.stderr
        time.sleep(2)
    finally:
        loop.stop()
    timed("rollout start/promote/finish", started)
    assert loop.answers and not loop.failures, loop.failures[:5]
    assert loop.versions() >= {2}, loop.versions()


def test_tfsk_stack_up_status_logs_down_on_the_engine(engine, project, up):
    root, path, env, grpc, rest = project
    down = compose(project, "down", "--timeout", "10", timeout=300)
    assert down.returncode == 0, down.stderr
    started = time.monotonic()
    with HealthDriver(engine, project):
        run = tfsk("stack", "up", "-f", str(path), "--engine", "docker", "--timeout", "600", cwd=root, env=env,
                   timeout=1200)
    timed("tfsk stack up", started)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert f"127.0.0.1:{grpc}" in run.stdout and f"http://127.0.0.1:{rest}" in run.stdout
    status = tfsk("stack", "status", "-f", str(path), "--engine", "docker", cwd=root, env=env)
    assert status.returncode == 0, status.stdout + status.stderr
    assert "composed" in status.stdout and "AVAILABLE" in status.stdout
    check = tfsk("stack", "check", "-f", str(path), cwd=root, env=env)
    assert check.returncode == 0, check.stdout + check.stderr
    logs = tfsk("stack", "logs", "--no-follow", "-f", str(path), "--engine", "docker", cwd=root, env=env)
    assert logs.returncode == 0 and logs.stdout.strip(), logs.stdout + logs.stderr
    stop = tfsk("stack", "down", "-f", str(path), "--engine", "docker", cwd=root, env=env)
    assert stop.returncode == 0, stop.stdout + stop.stderr
    left = docker(project, "ps", "-q", "--filter", "label=com.docker.compose.project=tfskengine")
    assert left.returncode == 0 and not left.stdout.strip(), left.stdout
    assert not engine.podman("ps", "-q").stdout.strip()
