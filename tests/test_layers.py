"""The layers, enforced: base <- parts (exporter, serving_config, client, devserver) <- workflows (deploy)
<- top (the command line ``tfsk.cli`` and the demo ``tfsk.demo``).

Read from the source with ``ast`` (no imports run), so a violation anywhere, even inside a function,
fails here. A package reaches another only through its public API, never a private ``_module``
(the top layer's packages included: ``tfsk.cli._console`` is the command line's own); nothing below
the top imports it; the base layer imports nothing else of the project; the light packages (base,
client, serving_config) never import TensorFlow, Keras or TF Serving's generated modules, and the
command line imports them only inside the commands that need them.
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
NAMESPACE = "tfsk"  # tfsk/__init__.py: the version and the exception root (from the base layer)
BASE = "tfsk._base"
PARTS = ("tfsk.exporter", "tfsk.serving_config", "tfsk.client", "tfsk.devserver")
WORKFLOWS = ("tfsk.deploy",)
TOP = ("tfsk.cli", "tfsk.demo")
#: Which other packages each package may import (through their public API).
MAY_IMPORT = {
    NAMESPACE: {BASE},
    BASE: set(),
    # load_composed reads a composed model's labels from models.config / tfsk.toml (TF-free, no cycle)
    "tfsk.exporter": {BASE, "tfsk.serving_config"},
    "tfsk.serving_config": {BASE},
    "tfsk.client": {BASE},
    "tfsk.devserver": {BASE, "tfsk.serving_config"},
    "tfsk.deploy": {BASE, *PARTS},
    # The demo's job says its steps with the command line's conventions (errors, progress bar);
    # the command line runs the demo. Both only through each other's public names.
    "tfsk.demo": {BASE, *PARTS, *WORKFLOWS, "tfsk.cli"},
    "tfsk.cli": {BASE, *PARTS, *WORKFLOWS, "tfsk.demo"},
}
LIGHT = (BASE, "tfsk.client", "tfsk.serving_config")
HEAVY_MODULES = ("tensorflow", "keras", "tensorflow_serving")
#: Entry points (``python -m tfsk``, ``python -m tfsk.devserver``): on top, they run the command line.
ENTRY_POINTS = {"__main__"}


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


def _package_of(module: str) -> str:
    """The layer unit a module belongs to: the base, a part, a workflow package, a top package, or
    the namespace itself (``tfsk``, and names it defines such as ``tfsk.TfskError``)."""
    for package in (BASE, *PARTS, *WORKFLOWS, *TOP):
        if module == package or module.startswith(package + "."):
            return package
    return NAMESPACE


def _is_entry_point(module: str) -> bool:
    return module.split(".")[-1] in ENTRY_POINTS


def _imports(module: str, path: Path, module_level_only: bool = False) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    found = []
    for node in (tree.body if module_level_only else ast.walk(tree)):
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


def _problem(module: str, target: str) -> str | None:
    """What is wrong with ``module`` importing ``target``, or None when the layers allow it."""
    source = _package_of(module)
    entry_point = _is_entry_point(module)
    if source in LIGHT and target.split(".")[0] in HEAVY_MODULES:
        return f"{module} (light layer) imports {target}"
    if not target.startswith("tfsk") or target == NAMESPACE:
        return None
    destination = _package_of(target)
    if destination == NAMESPACE:
        return None  # tfsk.__version__, tfsk.TfskError: what the namespace re-exports from the base
    if destination == source:
        return None  # a package's own modules, private ones included
    if destination in TOP and source not in TOP and not entry_point:
        return f"{module} ({source}) imports {target} from the top layer: nothing below the top imports it"
    if not entry_point and destination not in MAY_IMPORT[source]:
        return f"{module} ({source}) may not import {target} ({destination})"
    private = [p for p in target[len(destination):].split(".") if p.startswith("_")]
    if destination != BASE and private:
        return f"{module} reaches into {target}, a private module of {destination}"
    return None


def _violations() -> list[str]:
    problems = []
    for module, path in MODULES.items():
        where = f"{path.relative_to(REPO)}"
        for target, line in _imports(module, path):
            problem = _problem(module, target)
            if problem is not None:
                problems.append(f"{where}:{line}: {problem}")
        if _package_of(module) == "tfsk.cli":  # help and the client verbs answer without TensorFlow
            problems += [f"{where}:{line}: the command line imports {target} when it loads: import it in the "
                         f"command that needs it" for target, line in _imports(module, path, module_level_only=True)
                         if target.split(".")[0] in HEAVY_MODULES]
    return problems


def test_the_layout_is_the_one_the_layer_rules_know():
    assert MODULES, "no modules found"
    assert {m for m in MODULES if m.startswith(BASE)} >= {f"{BASE}.layout", f"{BASE}.codec", f"{BASE}.messages"}
    for package in (*PARTS, *WORKFLOWS, *TOP):
        assert package in MODULES, f"{package} missing: update FOLDERS/PARTS/WORKFLOWS/TOP"
    units = {_package_of(module) for module in MODULES}
    assert units == set(MAY_IMPORT), f"every unit has its rule: {sorted(units ^ set(MAY_IMPORT))}"
    # The command line is one package: no library keeps a cli module of its own.
    assert [m for m in MODULES if m.split(".")[-1] == "cli" or m.endswith("_cli")] == ["tfsk.cli"]


def test_imports_follow_the_layers():
    problems = _violations()
    assert not problems, "layer violations:\n" + "\n".join(problems)


@pytest.mark.parametrize("source, target, allowed", [
    ("tfsk.client._client", "tfsk.devserver", False),
    ("tfsk.devserver._server", "tfsk.serving_config", True),
    ("tfsk.devserver._server", "tfsk.serving_config._validate", False),
    ("tfsk._base.codec", "tfsk.client", False),
    ("tfsk.serving_config._write", "tfsk.exporter", False),
    ("tfsk.client._client", "tensorflow", False),
    ("tfsk.deploy.stack._devserver", "tfsk.devserver", True),
    ("tfsk.deploy.stack._devserver", "tfsk.devserver._process", False),
    # the top layer: nothing below imports it, and its packages keep their private modules
    ("tfsk.deploy.stack._prepare", "tfsk.demo", False),
    ("tfsk.exporter._part", "tfsk.cli", False),
    ("tfsk.serving_config._declaration", "tfsk.cli._console", False),
    ("tfsk.devserver._server", "tfsk.cli.serve", False),
    ("tfsk.cli.stack", "tfsk.deploy", True),
    ("tfsk.cli.stack", "tfsk.deploy.stack._prepare", False),
    ("tfsk.cli.stack", "tfsk.demo", True),
    ("tfsk.cli.demo", "tfsk.demo._job", False),
    ("tfsk.demo._job", "tfsk.cli", True),
    ("tfsk.demo._job", "tfsk.cli._console", False),
    ("tfsk.devserver.__main__", "tfsk.cli.serve", True),
    ("tfsk", "tfsk._base.errors", True),
    ("tfsk", "tfsk.cli", False),
])
def test_the_rules_themselves_can_fail(source, target, allowed):
    """The checker is not vacuous: known-bad edges are refused, known-good ones pass."""
    assert (_problem(source, target) is None) is allowed, _problem(source, target)


def test_every_package_is_installed():
    """pyproject.toml lists every package folder (a forgotten one works editable and breaks `pip install tfsk`)."""
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(project["packages"])
    found = {module for module, path in MODULES.items() if path.name == "__init__.py"}
    assert found == listed, f"in the tree, not in pyproject: {sorted(found - listed)}; " \
                            f"in pyproject, not in the tree: {sorted(listed - found)}"
    assert {f"tfsk.{folder}" for folder in FOLDERS if folder != "tfsk"} == set(project["package-dir"])
