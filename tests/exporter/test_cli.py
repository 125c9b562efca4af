"""``tfsk export`` as a user runs it: a fresh process, real files, exit codes and messages."""

import json

import numpy as np
from support import numeric_children, run_like_tf_serving, tfsk

from tfsk.demo import build_head, build_tower


def test_demo_then_list_shows_every_model_and_lineage(tmp_path):
    first = tfsk("export", "demo", "--base", str(tmp_path))
    assert first.returncode == 0, first.stderr
    assert "composed: published version 1" in first.stdout
    second = tfsk("export", "demo", "--base", str(tmp_path))
    assert second.returncode == 0, second.stderr
    assert "tower_c: published version 2" in second.stdout and "composed: published version 2" in second.stdout

    listing = tfsk("export", "list", "--base", str(tmp_path), "--json")
    assert listing.returncode == 0, listing.stderr
    models = {m["name"]: m for m in json.loads(listing.stdout)}
    assert sorted(models) == ["composed", "tower_a", "tower_b", "tower_c"]
    newest = models["composed"]["versions"][0]
    assert newest["version"] == 2
    assert [(p["name"], p["version"]) for p in newest["lineage"]["parts"]] == [("tower_a", 2), ("tower_b", 2), ("tower_c", 2)]
    assert sorted(newest["signatures"]) == ["part_tower_a", "part_tower_b", "part_tower_c", "serving_default", "tfsk_lineage"]

    text = tfsk("export", "list", "--base", str(tmp_path), "composed")
    assert "parts: tower_a@2, tower_b@2, tower_c@2; head: factory tfsk.demo:build_head (width 96)" in text.stdout
    assert "serving_default: (tower_a__features float32[?,10]" in text.stdout


def test_part_and_composed_from_files_with_examples(tmp_path):
    for name in ("tower_a", "tower_c"):
        build_tower(name).save(tmp_path / f"{name}.keras")
    build_head(64).save(tmp_path / "head.keras")
    examples = tmp_path / "examples.npz"
    np.savez(examples, features=np.ones((2, 10), "float32"))
    models = tmp_path / "models"

    part = tfsk("export", "part", str(tmp_path / "tower_a.keras"), "--base", str(models), "--name", "tower_a",
                "--examples", str(examples), "--json")
    assert part.returncode == 0, part.stderr
    assert json.loads(part.stdout)["lineage"]["warmup_records"] == 1
    part = tfsk("export", "part", str(tmp_path / "tower_c.keras"), "--base", str(models), "--name", "tower_c",
                "--version", "7")
    assert part.returncode == 0 and "tower_c: published version 7" in part.stdout

    composed = tfsk("export", "composed", "--base", str(models), "--name", "both", "--part", "tower_a@1",
                    "--part", "tower_c@latest", "--head", str(tmp_path / "head.keras"))
    assert composed.returncode == 0, composed.stderr
    outputs = run_like_tf_serving(models / "both" / "1", "part_tower_c", {"features": np.ones((1, 5), "float32")})
    assert outputs["embedding"].shape == (1, 32)


def test_failures_exit_2_with_the_reason(tmp_path):
    build_tower("tower_c").save(tmp_path / "tower_c.keras")
    models = tmp_path / "models"
    ok = tfsk("export", "part", str(tmp_path / "tower_c.keras"), "--base", str(models), "--name", "tower_c")
    assert ok.returncode == 0, ok.stderr

    again = tfsk("export", "part", str(tmp_path / "tower_c.keras"), "--base", str(models), "--name", "tower_c",
                 "--version", "1")
    assert again.returncode == 2
    assert "error: version 1 of 'tower_c' already exists" in again.stderr

    missing = tfsk("export", "composed", "--base", str(models), "--name", "c", "--part", "tower_c@3",
                   "--head", "tfsk.demo:build_head")
    assert missing.returncode == 2 and "has no version 3" in missing.stderr and "available versions: [1]" in missing.stderr

    width = tfsk("export", "composed", "--base", str(models), "--name", "c", "--part", "tower_c",
                 "--head", str(tmp_path / "tower_c.keras"))
    assert width.returncode == 2 and "head takes input width 5 but the parts concatenate to width 32" in width.stderr

    bad_name = tfsk("export", "part", str(tmp_path / "tower_c.keras"), "--base", str(models), "--name", "a/b")
    assert bad_name.returncode == 2 and "invalid part name 'a/b'" in bad_name.stderr

    usage = tfsk("export", "part", "--base", str(models))
    assert usage.returncode == 2 and "required" in usage.stderr
    assert numeric_children(models / "tower_c") == ["1"]
    assert not (models / "c").exists() or numeric_children(models / "c") == []


def test_prune_from_the_command_line(tmp_path):
    build_tower("tower_c").save(tmp_path / "t.keras")
    for _ in range(3):
        assert tfsk("export", "part", str(tmp_path / "t.keras"), "--base", str(tmp_path), "--name", "t").returncode == 0
    dry = tfsk("export", "prune", "t", "--base", str(tmp_path), "--keep", "1", "--dry-run")
    assert dry.returncode == 0 and "would remove [1, 2]" in dry.stdout
    done = tfsk("export", "prune", "t", "--base", str(tmp_path), "--keep", "1", "--protect", "1", "--json")
    assert json.loads(done.stdout) == {"kept": [1, 3], "removed": [2], "dry_run": False}
    assert numeric_children(tmp_path / "t") == ["1", "3"]


