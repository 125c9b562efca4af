"""Retention: prune old versions of a model, keeping the newest and anything protected."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tfsk._base import layout

from ._errors import ExportError, check_name
from ._publish import model_lock, remove_version

__all__ = ["PruneResult", "prune_versions"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PruneResult:
    kept: list[int]
    removed: list[int]
    dry_run: bool


def prune_versions(
    base: str | os.PathLike[str],
    name: str,
    *,
    keep: int,
    protect: Iterable[int] = (),
    dry_run: bool = False,
) -> PruneResult:
    """Delete all but the newest ``keep`` versions of ``<base>/<name>`` and the ``protect``ed ones.

    The newest version is never deleted. Each deleted version leaves the server's view in one
    rename before its files are removed, so a polling server never loads half a version.
    """
    check_name(name, "model name")
    if keep < 1:
        raise ExportError(f"keep must be at least 1 (the newest version is never deleted), got {keep}")
    protected = set(protect)
    model_dir = Path(base) / name
    if not model_dir.is_dir():
        raise ExportError(f"no model '{name}' under {base}")
    with model_lock(model_dir):
        found = layout.list_versions(model_dir)
        numbers = sorted({v.version for v in found}, reverse=True)
        unknown = protected - set(numbers)
        if unknown:
            raise ExportError(f"protected versions {sorted(unknown)} are not on disk; versions of '{name}': {sorted(numbers)}")
        kept_numbers = set(numbers[:keep]) | protected
        doomed = [v for v in found if v.version not in kept_numbers]
        if not dry_run:
            for version_dir in doomed:
                logger.info("pruning %s", version_dir.path)
                remove_version(model_dir, version_dir.path)
    return PruneResult(sorted(kept_numbers), sorted({v.version for v in doomed}), dry_run)
