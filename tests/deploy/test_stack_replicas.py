"""`tfsk stack` on the devserver with a published port range: one real devserver per port, as
`docker compose up --scale serving=N` runs one container per port of the range (issue 21, item 8).

One stack of two replicas serves the whole module, in order: up, queries on every port, status,
logs, a rollout that moves labels on both, a replica killed (status names it, up starts it again),
then down with one replica already dead.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the shared helpers beside this file
from conftest import copy_stack
from server_process import free_port, free_ports
from support import tfsk
from test_rollout_support import new_tower

from tfsk import deploy
from tfsk import serving_config as sc
from tfsk.client import Client

FEATURES = {"features": np.full((1, 5), 0.1, dtype=np.float32)}


def refused(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def pid_of(folder: Path, replica: int) -> int:
    name = "devserver.pid" if replica == 1 else f"devserver-{replica}.pid"
    return int(json.loads((folder / ".tfsk" / "stack" / name).read_text())["pid"])


class Stack:
    def __init__(self, folder: Path, grpc: int, rest: int) -> None:
        self.folder, self.grpc, self.rest = folder, [grpc, grpc + 1], [rest, rest + 1]
        self.env = {"TFSK_GRPC_PORT": f"{grpc}-{grpc + 1}", "TFSK_REST_PORT": f"{rest}-{rest + 1}"}

    def run(self, *args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
        return tfsk(*args, cwd=self.folder, env={**self.env, **(env or {})})


@pytest.fixture(scope="module")
def stack(tmp_path_factory, demo_base):
    folder = copy_stack(tmp_path_factory.mktemp("replicas"))
    shutil.copytree(demo_base, folder / "demo-models")
    sc.write_configs(sc.load_declaration(folder / "tfsk.toml"))
    served = Stack(folder, free_ports(2), free_ports(2))
    up = served.run("stack", "up", "--engine", "devserver", "--no-prepare", "--timeout", "240")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        served.up = up  # type: ignore[attr-defined]
        yield served
    finally:
        served.run("stack", "down", "--engine", "devserver")


def test_up_starts_one_devserver_per_port_of_the_range(stack):
    assert "the stack is up (devserver, 2 replicas); every model is AVAILABLE on each" in stack.up.stdout
    assert f"try: tfsk status composed --target 127.0.0.1:{stack.grpc[0]},127.0.0.1:{stack.grpc[1]}" in stack.up.stdout
    pids = {pid_of(stack.folder, 1), pid_of(stack.folder, 2)}
    assert len(pids) == 2
    for grpc_port, rest_port in zip(stack.grpc, stack.rest, strict=True):
        assert f"--port={grpc_port} --rest_api_port={rest_port}" in stack.up.stdout  # the same flags otherwise
        with Client(f"127.0.0.1:{grpc_port}") as client:
            assert client.predict("composed", FEATURES, signature="part_tower_c").version == 1
        with urllib.request.urlopen(f"http://127.0.0.1:{rest_port}/v1/models/composed", timeout=30) as answer:
            assert json.load(answer)["model_version_status"][0]["state"] == "AVAILABLE"
    logs = stack.run("stack", "logs", "--no-follow", "--engine", "devserver")
    for replica, port in enumerate(stack.grpc, 1):  # each replica's log, its lines prefixed as Compose does
        assert re.search(rf"^replica {replica} \| .*Running gRPC ModelServer at 127.0.0.1:{port}\b", logs.stdout,
                         re.MULTILINE), logs.stdout
    status = json.loads(stack.run("stack", "status", "--json", env={"TFSK_GRPC_PORT": "8500"}).stdout)
    # read from the pid files, not from the environment of the command that asks
    assert status["healthy"] and [r["endpoints"]["grpc"] for r in status["replicas"]] == \
        [f"127.0.0.1:{port}" for port in stack.grpc]
    assert all(len(r["models"]) == 4 for r in status["replicas"])
    again = stack.run("stack", "up", "--engine", "devserver", "--no-prepare")
    assert again.returncode == 2 and "already running" in again.stderr and f"127.0.0.1:{stack.grpc[1]}" in again.stderr


def test_a_rollout_moves_the_labels_on_every_replica(stack):
    keras_file = new_tower(stack.folder, "tower_b")
    start = stack.run("rollout", "start", "tower_b", "--model", "composed", "--from", str(keras_file))
    assert start.returncode == 0, start.stdout + start.stderr
    # the stack's replicas are the rollout's targets, by default
    assert f"pushed models.config to 127.0.0.1:{stack.grpc[0]}, 127.0.0.1:{stack.grpc[1]}" in start.stdout
    promote = stack.run("rollout", "promote", "composed")
    assert promote.returncode == 0, promote.stdout + promote.stderr
    for port in stack.grpc:
        with Client(f"127.0.0.1:{port}") as client:
            for label in ("stable", "canary"):
                assert client.predict("composed", FEATURES, label=label, signature="part_tower_c").version == 2


def test_a_replica_that_dies_is_reported_with_its_port_and_up_starts_only_it_again(stack):
    survivor = pid_of(stack.folder, 1)
    os.kill(pid_of(stack.folder, 2), signal.SIGKILL)
    status = stack.run("stack", "status", "--engine", "devserver")
    assert status.returncode == 1 and "NOT healthy" in status.stdout, status.stdout + status.stderr
    assert f"replica 2: EXITED (pid {pid_of(stack.folder, 2)}, gRPC 127.0.0.1:{stack.grpc[1]} does not answer)" \
        in status.stdout
    up = stack.run("stack", "up", "--engine", "devserver", "--no-prepare", "--timeout", "240")
    assert up.returncode == 0, up.stdout + up.stderr
    assert f"replica 2 (gRPC 127.0.0.1:{stack.grpc[1]}) has exited: starting it again" in up.stdout
    assert pid_of(stack.folder, 1) == survivor
    with Client(f"127.0.0.1:{stack.grpc[1]}") as client:  # what the rollout wrote in tfsk.toml, served again
        assert client.predict("composed", FEATURES, label="stable", signature="part_tower_c").version == 2


def test_down_stops_every_replica_also_when_one_is_already_dead(stack):
    dead, alive = pid_of(stack.folder, 1), pid_of(stack.folder, 2)
    os.kill(dead, signal.SIGKILL)
    down = stack.run("stack", "down", "--engine", "devserver")
    assert down.returncode == 0, down.stdout + down.stderr
    assert f"replica 1, gRPC 127.0.0.1:{stack.grpc[0]}: had already exited (pid {dead})" in down.stdout
    assert f"stopped the devserver (pid {alive}; replica 2, gRPC 127.0.0.1:{stack.grpc[1]})" in down.stdout
    assert all(refused(port) for port in stack.grpc + stack.rest)
    assert not list((stack.folder / ".tfsk" / "stack").glob("*.pid"))
    status = stack.run("stack", "status", "--engine", "devserver")
    assert status.returncode == 1 and "not running" in status.stdout


def test_a_taken_port_of_the_range_is_named_and_nothing_starts(served_stack_dir):
    first = free_ports(3)
    env = {"TFSK_GRPC_PORT": f"{first}-{first + 2}", "TFSK_REST_PORT": str(free_port())}
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", first + 1))
        squatter.listen()
        up = tfsk("stack", "up", "--engine", "devserver", "--no-prepare", "--timeout", "60", cwd=served_stack_dir,
                  env=env)
    assert up.returncode == 2, up.stdout + up.stderr
    assert f"replica 2 of 3: port {first + 1} on 127.0.0.1 (--port) is in use" in up.stderr
    assert refused(first) and refused(first + 2) and not list((served_stack_dir / ".tfsk" / "stack").glob("*.pid"))


def test_replica_ports_one_rest_port_ranges_that_differ_or_overlap(served_stack_dir):
    compose = served_stack_dir / "docker-compose.yml"
    spec = deploy.load_stack(compose, environ={"TFSK_GRPC_PORT": "9700-9702", "TFSK_REST_PORT": "9710"})
    arguments = [deploy.devserver_arguments(spec, replica) for replica in (1, 2, 3)]
    assert [a[:2] for a in arguments] == [["--port=9700", "--rest_api_port=9710"], ["--port=9701", "--rest_api_port=0"],
                                          ["--port=9702", "--rest_api_port=0"]]  # one REST port: the first replica's
    assert [a[2:] for a in arguments[1:]] == [arguments[0][2:]] * 2
    assert spec.endpoints(replica=3).grpc == "127.0.0.1:9702" and spec.endpoints(replica=3).rest is None
    with pytest.raises(deploy.StackError, match="replicas 1 to 3"):
        deploy.devserver_arguments(spec, 4)
    differ = deploy.load_stack(compose, environ={"TFSK_GRPC_PORT": "9700-9702", "TFSK_REST_PORT": "9710-9711"})
    with pytest.raises(deploy.StackError, match=r"ranges of the same length, e.g. TFSK_GRPC_PORT=8500-8502"):
        deploy.devserver_arguments(differ)
    assert "port-range-length" in tfsk("stack", "check", "--no-disk-check", cwd=served_stack_dir,
                                       env={"TFSK_GRPC_PORT": "9700-9702", "TFSK_REST_PORT": "9710-9711"}).stdout
    overlap = deploy.load_stack(compose, environ={"TFSK_GRPC_PORT": "8500-8502"})  # REST stays 8501
    with pytest.raises(deploy.StackError, match="host port 8501 would serve both --rest_api_port of replica 1 "
                                                "and --port of replica 2"):
        deploy.devserver_arguments(overlap)
