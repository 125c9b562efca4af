"""Each TF Serving fact is written once: the names, the flags and the numbers below live in one module.

Read from the source with ``ast`` (docstrings and comments are prose and may name them); tests are
free to spell them out.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tfsk._base.flags import BOOL_FLAGS
from tfsk._base.messages import VersionState

REPO = Path(__file__).resolve().parent.parent
FOLDERS = ("tfsk", "exporter", "serving_config", "client", "devserver", "deploy", "benchmarks")
#: string -> the one module that defines it
DEFINED_IN = {
    "serving_default": "tfsk/_base/naming.py",
    "saved_model.pb": "tfsk/_base/layout.py",
}
FLAGS_MODULE = "tfsk/_base/flags.py"


def _sources() -> dict[str, ast.Module]:
    found = {}
    for folder in FOLDERS:
        for path in sorted((REPO / folder).rglob("*.py")):
            found[path.relative_to(REPO).as_posix()] = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return found


SOURCES = _sources()


def _strings(tree: ast.Module) -> list[ast.Constant]:
    """Every string constant that is not a docstring (f-string pieces included)."""
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [node for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


@pytest.mark.parametrize("text", sorted(DEFINED_IN))
def test_a_name_is_spelled_in_one_module(text):
    where = [f"{path}:{node.lineno}" for path, tree in SOURCES.items() for node in _strings(tree)
             if text in node.value and path != DEFINED_IN[text]]
    assert not where, f"{text!r} is spelled outside {DEFINED_IN[text]}: import it from there ({where})"


def test_the_bool_flags_are_listed_once():
    # A collection of bool flag names is a second table; a '--flag=true' literal is hand-written grammar.
    where = []
    for path, tree in SOURCES.items():
        if path == FLAGS_MODULE:
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Set, ast.List, ast.Tuple)):
                names = [e.value for e in node.elts if isinstance(e, ast.Constant)]
                if len(names) >= 2 and all(n in BOOL_FLAGS for n in names):
                    where.append(f"{path}:{node.lineno}")
        for node in _strings(tree):
            if re.fullmatch(r"--(\w+)=(true|false)", node.value) and node.value[2:].partition("=")[0] in BOOL_FLAGS:
                where.append(f"{path}:{node.lineno} {node.value}")
    assert not where, f"bool flags listed or spelled outside {FLAGS_MODULE}: {where}"


def test_flags_are_parsed_by_the_one_parser():
    # '--name=value' split by hand (argument[2:].partition("=")) is how the twins began.
    where = [f"{path}:{node.lineno}" for path, tree in SOURCES.items() if path != FLAGS_MODULE
             for node in ast.walk(tree)
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "partition"
             and [a.value for a in node.args if isinstance(a, ast.Constant)] == ["="]
             and isinstance(node.func.value, ast.Subscript) and isinstance(node.func.value.slice, ast.Slice)
             and isinstance(node.func.value.slice.lower, ast.Constant) and node.func.value.slice.lower.value == 2]
    assert not where, f"flags parsed by hand: use tfsk._base.flags.parse_command_line ({where})"


def test_version_folders_follow_one_rule():
    # str.isdigit() takes '٣' and refuses '+5'; TF Serving does the opposite (layout.parse_version).
    where = [f"{path}:{node.lineno}" for path, tree in SOURCES.items() for node in ast.walk(tree)
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "isdigit"
             and isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "name"]
    assert not where, f"version folders picked with str.isdigit(): use tfsk._base.layout ({where})"


def test_the_version_states_are_numbered_once():
    numbers = {state.value for state in VersionState if state.value}
    where = []
    for path, tree in SOURCES.items():
        if path == "tfsk/_base/messages.py":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and node.value.value in numbers \
                    and any(isinstance(t, ast.Name) and t.id in VersionState.__members__ for t in node.targets):
                where.append(f"{path}:{node.lineno}")
            if isinstance(node, ast.Dict):
                keys = {k.value for k in node.keys if isinstance(k, ast.Constant)}
                if {"AVAILABLE", "END"} <= keys:
                    where.append(f"{path}:{node.lineno}")
    assert not where, f"ModelVersionStatus.State numbered outside tfsk/_base/messages.py: {where}"
