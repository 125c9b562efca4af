"""Interrupted rollouts (export failing, consistency check failing, server killed, Ctrl-C) leave ``stable``
serving what it served, say where they stopped, and resume without exporting twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the shared helpers beside this file
from test_rollout_support import new_tower, rollout_dir, start_replica

from tfsk import deploy
from tfsk import serving_config as sc
from tfsk.client import Client, ServingError


def versions_on_disk(folder: Path, model: str) -> list[int]:
    return sorted(int(p.name) for p in (folder / "demo-models" / model).iterdir() if p.name.isdigit())


def served_label(address: str, label: str) -> int | str:
    with Client(address, timeout=10, retries=0) as client:
        try:
            return client.metadata("composed", label=label).version
        except ServingError as error:
            return error.code


def declared_labels(folder: Path) -> dict[str, int]:
    return sc.load_declaration(folder / "tfsk.toml").model("composed").label_map


def test_failing_export_and_failing_check_leave_stable_and_resume_without_exporting_twice(tmp_path, demo_base):
    folder = rollout_dir(tmp_path, demo_base)
    with start_replica(folder) as server:
        targets = deploy.Targets((server.address,), "host", timeout=60)
        rollout = deploy.Rollout(folder / "tfsk.toml", "composed", targets)
        from tfsk.exporter import ModelSourceError

        with pytest.raises(ModelSourceError, match="no file"):
            rollout.start("tower_a", deploy.Source(keras_file=str(tmp_path / "missing.keras")))
        assert (rollout.state.step, rollout.state.done) == ("export-part", False)
        assert served_label(server.address, "stable") == 1 and declared_labels(folder) == {"stable": 1}
        assert versions_on_disk(folder, "tower_a") == [1]

        source = deploy.Source(keras_file=str(new_tower(tmp_path)))
        rollout = deploy.Rollout(folder / "tfsk.toml", "composed", targets)
        with pytest.raises(deploy.RolloutError, match="consistency check of composed version 2 failed"):
            rollout.start("tower_a", source, atol=-1.0)  # no difference is below -1: the check fails
        assert rollout.state.step == "check"
        assert served_label(server.address, "stable") == 1 and served_label(server.address, "canary") != 2
        assert declared_labels(folder) == {"stable": 1}  # version 2 loaded beside it, not labelled

        rollout = deploy.Rollout(folder / "tfsk.toml", "composed", targets)
        state = rollout.start("tower_a", source)
        assert (state.candidate, state.part_version, state.step, state.done) == (2, 2, "label", True)
        assert versions_on_disk(folder, "tower_a") == [1, 2] and versions_on_disk(folder, "composed") == [1, 2]
        assert served_label(server.address, "canary") == 2 and served_label(server.address, "stable") == 1
        # re-running a finished start changes nothing; another start while this one is open is refused
        assert rollout.start("tower_a", source).candidate == 2
        other = deploy.Rollout(folder / "tfsk.toml", "composed", targets)
        with pytest.raises(deploy.RolloutError, match="in progress"):
            other.start("tower_b", deploy.Source(version=1))


def test_killed_server_mid_start_keeps_stable_and_the_restarted_server_resumes(tmp_path, demo_base):
    folder = rollout_dir(tmp_path, demo_base)
    server = start_replica(folder)
    try:
        targets = deploy.Targets((server.address,), "host", timeout=20)

        def kill_after_export(line: str) -> None:
            if line.startswith("exported composed"):
                server.process.kill()
                server.process.wait()

        rollout = deploy.Rollout(folder / "tfsk.toml", "composed", targets, on_progress=kill_after_export)
        source = deploy.Source(keras_file=str(new_tower(tmp_path)))
        with pytest.raises(deploy.ApplyError, match="could not be pushed"):
            rollout.start("tower_a", source)
        assert rollout.state.step == "load" and declared_labels(folder) == {"stable": 1}

        port = server.port
        server.stop()
        # tfsk.toml now keeps versions [1, 2] with stable -> 1: the server starts with that label
        server = start_replica(folder, port=port)
        assert served_label(server.address, "stable") == 1
        state = deploy.Rollout(folder / "tfsk.toml", "composed", targets).start("tower_a", source)
        assert (state.candidate, state.part_version) == (2, 2)
        assert versions_on_disk(folder, "composed") == [1, 2]  # resumed: nothing exported twice
        assert served_label(server.address, "canary") == 2 and served_label(server.address, "stable") == 1
    finally:
        server.stop()


SLOW_TOWER = '''
import pathlib, time

from tfsk.demo import build_tower


def build():
    started = pathlib.Path("building")
    if not started.exists():  # the first run: the test interrupts it here, in the middle of the export
        started.write_text("now")
        time.sleep(120)
    return build_tower("tower_a")
'''


def test_ctrl_c_during_start_says_where_it_stopped_and_the_same_command_resumes(tmp_path, demo_base):
    folder = rollout_dir(tmp_path, demo_base)
    (folder / "slow_tower.py").write_text(SLOW_TOWER)
    with start_replica(folder) as server:
        command = [sys.executable, "-m", "tfsk", "rollout", "start", "tower_a", "--model", "composed",
                   "--factory", "slow_tower:build", "--target", server.address]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        process = subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)
        deadline = time.monotonic() + 120
        while not (folder / "building").exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
        assert process.returncode == 130, (out, err)
        assert "exporting tower_a" in out and "exported tower_a" not in out
        assert "interrupted" in err and "stable still names composed version 1" in err
        assert "run the same command again to resume" in err
        assert served_label(server.address, "stable") == 1 and declared_labels(folder) == {"stable": 1}
        assert versions_on_disk(folder, "tower_a") == [1]  # nothing half-written is left as a version

        again = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, again.stderr
        assert "canary -> composed version 2" in again.stdout
        assert served_label(server.address, "canary") == 2 and served_label(server.address, "stable") == 1
        status = subprocess.run([*command[:4], "status", "composed", "--target", server.address], cwd=folder,
                                env=env, capture_output=True, text=True, timeout=120)
        assert status.returncode == 0 and "label canary -> 2" in status.stdout and "healthy" in status.stdout


def test_promote_with_a_replica_down_moves_no_label_and_finish_resumes(tmp_path, demo_base):
    folder = rollout_dir(tmp_path, demo_base)
    servers = [start_replica(folder), start_replica(folder)]
    try:
        targets = deploy.Targets(tuple(s.address for s in servers), "host", timeout=15)
        rollout = deploy.Rollout(folder / "tfsk.toml", "composed", targets)
        rollout.start("tower_a", deploy.Source(keras_file=str(new_tower(tmp_path))))
        down = servers[1]
        down.process.kill()
        down.process.wait()
        with pytest.raises(deploy.ApplyError, match=f"{down.address}: version 2 of 'composed' did not become"):
            rollout.promote()  # the canary must be AVAILABLE on every replica before stable moves
        assert served_label(servers[0].address, "stable") == 1 and declared_labels(folder)["stable"] == 1

        port = down.port
        down.stop()
        servers[1] = start_replica(folder, port=port)  # starts from tfsk.toml: versions [1, 2], both labels
        assert served_label(servers[1].address, "canary") == 2
        assert rollout.promote() == 2
        assert {served_label(s.address, "stable") for s in servers} == {2}
        assert rollout.promote() == 2  # again: nothing moves, every replica still checked
        servers[0].process.kill()  # finish interrupted: nothing unloaded on the surviving replica...
        servers[0].process.wait()
        with pytest.raises(deploy.ApplyError):
            rollout.finish()
        assert versions_on_disk(folder, "composed") == [1, 2]  # ...and nothing pruned
        port = servers[0].port
        servers[0].stop()
        servers[0] = start_replica(folder, port=port)
        assert rollout.finish() == ["composed@1", "tower_a@1"]
        assert {served_label(s.address, "stable") for s in servers} == {2}
    finally:
        for server in servers:
            server.stop()
