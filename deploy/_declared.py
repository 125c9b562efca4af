"""Recording a rollout in ``tfsk.toml``: the versions to keep loaded and the labels, nothing else.

``tfsk.toml`` is the user's file: the edit goes through ``tomlkit``, which keeps every comment,
blank line and key order, and only the ``[models.<name>]`` table's ``policy``, ``num_versions``,
``versions`` and ``labels`` change. The result is parsed back with the declaration reader before
it replaces the file (atomically), so a rollout never leaves a ``tfsk.toml`` the tools refuse.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import tomlkit

from tfsk import serving_config as sc

from ._errors import StackError

__all__ = ["record_versions"]

_COMMENT = "versions and labels are kept by `tfsk rollout`"


def record_versions(declaration: sc.Declaration, model: str, versions: Sequence[int],
                    labels: Mapping[str, int]) -> sc.Declaration:
    """Pin ``model`` to ``policy = "specific"``, ``versions`` and ``labels`` in its ``tfsk.toml``.

    Returns the declaration as re-read from the new text; the file is unchanged when the model
    already says exactly that.
    """
    source = declaration.source
    if source is None:
        raise StackError("the declaration was not read from a file; rollouts record their versions in tfsk.toml")
    current = declaration.model(model)
    wanted_policy = sc.VersionPolicy.specific(sorted(set(versions)))
    if current.policy == wanted_policy and current.label_map == dict(labels):
        return declaration
    text = source.read_text(encoding="utf-8")
    document = tomlkit.parse(text)
    table = document["models"][model]  # type: ignore[index]
    if "num_versions" in table:
        del table["num_versions"]
    if table.get("policy") != "specific":
        table["policy"] = "specific"
        table["policy"].comment(_COMMENT)
    table["versions"] = sorted(set(versions))
    inline = tomlkit.inline_table()
    inline.update(dict(sorted(labels.items())))
    table["labels"] = inline
    new_text = tomlkit.dumps(document)
    updated = sc.parse_declaration(new_text, source.parent, source=source)  # refuse what the tools would refuse
    _write_atomic(source, new_text)
    return updated


def _write_atomic(path: Path, text: str) -> None:
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, path.stat().st_mode & 0o777)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
