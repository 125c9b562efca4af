"""The layers, enforced: base <- parts (exporter, serving_config, client, devserver) <- workflows <- CLI.

Read from the source with ``ast`` (no imports run), so a violation anywhere, even inside a function,
fails here. A package reaches another only through its public ``__init__`` API, never a private
``_module``; the base layer imports nothing else of the project; the light packages (base, client,
serving_config) never import TensorFlow, Keras or TF Serving's generated modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
#: Repository folder -> the package it installs as (pyproject.toml's package-dir mapping).
FOLDERS = {
    "tfsk": "tfsk",
    "exporter": "tfsk.exporter",
    "serving_config": "tfsk.serving_config",
    "client": "tfsk.client",
    "devserver": "tfsk.devserver",
    "deploy": "tfsk.deploy",
}
BASE = "tfsk._base"
PARTS = ("tfsk.exporter", "tfsk.serving_config", "tfsk.client", "tfsk.devserver")
WORKFLOWS = ("tfsk.deploy",)
#: Which other packages each package may import (through their public API).
MAY_IMPORT = {
    BASE: set(),
    # load_composed reads a composed model's labels from models.config / tfsk.toml (TF-free, no cycle)
    "tfsk.exporter": {BASE, "tfsk.serving_config"},
    "tfsk.serving_config": {BASE},
    "tfsk.client": {BASE},
    "tfsk.devserver": {BASE, "tfsk.serving_config"},
    "tfsk.deploy": {BASE, *PARTS},
}
LIGHT = (BASE, "tfsk.client", "tfsk.serving_config")
HEAVY_MODULES = ("tensorflow", "keras", "tensorflow_serving")
#: Modules on top inside a package: its command line (``cli``, ``*_cli``, ``__main__``).
TOP_NAMES = {"cli", "__main__"}


def _modules() -> dict[str, Path]:
    found = {}
    for folder, package in FOLDERS.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            parts = list(path.relative_to(REPO / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


MODULES = _modules()


def _package_of(module: str) -> str | None:
    """The layer unit a module belongs to: the base, a part, a workflow package, or None for the top."""
    if module == BASE or module.startswith(BASE + "."):
        return BASE
    for package in (*PARTS, *WORKFLOWS):
        if module == package or module.startswith(package + "."):
            return package
    return None


def _is_top(module: str) -> bool:
    package = _package_of(module)
    if package is None:
        return True  # tfsk.cli, tfsk.demo, tfsk._console, ...
    name = module.split(".")[-1]  # tfsk.exporter.cli, tfsk.deploy.rollout_cli, tfsk.devserver.__main__
    return package != BASE and (name in TOP_NAMES or name.endswith("_cli"))


def _imports(module: str, path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.append((base, node.lineno))
            # `from tfsk import serving_config` and `from pkg import _private` name modules too.
            found += [(f"{base}.{alias.name}", node.lineno) for alias in node.names
                      if f"{base}.{alias.name}" in MODULES]
    return found


def _violations() -> list[str]:
    problems = []
    for module, path in MODULES.items():
        source = _package_of(module)
        top = _is_top(module)
        where = f"{path.relative_to(REPO)}"
        for target, line in _imports(module, path):
            if source in LIGHT and not top and target.split(".")[0] in HEAVY_MODULES:
                problems.append(f"{where}:{line}: {module} (light layer) imports {target}")
            if not target.startswith("tfsk"):
                continue
            if target == "tfsk":  # the namespace itself: `from tfsk import x` is checked as tfsk.x
                continue
            destination = _package_of(target)
            if destination == source:
                if not top and _is_top(target) and target != module:
                    problems.append(f"{where}:{line}: library module {module} imports the command line {target}")
                continue
            if destination is None:
                if target == "tfsk.__version__" or target in ("tfsk",):
                    continue
                if not top:
                    problems.append(f"{where}:{line}: {module} imports {target} from the top layer")
                continue
            if not top and destination not in MAY_IMPORT[source]:
                problems.append(f"{where}:{line}: {module} ({source}) may not import {target} ({destination})")
            private = [p for p in target[len(destination):].split(".") if p.startswith("_")]
            if destination != BASE and private:
                problems.append(f"{where}:{line}: {module} reaches into {target}, a private module of {destination}")
    return problems


def test_the_layout_is_the_one_the_layer_rules_know():
    assert MODULES, "no modules found"
    assert {m for m in MODULES if m.startswith(BASE)} >= {f"{BASE}.layout", f"{BASE}.codec", f"{BASE}.messages"}
    for package in PARTS:
        assert package in MODULES, f"{package} missing: update FOLDERS/PARTS"


def test_imports_follow_the_layers():
    problems = _violations()
    assert not problems, "layer violations:\n" + "\n".join(problems)


@pytest.mark.parametrize("source, target, allowed", [
    ("tfsk.client._client", "tfsk.devserver", False),
    ("tfsk.devserver._server", "tfsk.serving_config", True),
    ("tfsk.devserver._server", "tfsk.serving_config._validate", False),
    ("tfsk._base.codec", "tfsk.client", False),
    ("tfsk.serving_config._write", "tfsk.exporter", False),
])
def test_the_rules_themselves_can_fail(source, target, allowed):
    """The checker is not vacuous: known-bad edges are refused, known-good ones pass."""
    destination = _package_of(target)
    ok = destination in MAY_IMPORT[_package_of(source)] and not any(
        p.startswith("_") for p in target[len(destination):].split("."))
    assert ok is allowed


def test_every_package_is_installed():
    """pyproject.toml lists every package folder (a forgotten one works editable and breaks `pip install tfsk`)."""
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(project["packages"])
    found = {module for module, path in MODULES.items() if path.name == "__init__.py"}
    assert found == listed, f"in the tree, not in pyproject: {sorted(found - listed)}; " \
                            f"in pyproject, not in the tree: {sorted(listed - found)}"
    assert {f"tfsk.{folder}" for folder in FOLDERS if folder != "tfsk"} == set(project["package-dir"])
