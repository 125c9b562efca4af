"""The head stored with every composed version, and its reuse for the next one.

Each composed version carries its head as a Keras 3 ``.keras`` file in ``assets.extra/`` (which TF
Serving ignores), recorded in the lineage with its checksum and the part layout it was built for.
``export_composed(..., head=HeadRef("composed", 3))`` (``--head composed@3``) loads it back, so a
rollout of one tower keeps the trained head; the new parts must lay out exactly as recorded.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras

from tfsk._base import layout

from ._contract import LayoutEntry, compare_layouts, describe_layout, layout_of_lineage
from ._errors import HeadReuseError, check_name
from ._keras_file import load_keras_file, store_keras_model
from ._keras_interface import KerasInterface
from ._lineage import read_lineage
from ._parts import LATEST, resolve_version

__all__ = ["HEAD_FILE", "HeadRef", "ReusedHead", "is_head_ref", "load_head", "store_head"]

#: The head's file in a composed version's ``assets.extra/``.
HEAD_FILE = "tfsk_head.keras"
_REF_RE = re.compile(rf"({layout.MODEL_NAME_PATTERN})@([A-Za-z0-9_.-]+)")


@dataclass(frozen=True)
class HeadRef:
    """The head of an existing composed version: ``composed@3`` or ``composed@latest``."""

    model: str
    version: int | None = None  # None: the newest complete version

    @classmethod
    def parse(cls, text: str, labels: Mapping[str, int] | None = None, *, what: str = "head reference",
              give_config: str = "give the config (--config models.config or tfsk.toml)") -> HeadRef:
        """``NAME@VERSION``, ``NAME@latest`` or ``NAME@LABEL`` (a label looked up in ``labels``).

        Labels live in a server's models.config, which the exporter does not read: the caller
        passes them (``tfsk export composed --config`` reads them from models.config or tfsk.toml).
        ``what`` and ``give_config`` word the errors for the caller (a CLI flag or an argument).
        """
        match = _REF_RE.fullmatch(text)
        if not match:
            raise HeadReuseError(f"{what} {text!r}: write NAME@VERSION, NAME@latest or NAME@LABEL")
        name, suffix = check_name(match.group(1), "composed model name"), match.group(2)
        if suffix == LATEST:
            return cls(name)
        version = layout.parse_version(suffix)
        if version is not None:
            if version < 1:
                raise HeadReuseError(f"{what} {text!r}: versions are positive integers")
            return cls(name, version)
        if labels is None:
            raise HeadReuseError(
                f"{what} {text!r}: '{suffix}' is a label, and labels live in models.config; "
                f"{give_config} or the version number"
            )
        if suffix not in labels:
            raise HeadReuseError(
                f"{what} {text!r}: model '{name}' has no label '{suffix}' "
                f"(its labels: {dict(sorted(labels.items())) or 'none'})"
            )
        return cls(name, int(labels[suffix]))

    def __str__(self) -> str:
        return f"{self.model}@{LATEST if self.version is None else self.version}"


def is_head_ref(source: object) -> bool:
    """Whether a ``head`` argument names a composed version rather than a file or factory."""
    if isinstance(source, HeadRef):
        return True
    return isinstance(source, str) and bool(_REF_RE.fullmatch(source)) and not os.path.exists(source)


@dataclass
class ReusedHead:
    """A head loaded from a composed version, with the layout it was built for."""

    model: keras.Model
    origin: dict[str, Any]
    layout: list[LayoutEntry]
    ref: str


def load_head(base: str | os.PathLike[str], ref: HeadRef) -> ReusedHead:
    """Load the head stored with composed version ``ref`` under ``base``."""
    found = resolve_version(Path(base), ref.model, ref.version, what="composed model",
                            hint="'tfsk export composed' (with a .keras or factory head)")
    where = f"{ref.model}@{found.version}"
    lineage = read_lineage(found.path) or {}
    recorded = lineage.get("head") or {}
    entries = layout_of_lineage(lineage)
    if lineage.get("kind") != "composed" or entries is None:
        raise HeadReuseError(f"{where} at {found.path} is not a composed version made by tfsk; its head cannot be reused")
    if not recorded.get("file"):
        reason = recorded.get("not_stored") or "it was exported before tfsk stored heads"
        raise HeadReuseError(
            f"{where} stores no head ({reason}); pass the head as a .keras file or module:function factory instead"
        )
    model, digest = load_keras_file(found.path, recorded, where=where, what="its head", error=HeadReuseError,
                                    remedy="pass the head as a .keras file or module:function factory instead")
    origin = {"type": "composed_version", "model": ref.model, "version": found.version, "sha256": digest}
    return ReusedHead(model, origin, entries, where)


def check_reused_layout(head: ReusedHead, new_layout: Sequence[LayoutEntry]) -> None:
    """The new parts must lay out (order, outputs, widths) exactly as the head was built for."""
    difference = compare_layouts(head.layout, new_layout)
    if difference:
        raise HeadReuseError(
            f"the head of {head.ref} was built for {describe_layout(head.layout)}, but the new parts lay out "
            f"{describe_layout(new_layout)}; reusing it would feed it features in the wrong order or width. "
            "Give the --part flags in the head's order with parts of the same widths, or pass a newly "
            "trained head (.keras file or factory) with --allow-contract-change"
        )


def store_head(head: KerasInterface, folder: Path) -> tuple[Path | None, dict[str, Any]]:
    """Save the head as ``folder/HEAD_FILE``, checked to load back computing the same (:func:`store_keras_model`).

    Returns the file (None if the head cannot round-trip through ``.keras``, e.g. a custom layer
    without ``get_config``) and the lineage facts; a head that cannot be stored only loses reuse.
    """
    return store_keras_model(head, folder, HEAD_FILE, what="the head")
