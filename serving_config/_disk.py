"""What TF Serving's file-system source would find under a model's base path.

Version folders are recognised by :mod:`tfsk._base.layout` (the contract the exporter and the
devserver share), so the validator sees exactly what the server sees.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tfsk._base.layout import VersionDir, list_versions
from tfsk._base.messages import ModelServerConfig

from ._models_config import model_entries
from ._paths import PathMapping, is_relative_base_path, local_path
from ._policy import VersionPolicy


@dataclass(frozen=True)
class ModelFolder:
    """One base path as found on this machine.

    ``unchecked`` says why the folder could not be looked at (a remote URI, a container path
    outside the mount); then the other fields are empty.
    """

    base_path: str
    host_path: Path | None
    unchecked: str | None = None
    exists: bool = False
    is_dir: bool = False
    versions: tuple[VersionDir, ...] = ()
    other_children: tuple[str, ...] = ()

    @property
    def checked(self) -> bool:
        return self.unchecked is None

    def version_numbers(self) -> set[int]:
        return {v.version for v in self.versions}


def locate(base_path: str, mapping: PathMapping | None = None) -> tuple[Path | None, str | None]:
    """``(host path, None)`` or ``(None, why it cannot be checked here)``."""
    if is_relative_base_path(base_path):
        return None, "the base path is relative"
    local = local_path(base_path)
    if local is None:
        return None, f"{base_path!r} is a remote URI"
    if mapping is None:
        return Path(local), None
    host = mapping.to_host(local)
    if host is not None:
        return host, None
    if mapping.to_container(local) is not None:
        return Path(local), None  # already a host path under the mounted folder (a host config)
    return None, f"{base_path!r} is not under the container root {str(mapping.container_root)!r}"


def inspect_model_folder(base_path: str, mapping: PathMapping | None = None) -> ModelFolder:
    """Look at ``base_path`` (a container path when ``mapping`` is given) the way the server would."""
    host, why = locate(base_path, mapping)
    if host is None:
        return ModelFolder(base_path, None, why)
    if not host.exists():
        return ModelFolder(base_path, host)
    if not host.is_dir():
        return ModelFolder(base_path, host, exists=True)
    versions = tuple(list_versions(host))
    numeric = {v.path.name for v in versions}
    try:
        others = tuple(sorted(n for n in os.listdir(host) if n not in numeric and not n.startswith(".")))
    except OSError:
        others = ()
    return ModelFolder(base_path, host, exists=True, is_dir=True, versions=versions, other_children=others)


def aspired_versions(config: ModelServerConfig, mapping: PathMapping | None = None) -> dict[str, frozenset[int]]:
    """Per model whose folder can be read: the versions TF Serving would load under ``config``.

    Once ``config`` is live and every load succeeded, these are the AVAILABLE versions. Models
    whose folder cannot be read here are left out (their state is unknown).
    """
    result: dict[str, frozenset[int]] = {}
    for model in model_entries(config):
        folder = inspect_model_folder(model.base_path, mapping)
        if folder.checked:
            policy = VersionPolicy.from_model_config(model)
            result[model.name] = frozenset(v.version for v in policy.aspired(folder.versions) if v.complete)
    return result
