"""The README's "Life of a deployment" block, run as written on the devserver engine: a rollout, a
rollback, a finish, the stack restarted around the demo; after each step the labels are what its
comment says, and at the end ``stable`` answers and agrees with its parts (issue 21, "Done when")."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))  # the shared helpers beside this file
from doc_snippets import marked_blocks, shell_commands
from server_process import free_port
from support import tfsk
from test_rollout_support import new_tower

from tfsk import deploy
from tfsk import serving_config as sc
from tfsk._base.ports import why_port_is_taken
from tfsk.client import Client

#: composed in tfsk.toml after each step (versions kept loaded, labels), as the block's comments say.
DECLARED_AFTER = {
    "rollout start": ((1, 2), {"stable": 1, "canary": 2}),
    "rollout promote": ((1, 2), {"stable": 2, "canary": 2}),
    "rollout rollback": ((1, 2), {"stable": 1, "canary": 2}),
    "rollout finish": ((1,), {"stable": 1, "canary": 1}),
}


def as_run_here(argv: list[str]) -> list[str]:
    """The command as this machine must run it to mean what the block means. Only two things can
    differ, and only when this machine forces them: a Docker engine that answers would take `tfsk
    stack` (auto) from the devserver engine this test is about, and the demo's fixed port 8500 may
    be taken by something outside the test (the stack's ports come from the environment instead)."""
    if argv[:2] == ["tfsk", "stack"] and argv[2] in ("up", "down") and deploy.docker_engine_problem() is None:
        return [*argv, "--engine", "devserver"]
    if argv[1:] == ["demo"] and why_port_is_taken("127.0.0.1", 8500):
        return [*argv, "--port", str(free_port())]
    return argv


def test_the_readme_life_of_a_deployment_runs_as_written(served_stack_dir):
    ((language, code),) = marked_blocks("README.md", "life-of-a-deployment")
    commands = shell_commands(code, language)
    assert [argv[:2] for argv in commands] == [["tfsk", "stack"], *[["tfsk", "rollout"]] * 4, ["tfsk", "stack"],
                                               ["tfsk", "demo"], ["tfsk", "stack"], ["tfsk", "check"]]
    folder = served_stack_dir
    new_tower(folder).rename(folder / "tower_a.keras")  # "the tower retrained above"
    port = free_port()
    # where this user's stack listens: the compose file's variables, and the client's
    env = {"TFSK_GRPC_PORT": str(port), "TFSK_REST_PORT": str(free_port()), "TFSK_TARGET": f"127.0.0.1:{port}"}
    features = {"features": np.full((1, 5), 0.1, dtype=np.float32)}
    first_up = True
    try:
        for argv in commands:
            run = tfsk(*as_run_here(argv)[1:], cwd=folder, env=env)
            assert run.returncode == 0, f"{' '.join(argv)}\n{run.stdout}\n{run.stderr}"
            step = " ".join(argv[1:3])
            if step == "stack up" and first_up:  # "every model at version 1"
                first_up = False
                with Client(env["TFSK_TARGET"]) as client:
                    for model in ("tower_a", "tower_b", "tower_c", "composed"):
                        assert [v.version for v in client.status(model) if v.state == "AVAILABLE"] == [1], model
            if step in DECLARED_AFTER:
                composed = sc.load_declaration(folder / "tfsk.toml").model("composed")
                assert (composed.policy.versions, composed.label_map) == DECLARED_AFTER[step], (step, composed)
                with Client(env["TFSK_TARGET"]) as client:  # the stack serves what tfsk.toml says
                    answer = client.predict("composed", features, label="stable", signature="part_tower_c")
                    assert answer.version == DECLARED_AFTER[step][1]["stable"], step
                    # what `tfsk check --label stable` asks: stable's version, not the newest loaded one
                    assert client.check_consistency("composed", label="stable").version == answer.version, step
        assert re.search(r"composed version 1: consistent", run.stdout), run.stdout  # the last command: check
        declaration = sc.load_declaration(folder / "tfsk.toml")
        assert declaration.model("tower_a").policy == sc.VersionPolicy.specific([1])
        with Client(env["TFSK_TARGET"]) as client:  # after the restart: what the steps left, served again
            for label in ("stable", "canary"):
                assert client.predict("composed", features, label=label, signature="part_tower_c").version == 1
            assert [v.version for v in client.status("composed") if v.state == "AVAILABLE"] == [1]
            assert [v.version for v in client.status("tower_a") if v.state == "AVAILABLE"] == [1]
    finally:
        tfsk("stack", "down", "--engine", "devserver", cwd=folder, env=env)
