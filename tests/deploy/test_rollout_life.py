"""A user's rollouts from the command line: refusals that say what to run (and are true), quiet
output, and a rollback that leaves the standalone parts serving what ``stable`` was built from."""

from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # the shared helpers beside this file
from support import tfsk
from test_rollout_support import new_tower, rollout_dir, start_replica

from tfsk import serving_config as sc

#: What TensorFlow's C++ side prints at start-up (absl's banner, cuda/cuDNN/oneDNN notes, glog lines).
NATIVE_LINE = re.compile(r"^(?:[IWEF]\d{4} |WARNING: All log messages)|oneDNN|cuda|cuDNN|cuFFT|cuBLAS|absl::"
                         r"|cpu_feature_guard|computation placer", re.MULTILINE)


def contract_changed_tower(folder: Path) -> Path:
    """tower_a with its input renamed: the same width in and out, another serving contract."""
    import keras

    inputs = keras.Input(shape=(10,), name="renamed")
    x = keras.layers.Dense(64, activation="relu")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(32, activation="relu")(x), name="tower_a")
    path = folder / "tower_a-renamed.keras"
    model.save(path)
    return path


def test_contract_change_flag_exit_codes_quiet_output_and_an_honest_refusal(tmp_path, demo_base):
    folder = rollout_dir(tmp_path, demo_base)
    keras_file = contract_changed_tower(tmp_path)
    env = {"TF_CPP_MIN_LOG_LEVEL": ""}  # as a user's shell: no log level set
    with start_replica(folder) as server:
        target = ("--target", server.address)
        refused = tfsk("rollout", "start", "tower_a", "--model", "composed", "--from", str(keras_file), *target,
                       cwd=folder, env=env)
        # the same break as `tfsk export part`: exit 1, and the flag it names exists
        assert refused.returncode == 1, refused.stderr
        assert "--allow-contract-change" in refused.stderr and "input 'features'" in refused.stderr
        assert not NATIVE_LINE.search(refused.stderr), refused.stderr
        assert sc.load_declaration(folder / "tfsk.toml").model("composed").label_map == {"stable": 1}

        started = tfsk("rollout", "start", "tower_a", "--model", "composed", "--from", str(keras_file), *target,
                       "--allow-contract-change", cwd=folder, env=env)
        assert started.returncode == 0, started.stderr
        assert "canary -> composed version 2" in started.stdout
        assert not NATIVE_LINE.search(started.stderr), started.stderr

        # a second rollout while the first is open is refused; running it again would be refused again
        other = tfsk("rollout", "start", "tower_b", "--model", "composed", "--from", str(new_tower(tmp_path, "tower_b")),
                     *target, cwd=folder, env=env)
        assert other.returncode == 2, other.stderr
        assert "in progress" in other.stderr and "tfsk rollout finish composed" in other.stderr
        assert "run the same command again" not in other.stderr

        finished = tfsk("rollout", "finish", "composed", *target, cwd=folder, env=env)
        assert finished.returncode == 0, finished.stderr
        assert not NATIVE_LINE.search(finished.stderr), finished.stderr


def test_rollback_then_finish_leaves_the_standalone_part_serving_what_stable_was_built_from(tmp_path, demo_base):
    from tfsk import deploy
    from tfsk.client import Client

    folder = rollout_dir(tmp_path, demo_base)
    with start_replica(folder) as server:
        targets = deploy.Targets((server.address,), "host", timeout=60)
        rollout = deploy.Rollout(folder / "tfsk.toml", "composed", targets)
        rollout.start("tower_a", deploy.Source(keras_file=str(new_tower(tmp_path))))
        rollout.promote()
        rollout.rollback()
        rollout.finish()
        declaration = sc.load_declaration(folder / "tfsk.toml")
        assert declaration.model("composed").label_map == {"stable": 1, "canary": 1}
        assert declaration.model("tower_a").policy == sc.VersionPolicy.specific([1])  # v2 is newest on disk
        with Client(server.address, timeout=30) as serving:
            assert serving.predict("tower_a", {"features": [[0.0] * 10]}).version == 1
            assert serving.check_consistency("composed").verdict == "consistent"
        check = tfsk("check", "composed", "--target", server.address, cwd=folder)
        assert check.returncode == 0, check.stdout + check.stderr

        # the next rollout, of another part, passes its consistency check
        state = deploy.Rollout(folder / "tfsk.toml", "composed", targets).start(
            "tower_b", deploy.Source(keras_file=str(new_tower(tmp_path, "tower_b"))))
        assert state.step == "label" and state.done


