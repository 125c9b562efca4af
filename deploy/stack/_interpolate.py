"""Compose's variable substitution, so the devserver and the static checks read the file as Compose does.

``$$`` is a literal ``$``; ``$VAR`` and ``${VAR}`` substitute; ``${VAR:-default}`` (unset or
empty) and ``${VAR-default}`` (unset) give defaults; ``${VAR:?message}`` / ``${VAR?message}``
refuse; ``${VAR:+other}`` / ``${VAR+other}`` substitute when set. Values come from the
environment first, then from the ``.env`` file beside the compose file, as with ``docker compose``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._errors import StackError

__all__ = ["compose_variables", "interpolate", "interpolate_tree", "read_env_file"]

_PATTERN = re.compile(
    r"\$(?:(?P<escaped>\$)|(?P<plain>[A-Za-z_][A-Za-z0-9_]*)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)"
    r"(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}|(?P<invalid>))"
)


def interpolate(text: str, variables: Mapping[str, str], where: str = "") -> str:
    """``text`` with every ``$`` expression replaced as Compose replaces it."""

    def replace(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        if match.group("plain"):
            return variables.get(match.group("plain"), "")
        name = match.group("braced")
        if name is None:
            raise StackError(f"invalid interpolation in {where or 'the compose file'}: {text!r}; write $$ for a "
                             f"literal $, ${{VAR}} or ${{VAR:-default}} for a variable")
        op, arg = match.group("op"), match.group("arg") or ""
        value = variables.get(name)
        present = value is not None and (value != "" or not (op or "").startswith(":"))
        if op in (None, ""):
            return value or ""
        if op.endswith("-"):
            return value if present else arg  # type: ignore[return-value]
        if op.endswith("+"):
            return arg if present else ""
        if not present:  # ':?' or '?'
            raise StackError(f"{where or 'the compose file'}: variable {name} is required: {arg or 'set it'}")
        return value  # type: ignore[return-value]

    return _PATTERN.sub(replace, text)


def interpolate_tree(tree: Any, variables: Mapping[str, str], where: str = "") -> Any:
    """Every string value of a parsed YAML tree interpolated (keys are left alone, as Compose does)."""
    if isinstance(tree, str):
        return interpolate(tree, variables, where)
    if isinstance(tree, list):
        return [interpolate_tree(item, variables, where) for item in tree]
    if isinstance(tree, dict):
        return {key: interpolate_tree(value, variables, f"{where}.{key}" if where else str(key))
                for key, value in tree.items()}
    return tree


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of a ``.env`` file (``#`` comments, optional quotes and ``export``)."""
    values: dict[str, str] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return values
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        key, equals, value = line.partition("=")
        if not equals or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key.strip()):
            raise StackError(f"{path}:{number}: expected KEY=VALUE, got {raw!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def compose_variables(project_dir: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables Compose would use: the ``.env`` file, overridden by the environment."""
    return {**read_env_file(project_dir / ".env"), **(os.environ if environ is None else environ)}