def test_top_level_help_and_unknown_commands():
    shown = tfsk("--help")
    assert shown.returncode == 0 and "export" in shown.stdout
    unknown = tfsk("nonsense")
    assert unknown.returncode == 2 and "unknown command 'nonsense'" in unknown.stderr


def test_export_shows_no_tensorflow_log_lines(tmp_path):
    run = tfsk("export", "demo", "--base", str(tmp_path), "--json")
    assert run.returncode == 0, run.stderr
    assert [m["model"] for m in json.loads(run.stdout)["models"]] == ["tower_a", "tower_b", "tower_c", "composed"]
    # The C++ start-up banner is written before TensorFlow's log level applies: the CLI must keep it off stderr.
    assert run.stderr == ""


def test_an_unwritable_base_is_one_line_that_says_what_and_where(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    run = tfsk("export", "demo", "--base", str(tmp_path / "file" / "models"))
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines() == [run.stderr.strip()]
    assert f"{tmp_path / 'file'}" in run.stderr and "is a file, not a folder" in run.stderr


SLOW_FACTORY = '''
import pathlib, time

def build():
    pathlib.Path("loading").write_text("now")
    time.sleep(60)  # the test interrupts us here
'''


def _interrupt_when(process, ready, timeout=120):
    import signal
    import time

    deadline = time.monotonic() + timeout
    while not ready() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    return process.communicate(timeout=60)


def test_ctrl_c_says_what_was_published(tmp_path):
    import os
    import subprocess
    import sys

    (tmp_path / "slow_factory.py").write_text(SLOW_FACTORY)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    early = subprocess.Popen([sys.executable, "-m", "tfsk", "export", "part", "slow_factory:build", "--base",
                              str(tmp_path / "models"), "--name", "slow"], cwd=tmp_path, env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, err = _interrupt_when(early, (tmp_path / "loading").exists)
    assert early.returncode == 130, err
    assert err.strip() == f"tfsk export part: error: interrupted; nothing was published under {tmp_path / 'models'}"

    for attempt in range(3):  # on a loaded machine the rest of the demo may publish before the signal lands
        base = tmp_path / f"demo{attempt}"
        demo = subprocess.Popen([sys.executable, "-m", "tfsk", "export", "demo", "--base", str(base)],
                                cwd=tmp_path, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _, err = _interrupt_when(demo, (base / "tower_a" / "1").exists)
        if not (demo.returncode == 0 and (base / "composed" / "1").exists()):
            break
    assert demo.returncode == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "interrupted; published tower_a@1" in err and "not published:" in err and "composed" in err


def _mount_tmpfs(mount_point, options):
    import subprocess

    import pytest

    mount_point.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount_point)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    return lambda: subprocess.run(["umount", str(mount_point)], check=True)


def test_a_read_only_or_full_disk_is_one_line_that_says_what_and_where(tmp_path):
    import subprocess

    build_tower("tower_c").save(tmp_path / "tower_c.keras")
    disk = tmp_path / "disk"
    unmount = _mount_tmpfs(disk, "size=1m")
    try:
        (disk / "models" / "tower_c").mkdir(parents=True)
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        read_only = tfsk("export", "part", str(tmp_path / "tower_c.keras"), "--base", str(disk / "models"),
                         "--name", "tower_c")
        assert read_only.returncode == 2 and "Traceback" not in read_only.stderr
        assert read_only.stderr.strip() == (f"tfsk export part: error: {disk / 'models' / 'tower_c' / '.tfsk.lock'}: "
                                            "Read-only file system; the file system is read-only: choose a folder "
                                            "you can write to")
        subprocess.run(["mount", "-o", "remount,rw", str(disk)], check=True)
        with open(disk / "filler", "wb") as filler:  # fill the 1 MiB disk to the last byte
            for _ in range(1024):
                try:
                    filler.write(b"\0" * 1024)
                    filler.flush()
                except OSError:
                    break
        full = tfsk("export", "part", str(tmp_path / "tower_c.keras"), "--base", str(disk / "models"),
                    "--name", "tower_c")
        assert full.returncode == 2 and "Traceback" not in full.stderr
        assert len(full.stderr.strip().splitlines()) == 1 and "No space left on device" in full.stderr
        assert numeric_children(disk / "models" / "tower_c") == []
    finally:
        unmount()


def test_ctrl_c_in_the_first_export_of_a_model_leaves_no_empty_model_folder(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    base = tmp_path / "models"
    demo = subprocess.Popen([sys.executable, "-m", "tfsk", "export", "demo", "--base", str(base)],
                            cwd=tmp_path, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, err = _interrupt_when(demo, (base / "tower_a" / ".tfsk.lock").exists)  # tower_a's first version under way
    assert demo.returncode in (2, 130), err
    left = {folder.name: sorted(p.name for p in folder.iterdir()) for folder in base.iterdir() if folder.is_dir()} \
        if base.exists() else {}
    assert all(any(name.isdigit() for name in names) for names in left.values()), left
