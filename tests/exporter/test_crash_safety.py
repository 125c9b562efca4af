"""Crashes, races and full disks: no half-written numeric version, earlier versions untouched.

These run real exporter processes: killed with SIGKILL mid-write, racing each other, and writing
under a kernel-enforced file-size limit or onto a tiny tmpfs.
"""

import os
import resource
import signal
import subprocess
import sys
import time

import pytest
from support import (
    REPO,
    assert_every_version_loads,
    numeric_children,
    python,
    tree_digest,
)

from tfsk import exporter
from tfsk.demo import build_tower

# A part large enough (about 40 MB of weights) that writing it takes a while.
BIG_PART = """
import sys, keras
from tfsk import exporter
inputs = keras.Input((2000,), name="x")
outputs = keras.layers.Dense(5000)(inputs)
result = exporter.export_part(keras.Model(inputs, outputs), sys.argv[1], "big")
print(result.version)
"""

SMALL_PART = """
import sys
from tfsk import exporter
from tfsk.demo import build_tower
print(exporter.export_part(build_tower("tower_a"), sys.argv[1], "tower_a").version)
"""


def test_a_process_killed_mid_export_leaves_no_numeric_folder(tmp_path):
    model_dir = tmp_path / "big"
    process = subprocess.Popen([sys.executable, "-c", BIG_PART, str(tmp_path)], cwd=REPO,
                               env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    staged = []
    while time.monotonic() < deadline and process.poll() is None:
        staged = [p for p in model_dir.iterdir() if p.name.startswith(".tfsk-tmp-")] if model_dir.exists() else []
        if staged and any(staged[0].rglob("*")):
            break
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert staged, "the exporter never started writing: the test did not exercise a crash mid-export"
    assert numeric_children(model_dir) == []

    # The next export publishes version 1 and clears the dead exporter's leftovers.
    done = python(BIG_PART, str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == "1"
    assert numeric_children(model_dir) == ["1"]
    assert [p.name for p in model_dir.iterdir() if p.name.startswith(".tfsk-tmp-")] == []
    assert_every_version_loads(model_dir)


def test_racing_exporters_get_distinct_complete_versions(tmp_path):
    processes = [
        subprocess.Popen([sys.executable, "-c", SMALL_PART, str(tmp_path)], cwd=REPO,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outcomes = [p.communicate(timeout=300) for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], [err for _, err in outcomes]
    versions = sorted(int(out.split()[-1]) for out, _ in outcomes)
    assert versions == [1, 2, 3]
    assert numeric_children(tmp_path / "tower_a") == ["1", "2", "3"]
    assert_every_version_loads(tmp_path / "tower_a")


def _limit_file_size():
    # A file growing past 256 KiB fails with EFBIG, as a full disk fails with ENOSPC.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, 256 * 1024))


def test_a_write_failure_mid_export_publishes_nothing_and_keeps_earlier_versions(tmp_path):
    first = exporter.export_part(build_tower("tower_a"), tmp_path, "big")
    before = tree_digest(first.path)
    failed = python(BIG_PART, str(tmp_path), preexec_fn=_limit_file_size)
    assert failed.returncode != 0
    assert "ExportError" in failed.stderr and "Nothing was published" in failed.stderr
    assert "File too large" in failed.stderr
    assert numeric_children(tmp_path / "big") == ["1"]
    assert tree_digest(first.path) == before
    assert [p.name for p in (tmp_path / "big").iterdir() if p.name.startswith(".tfsk-tmp-")] == []


@pytest.fixture
def tiny_filesystem(tmp_path):
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount_point)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    yield mount_point
    subprocess.run(["umount", str(mount_point)], check=True)


def test_a_full_disk_publishes_nothing_and_keeps_earlier_versions(tiny_filesystem):
    first = exporter.export_part(build_tower("tower_a"), tiny_filesystem, "big")
    before = tree_digest(first.path)
    failed = python(BIG_PART, str(tiny_filesystem))
    assert failed.returncode != 0
    assert "No space left on device" in failed.stderr and "Nothing was published" in failed.stderr
    assert numeric_children(tiny_filesystem / "big") == ["1"]
    assert tree_digest(first.path) == before
    assert [p.name for p in (tiny_filesystem / "big").iterdir() if p.name.startswith(".tfsk-tmp-")] == []
    # The disk has room again once the failed export cleaned up after itself.
    assert exporter.export_part(build_tower("tower_a"), tiny_filesystem, "big").version == 2
