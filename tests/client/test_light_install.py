"""`pip install tfsk` without extras: no TensorFlow, yet the client and the config tools work.

A fresh virtual environment gets the project installed the way a user installs it (a built wheel,
no extras, the pinned constraints), then queries a running devserver with the CLI and the Python
API and validates a config, all from that environment.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import REPO

#: What the light install may bring: the client's and config tools' own needs, nothing heavy.
HEAVY = ("tensorflow", "tensorflow-serving-api", "keras", "tensorflow-cpu", "tf-keras", "jax", "torch")


@pytest.fixture(scope="module")
def light_venv(tmp_path_factory):
    root = tmp_path_factory.mktemp("light")
    source = root / "source"  # a copy, so the build leaves nothing in the working tree
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis", "demo-models",
        "benchmarks", "tests"))
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    install = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--constraint", str(REPO / "constraints.txt"), str(source)],
        capture_output=True, text=True, timeout=900)
    assert install.returncode == 0, install.stdout + install.stderr
    return venv


def _run(venv: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(venv / "bin" / args[0]), *args[1:]], capture_output=True, text=True,
                          timeout=120, cwd=venv.parent, env=env, **kwargs)


def test_the_light_install_has_no_tensorflow(light_venv):
    listed = _run(light_venv, "python", "-m", "pip", "list", "--format=json", "--disable-pip-version-check")
    installed = {entry["name"].lower() for entry in json.loads(listed.stdout)}
    assert "tfsk" in installed and "grpcio" in installed and "protobuf" in installed
    assert not installed & set(HEAVY), sorted(installed & set(HEAVY))
    probe = _run(light_venv, "python", "-c", "import importlib.util as u; print(u.find_spec('tensorflow'))")
    assert probe.stdout.strip() == "None"


def test_the_light_install_queries_a_devserver_with_the_cli(light_venv, demo_server):
    target = ["--target", demo_server.address]
    predict = _run(light_venv, "tfsk", "predict", "tower_c", *target, "--json",
                   "--input", "features=[[1, 2, 3, 4, 5]]")
    assert predict.returncode == 0, predict.stderr
    assert json.loads(predict.stdout)["outputs"]["embedding"]["shape"] == [1, 32]
    for verb in ("metadata", "status", "parts", "check"):
        run = _run(light_venv, "tfsk", verb, "composed", *target)
        assert run.returncode == 0, f"tfsk {verb}: {run.stdout}{run.stderr}"
    assert "tower_b" in _run(light_venv, "tfsk", "parts", "composed", *target).stdout


def test_the_light_install_uses_the_python_api_and_the_config_tools(light_venv, demo_server, tmp_path):
    script = f"""
import sys
import numpy as np
from tfsk.client import Client
from tfsk import serving_config
with Client({demo_server.address!r}) as serving:
    answer = serving.predict("composed", {{f"tower_{{p}}__features": np.ones((2, w), np.float32)
                                           for p, w in (("a", 10), ("b", 10), ("c", 5))}})
    print("prediction", answer["prediction"].shape, answer.version)
    print("consistent", serving.check_consistency("composed").consistent)
report = serving_config.validate_file({str(demo_server.config_path)!r})
print("config-errors", len(report.errors))
print("tensorflow-loaded", "tensorflow" in sys.modules)
"""
    run = _run(light_venv, "python", "-c", script)
    assert run.returncode == 0, run.stderr
    assert "prediction (2, 1) 1" in run.stdout
    assert "consistent True" in run.stdout
    assert "config-errors 0" in run.stdout
    assert "tensorflow-loaded False" in run.stdout
    validate = _run(light_venv, "tfsk", "config", "validate", str(demo_server.config_path))
    assert validate.returncode == 0, validate.stdout + validate.stderr
