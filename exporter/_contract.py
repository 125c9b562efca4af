"""The serving contract guard: a new version must serve every request the previous one served.

The contract of a version is what a client relies on: its signature names, each signature's input
and output keys, their dtypes and shapes, and, for a composed model, the order and width of the
part features its head reads. A new version is compared with the newest complete version already
on disk (its ``saved_model.pb`` is parsed, no TensorFlow session is made), and refused with the
difference unless the caller allows a contract change.

What counts as compatible, precisely (a request that worked before must still work, and a
response must still look the way its readers expect):

- signatures: none may disappear; new ones may appear.
- inputs: the key set must stay the same (a new input is missing from old requests, a removed one
  is an unknown alias in them); the dtype must stay the same; the rank must stay the same; each
  dimension may widen from a fixed size to any size (``None``) but not narrow from any size to a
  fixed one, nor change from one fixed size to another.
- outputs: none may disappear; new ones may appear; the dtype and the rank must stay the same;
  each dimension may narrow from any size to a fixed one but not widen from fixed to any size, nor
  change between fixed sizes (readers, such as a head, rely on fixed widths).
- unknown rank counts as "any shape": an input may become unknown-rank, an output may not.
- composed models: the concatenation layout (part, output, width, in order) must stay the same,
  since a head trained on one order reads another order's features as garbage without any error.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tfsk._base import layout

from ._errors import ContractChangeError
from ._lineage import read_lineage
from ._signature_defs import read_signatures
from ._specs import Shape, SignatureSpec, TensorSpecInfo

__all__ = [
    "ContractCheck",
    "check_contract",
    "compare_layouts",
    "compare_signatures",
    "describe_layout",
    "layout_of_lineage",
]

logger = logging.getLogger(__name__)

OVERRIDE_HINT = (
    "if the change is intended (clients and config updated), export again with "
    "allow_contract_change=True (--allow-contract-change)"
)

#: One entry of a composed model's concatenation layout: (part, output, width).
LayoutEntry = tuple[str, str, int]


def _dims_ok(before: Shape | None, after: Shape | None, *, is_input: bool) -> bool:
    if before is None or after is None:
        # Unknown rank is "any shape": an input may become it, an output may lose it.
        return after is None if is_input else before is None
    if len(before) != len(after):
        return False
    for old, new in zip(before, after):
        if old == new:
            continue
        if is_input and new is None:  # fixed -> any: old requests still fit
            continue
        if not is_input and old is None:  # any -> fixed: old readers still cope
            continue
        return False
    return True


def _tensor_change(before: TensorSpecInfo, after: TensorSpecInfo, *, is_input: bool) -> str | None:
    if before.dtype != after.dtype:
        return f"dtype {before.dtype} -> {after.dtype}"
    if not _dims_ok(before.shape, after.shape, is_input=is_input):
        rule = "an input dimension may only widen from a fixed size to any size" if is_input else (
            "an output dimension may only narrow from any size to a fixed size")
        return f"shape {before.describe()} -> {after.describe()} ({rule})"
    return None


def compare_signatures(before: Mapping[str, SignatureSpec], after: Mapping[str, SignatureSpec]) -> list[str]:
    """Every incompatible difference, one line each as ``signature ...: before -> after``."""
    changes = []
    for name in sorted(set(before) - set(after)):
        changes.append(f"signature '{name}': removed (it was {_describe_signature(before[name])})")
    for name in sorted(set(before) & set(after)):
        old, new = before[name], after[name]
        for key in sorted(set(old.inputs) - set(new.inputs)):
            changes.append(f"signature '{name}' input '{key}': removed (it was {old.inputs[key].describe()})")
        for key in sorted(set(new.inputs) - set(old.inputs)):
            changes.append(f"signature '{name}' input '{key}': added ({new.inputs[key].describe()}); "
                           "requests made for the previous version lack it")
        for key in sorted(set(old.outputs) - set(new.outputs)):
            changes.append(f"signature '{name}' output '{key}': removed (it was {old.outputs[key].describe()})")
        for side, is_input in (("inputs", True), ("outputs", False)):
            old_side, new_side = getattr(old, side), getattr(new, side)
            for key in sorted(set(old_side) & set(new_side)):
                change = _tensor_change(old_side[key], new_side[key], is_input=is_input)
                if change:
                    changes.append(f"signature '{name}' {side[:-1]} '{key}': {change}")
    return changes


def _describe_signature(spec: SignatureSpec) -> str:
    inputs = ", ".join(f"{k} {v.describe()}" for k, v in sorted(spec.inputs.items()))
    outputs = ", ".join(f"{k} {v.describe()}" for k, v in sorted(spec.outputs.items()))
    return f"({inputs}) -> ({outputs})"


def layout_of_lineage(lineage: Mapping[str, Any] | None) -> list[LayoutEntry] | None:
    """The concatenation layout a composed version's lineage records (None if it records none)."""
    entries = (lineage or {}).get("concatenation")
    if not isinstance(entries, list):
        return None
    return [(str(e["part"]), str(e["output"]), int(e["width"])) for e in entries]


