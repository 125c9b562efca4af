"""What is on disk under a model base path: models, versions, signatures and lineage."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tfsk._base import layout

from ._lineage import read_lineage
from ._signature_defs import read_signatures
from ._specs import SignatureSpec

__all__ = ["ModelInfo", "VersionInfo", "list_models"]


@dataclass(frozen=True)
class VersionInfo:
    version: int
    path: Path
    signatures: dict[str, SignatureSpec] = field(default_factory=dict)
    lineage: dict[str, Any] | None = None
    problem: str | None = None  # why TF Serving would fail to load it, when we can tell

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "path": str(self.path),
            "signatures": {k: v.to_json() for k, v in self.signatures.items()},
            "lineage": self.lineage,
            "problem": self.problem,
        }


@dataclass(frozen=True)
class ModelInfo:
    name: str
    path: Path
    versions: list[VersionInfo]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "versions": [v.to_json() for v in self.versions]}


def _version_info(found: layout.VersionDir) -> VersionInfo:
    if not found.complete:
        return VersionInfo(found.version, found.path, problem=f"no {layout.SAVED_MODEL_FILE}: TF Serving would fail to load it")
    try:
        signatures = read_signatures(found.path)
    except Exception as error:  # a corrupt graph is reported, not fatal to the listing
        return VersionInfo(found.version, found.path, problem=f"unreadable {layout.SAVED_MODEL_FILE}: {error}")
    return VersionInfo(found.version, found.path, signatures, read_lineage(found.path))


def list_models(base: str | os.PathLike[str], names: list[str] | None = None) -> list[ModelInfo]:
    """Every model folder under ``base`` (or just ``names``) with its versions, newest first."""
    root = Path(base)
    if names is None:
        names = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) if root.is_dir() else []
    models = []
    for name in names:
        found = layout.list_versions(root / name)
        models.append(ModelInfo(name, root / name, [_version_info(v) for v in reversed(found)]))
    return models