def test_a_part_that_moved_on_keeps_its_newest_and_loads_what_stable_was_built_from(tmp_path, demo_base):
    """A user exported a newer tower_c before rolling out tower_a (the lifecycle machine's sequence): start
    loads tower_c@1 beside it instead of stopping at the check (unversioned requests still get 7)."""
    import shutil

    from tfsk import deploy
    from tfsk.client import Client

    folder = rollout_dir(tmp_path, demo_base)
    parts = folder / "demo-models" / "tower_c"
    shutil.copytree(parts / "1", parts / "7")  # the standalone tower_c serves 7 (latest), composed was built on 1
    with start_replica(folder) as server:
        rollout = deploy.Rollout(folder / "tfsk.toml", "composed", deploy.Targets((server.address,), "host", timeout=60))
        rollout.start("tower_a", deploy.Source(keras_file=str(new_tower(tmp_path))))
        assert sc.load_declaration(folder / "tfsk.toml").model("tower_c").policy == sc.VersionPolicy.specific([1, 7])
        with Client(server.address, timeout=30) as serving:
            assert serving.predict("tower_c", {"features": [[0.0] * 5]}).version == 7
            assert serving.check_consistency("composed", label="stable").verdict == "consistent"


def test_the_demo_after_a_rollout_serves_the_declared_labels_and_exports_no_new_set(tmp_path, demo_base):
    import json

    from server_process import free_port

    from tfsk import deploy

    folder = rollout_dir(tmp_path, demo_base)
    with start_replica(folder) as server:
        rollout = deploy.Rollout(folder / "tfsk.toml", "composed", deploy.Targets((server.address,), "host", timeout=60))
        rollout.start("tower_a", deploy.Source(keras_file=str(new_tower(tmp_path))))
        rollout.promote()
        rollout.finish()
    before = sorted(str(p.relative_to(folder)) for p in (folder / "demo-models").glob("*/[0-9]*"))
    demo = tfsk("demo", "--declaration", str(folder / "tfsk.toml"), "--port", str(free_port()), "--json", cwd=folder)
    answer = json.loads(demo.stdout)
    assert demo.returncode == 0 and answer["ok"] is True, demo.stdout + demo.stderr
    assert answer["query"]["available"]["composed"] == 2 and answer["query"]["consistent"] is True
    assert sorted(str(p.relative_to(folder)) for p in (folder / "demo-models").glob("*/[0-9]*")) == before

    fresh = tfsk("demo", "--declaration", str(folder / "tfsk.toml"), "--port", str(free_port()), "--fresh", cwd=folder)
    assert fresh.returncode == 2 and "labels versions (composed: canary -> 2, stable -> 2)" in fresh.stderr
    assert sorted(str(p.relative_to(folder)) for p in (folder / "demo-models").glob("*/[0-9]*")) == before


def test_stable_stays_checkable_through_a_rollout_and_an_export_of_another_part(tmp_path, demo_base):
    """Found by the lifecycle machine: the rolled-out part's new version replaced the one ``stable`` was
    built from (the parts serve ``latest``), so ``tfsk check composed --label stable`` could not ask it
    until finish; likewise a user's ``tfsk export part`` of another part meanwhile."""
    import time

    from tfsk import deploy
    from tfsk.client import Client
    from tfsk.exporter import export_part

    folder = rollout_dir(tmp_path, demo_base)
    with start_replica(folder) as server:
        rollout = deploy.Rollout(folder / "tfsk.toml", "composed", deploy.Targets((server.address,), "host", timeout=60))
        rollout.start("tower_c", deploy.Source(keras_file=str(new_tower(tmp_path, "tower_c"))))
        declaration = sc.load_declaration(folder / "tfsk.toml")
        assert declaration.model("tower_c").policy == sc.VersionPolicy.specific([1, 2])  # stable's and the canary's
        assert declaration.model("tower_b").policy == sc.VersionPolicy.specific([1])  # what it served: nothing moved
        export_part(str(new_tower(tmp_path, "tower_b")), folder / "demo-models", "tower_b")  # the user's own export
        time.sleep(3)  # three polls of the version folders: a `latest` tower_b would be swapped for version 2 by now
        with Client(server.address, timeout=30) as serving:
            assert serving.predict("tower_c", {"features": [[0.0] * 5]}).version == 2  # unversioned: the newest
            assert serving.check_consistency("composed", label="stable").verdict == "consistent"
            assert serving.check_consistency("composed", label="canary").verdict == "consistent"
        rollout.promote()
        rollout.finish()
        declaration = sc.load_declaration(folder / "tfsk.toml")
        assert declaration.model("tower_c").policy == sc.VersionPolicy.specific([2])  # what stable is built from
        with Client(server.address, timeout=30) as serving:
            assert serving.check_consistency("composed", label="stable").verdict == "consistent"
