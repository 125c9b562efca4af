"""`tfsk rollout` against the compose stack on the devserver: targets found from `tfsk stack`, the
versions and labels it records in tfsk.toml served again when the stack starts anew (issue 12 §4)."""

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))  # the shared helpers beside this file
from server_process import free_port
from support import tfsk
from test_rollout_support import new_tower

from tfsk.client import Client


def test_rollout_on_the_devserver_stack_and_its_labels_at_the_next_start_up(served_stack_dir):
    stack = served_stack_dir
    grpc_port = free_port()
    env = {"TFSK_GRPC_PORT": str(grpc_port), "TFSK_REST_PORT": str(free_port())}
    keras_file = new_tower(stack, "tower_b")
    up = tfsk("stack", "up", "--engine", "devserver", "--no-prepare", "--timeout", "240", cwd=stack, env=env)
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        start = tfsk("rollout", "start", "tower_b", "--model", "composed", "--from", str(keras_file), cwd=stack,
                     env=env)
        assert start.returncode == 0, start.stdout + start.stderr
        assert f"pushed models.config to 127.0.0.1:{grpc_port}" in start.stdout  # the stack's endpoint, by default
        assert "canary -> composed version 2 (tower_b version 2); stable -> version 1" in start.stdout
        promote = tfsk("rollout", "promote", "composed", cwd=stack, env=env)
        assert promote.returncode == 0, promote.stdout + promote.stderr
        status = json.loads(tfsk("rollout", "status", "composed", "--json", cwd=stack, env=env).stdout)
        assert status["healthy"] and status["declared"] == {"versions": [1, 2], "labels": {"canary": 2, "stable": 2}}
        (served,) = status["targets"]
        assert {v["version"]: v["parts"]["tower_b"] for v in served["versions"] if v["state"] == "AVAILABLE"} == \
            {1: 1, 2: 2}
        # tfsk.toml now declares labels: a plain start-up config would be refused without the compose flag
        strict = tfsk("config", "validate", "--startup", "demo-models/models.config", "--declaration", "tfsk.toml",
                      cwd=stack)
        assert strict.returncode == 1 and "label-unavailable" in strict.stdout
        allowed = tfsk("config", "validate", "--startup", "--allow-version-labels-for-unavailable-models",
                       "demo-models/models.config", "--declaration", "tfsk.toml", cwd=stack)
        assert allowed.returncode == 0, allowed.stdout
    finally:
        down = tfsk("stack", "down", "--engine", "devserver", cwd=stack, env=env)
    assert down.returncode == 0
    again = tfsk("stack", "up", "--engine", "devserver", "--no-prepare", "--timeout", "240", cwd=stack, env=env)
    try:
        assert again.returncode == 0, again.stdout + again.stderr
        features = np.full((1, 5), 0.1, dtype=np.float32)
        with Client(f"127.0.0.1:{grpc_port}") as client:
            for label in ("stable", "canary"):
                answer = client.predict("composed", {"features": features}, label=label, signature="part_tower_c")
                assert answer.version == 2
    finally:
        tfsk("stack", "down", "--engine", "devserver", cwd=stack, env=env)
