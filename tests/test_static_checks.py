"""The test command runs the linters: ``ruff check`` over the repository and mypy as pyproject.toml
configures it (``--strict`` flags on tfsk._base, tfsk.client and tfsk.serving_config, default
strictness elsewhere), with the versions pinned in the ``test`` extra."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *command], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_finds_nothing():
    done = _run("-m", "ruff", "check", "--no-cache", ".")
    assert done.returncode == 0, f"ruff check . failed:\n{done.stdout}{done.stderr}"


def test_mypy_finds_nothing():
    done = _run(str(ROOT / "tools" / "typecheck.py"))
    assert done.returncode == 0, f"python tools/typecheck.py (mypy) failed:\n{done.stdout}{done.stderr}"


@pytest.mark.parametrize("module", ["tfsk.client", "tfsk._base", "tfsk.serving_config"])
def test_the_light_packages_pass_mypy_strict(module):
    """The config spells --strict out flag by flag per module; this holds it to the real flag."""
    done = _run(str(ROOT / "tools" / "typecheck.py"), "--strict", "-p", module)
    assert done.returncode == 0, f"mypy --strict -p {module} failed:\n{done.stdout}{done.stderr}"
