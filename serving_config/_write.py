"""Writing every config a declaration describes, for the container and for the host.

A model's own batching (``[models.NAME.batching]``) goes where TF Serving reads it with
``--enable_per_model_batching_parameters``: ``batching_params.pbtxt`` in each version folder.
Published versions are immutable, so the file is only ever *added* to a version that lacks it
(created atomically, never replaced); a version that already carries different parameters is
left alone and reported.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfsk._base import layout

from ._batching import (
    PER_MODEL_BATCHING_FILE,
    format_batching_parameters,
    read_batching_parameters,
    validate_batching_settings,
)
from ._declaration import Declaration, ModelDeclaration, Target
from ._errors import ConfigError
from ._findings import FindingList, ValidationReport
from ._models_config import format_model_server_config
from ._monitoring import format_monitoring_config
from ._textproto import write_atomic, write_new

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
    for model in declaration.models:
        rendered.extend(_model_batching_files(declaration, model, origin))
    return rendered


def _model_batching_files(declaration: Declaration, model: ModelDeclaration, origin: str) -> list[RenderedConfig]:
    """One ``batching_params.pbtxt`` per version folder of the model (none if its settings would fail loads)."""
    if model.batching is None or not validate_batching_settings(model.batching, per_model=True).ok:
        return []
    header = (f"TF Serving per-model batching parameters of model {model.name!r} (read with --enable_batching "
              f"--enable_per_model_batching_parameters), written by `tfsk config write` from {origin}.\n"
              "A published version keeps this file: to change it, change the declaration and export a new version.")
    text = format_batching_parameters(model.batching, header)
    return [_rendered(declaration, "model-batching", None, version.path / PER_MODEL_BATCHING_FILE,
                      "--enable_per_model_batching_parameters", text)
            for version in layout.list_versions(declaration.mapping.host_path(model.folder)) if version.path.is_dir()]


def model_batching_reports(declaration: Declaration) -> list[ValidationReport]:
    """Per model with ``[models.NAME.batching]``: its settings checked, and its version folders' files compared."""
    reports = []
    for model in declaration.models:
        if model.batching is None:
            continue
        folder = declaration.mapping.host_path(model.folder)
        found = FindingList(model.name)
        checked = validate_batching_settings(model.batching, str(folder), per_model=True, model=model.name)
        found.extend(checked.findings)
        if not checked.ok:
            found.error("model-batching-not-written", "batching",
                        f"no {PER_MODEL_BATCHING_FILE} was written: TF Serving would fail to load every version "
                        "with it",
                        f"fix [models.{model.name}.batching] and run `tfsk config write` again")
        versions = [v for v in layout.list_versions(folder) if v.path.is_dir()]
        if not versions:
            found.warning("model-batching-no-versions", "batching",
                          f"{folder} has no version folder yet, so no {PER_MODEL_BATCHING_FILE} was written",
                          "export the model, then run `tfsk config write` again (before the server loads it)")
        for version in versions:
            path = version.path / PER_MODEL_BATCHING_FILE
            if not path.exists():
                continue
            try:
                same = read_batching_parameters(path) == model.batching
            except ConfigError:
                same = False
            if not same:
                found.warning("model-batching-differs", "batching",
                              f"version {version.version} already has a {PER_MODEL_BATCHING_FILE} with other "
                              f"parameters than [models.{model.name}.batching]; published versions are never "
                              "rewritten, so it keeps them",
                              "export a new version to serve the declared parameters (or replace the file by hand "
                              "and reload that version)")
        reports.append(ValidationReport(str(folder), "batching", tuple(found.items)))
    return reports


def write_configs(declaration: Declaration, dry_run: bool = False, *,
                  host_config: bool = True) -> list[RenderedConfig]:
    """Write every file atomically; unchanged files are left alone. ``dry_run`` writes nothing.

    ``host_config=False`` leaves models.host.config alone: run inside a container, the "host" paths
    would be the container's own, which the devserver on the real host cannot see.
    """
    results = []
    for item in render_configs(declaration):
        if not host_config and item.kind == "models" and item.target == "host":
            continue
        if item.kind == "model-batching":
            # Never replaced: the file lives in a published version.
            changed = (not (item.path.exists() or item.path.is_symlink()) if dry_run
                       else write_new(item.path, item.text))
        else:
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