def describe_layout(entries: Sequence[LayoutEntry]) -> str:
    """``[tower_a.embedding 32, tower_b.embedding 32] = 64 features``."""
    total = sum(width for _, _, width in entries)
    return "[" + ", ".join(f"{part}.{output} {width}" for part, output, width in entries) + f"] = {total} features"


def compare_layouts(before: Sequence[LayoutEntry], after: Sequence[LayoutEntry]) -> str | None:
    """``None`` when equal, else both layouts and the first position that differs."""
    before, after = list(before), list(after)
    if before == after:
        return None
    position = next((i for i, (a, b) in enumerate(zip(before, after)) if a != b), min(len(before), len(after)))
    return (f"part layout {describe_layout(before)} -> {describe_layout(after)} "
            f"(first difference at position {position + 1})")


@dataclass
class ContractCheck:
    """The outcome of comparing a new version with the newest one on disk."""

    previous_version: int | None
    changes: list[str] = field(default_factory=list)
    allowed: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"compared_with": self.previous_version, "changes": self.changes, "allowed": self.allowed}


def _newest_readable(model_dir: Path) -> tuple[int, dict[str, SignatureSpec], dict[str, Any] | None] | None:
    for found in reversed([v for v in layout.list_versions(model_dir) if v.complete]):
        try:
            return found.version, read_signatures(found.path), read_lineage(found.path)
        except Exception as error:  # a corrupt neighbour is no contract; say so and look further back
            logger.warning("not comparing with %s: its %s is unreadable (%s)", found.path, layout.SAVED_MODEL_FILE, error)
    return None


def check_contract(
    model_dir: Path,
    signatures: Mapping[str, SignatureSpec],
    *,
    layout: Sequence[LayoutEntry] | None = None,
    allow_change: bool = False,
) -> ContractCheck:
    """Compare with the newest complete version of ``model_dir``; raise :class:`ContractChangeError`.

    ``layout`` is a composed model's concatenation layout (compared with the one the previous
    version's lineage records, when it records one).
    """
    previous = _newest_readable(Path(model_dir))
    if previous is None:
        return ContractCheck(None)
    version, before, lineage = previous
    changes = compare_signatures(before, signatures)
    old_layout = layout_of_lineage(lineage)
    if layout is not None and old_layout is not None:
        layout_change = compare_layouts(old_layout, layout)
        if layout_change:
            changes.append(layout_change + "; the head reads its features in this order and width")
    if changes and not allow_change:
        raise ContractChangeError(
            f"the new version of '{Path(model_dir).name}' breaks the serving contract of version {version}:\n  "
            + "\n  ".join(changes) + f"\n{OVERRIDE_HINT}",
            previous_version=version,
            changes=changes,
        )
    return ContractCheck(version, changes, allowed=bool(changes))
