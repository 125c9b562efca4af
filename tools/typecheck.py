"""Run mypy over the installed namespace (``tfsk.*``) as pyproject.toml's ``[tool.mypy]`` configures it.

The packages' folders sit at the top of the repository and install as one namespace through
setuptools' ``package-dir`` (``client/`` is ``tfsk.client``); the editable install maps them with an
import hook, which mypy cannot follow. So this script lays the namespace out as symlinks under
``build/typecheck/`` (rebuilt each run, so new files are seen), runs mypy there, and prints its
report with the repository's own paths.

Usage: ``python tools/typecheck.py [extra mypy arguments]``; exit status is mypy's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TREE = ROOT / "build" / "typecheck"


def package_dirs() -> dict[str, Path]:
    """Each top package -> its folder, from pyproject.toml's setuptools tables."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapped = {name: ROOT / folder for name, folder in setuptools["package-dir"].items()}
    return {"tfsk": ROOT / "tfsk", **mapped}


def build_tree() -> dict[Path, Path]:
    """The symlinked namespace under TREE; returns link folder -> real folder (to map paths back)."""
    shutil.rmtree(TREE, ignore_errors=True)
    links: dict[Path, Path] = {}
    namespace = TREE / "tfsk"
    namespace.mkdir(parents=True)
    for entry in (ROOT / "tfsk").iterdir():  # tfsk/ itself: its modules and subpackages, one link each
        if entry.name != "__pycache__":
            (namespace / entry.name).symlink_to(entry)
            links[namespace / entry.name] = entry
    for name, folder in package_dirs().items():
        if name != "tfsk":
            link = TREE.joinpath(*name.split("."))
            link.symlink_to(folder, target_is_directory=True)
            links[link] = folder
    return links


def main(argv: list[str]) -> int:
    links = build_tree()
    env = {**os.environ, "MYPYPATH": str(TREE)}
    command = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), *argv]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    report = done.stdout + done.stderr
    for link, real in sorted(links.items(), key=lambda item: -len(str(item[0]))):
        report = report.replace(os.path.relpath(link, ROOT) + os.sep, os.path.relpath(real, ROOT) + os.sep)
        report = report.replace(str(link) + os.sep, os.path.relpath(real, ROOT) + os.sep)
    sys.stdout.write(report)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
