"""Writing every config a declaration describes, for the container and for the host."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._batching import format_batching_parameters
from ._declaration import Declaration, Target
from ._models_config import format_model_server_config
from ._monitoring import format_monitoring_config
from ._textproto import write_atomic

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RenderedConfig:
    """One file derived from the declaration.

    ``path`` is where it is written on the host; ``container_path`` is where the container sees
    it (``None`` when it is not under the mounted root); ``flag`` is the server flag that reads it.
    ``changed`` is only meaningful after :func:`write_configs`.
    """

    kind: str
    target: Target | None
    path: Path
    container_path: str | None
    flag: str
    text: str
    changed: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "target": self.target, "path": str(self.path),
                "container_path": self.container_path, "flag": self.flag, "changed": self.changed}


def render_configs(declaration: Declaration) -> list[RenderedConfig]:
    """Every file's text, without writing anything."""
    origin = declaration.source.name if declaration.source else "the declaration"
    regenerate = f"Do not edit: change {origin} and run `tfsk config write` again."
    outputs = declaration.outputs
    rendered = []
    models_files: list[tuple[Target, Path]] = [("container", outputs.models_config),
                                               ("host", outputs.host_models_config)]
    for target, path in models_files:
        where = (f"the serving container (base paths under {declaration.mapping.container_root})"
                 if target == "container" else "the devserver on this host (absolute host paths)")
        header = f"TF Serving models.config for {where}, written by `tfsk config write` from {origin}.\n{regenerate}"
        text = format_model_server_config(declaration.model_server_config(target), header)
        rendered.append(_rendered(declaration, "models", target, path, "--model_config_file", text))
    header = f"Written by `tfsk config write` from {origin}.\n{regenerate}"
    if declaration.monitoring is not None and outputs.monitoring_config is not None:
        text = format_monitoring_config(declaration.monitoring, f"TF Serving monitoring config. {header}")
        rendered.append(_rendered(declaration, "monitoring", None, outputs.monitoring_config,
                                  "--monitoring_config_file", text))
    if declaration.batching is not None and outputs.batching_parameters is not None:
        text = format_batching_parameters(declaration.batching,
                                          f"TF Serving batching parameters (with --enable_batching). {header}")
        rendered.append(_rendered(declaration, "batching", None, outputs.batching_parameters,
                                  "--batching_parameters_file", text))
    return rendered


def write_configs(declaration: Declaration, dry_run: bool = False) -> list[RenderedConfig]:
    """Write every file atomically; unchanged files are left alone. ``dry_run`` writes nothing."""
    results = []
    for item in render_configs(declaration):
        changed = _differs(item.path, item.text) if dry_run else write_atomic(item.path, item.text)
        results.append(RenderedConfig(item.kind, item.target, item.path, item.container_path, item.flag,
                                      item.text, changed))
    return results


def _rendered(declaration: Declaration, kind: str, target: Target | None, path: Path, flag: str,
              text: str) -> RenderedConfig:
    return RenderedConfig(kind, target, path, declaration.mapping.to_container(path), flag, text)


def _differs(path: Path, text: str) -> bool:
    try:
        return path.read_text(encoding="utf-8") != text
    except (OSError, UnicodeDecodeError):
        return True
