"""The stack's one-shot step: fill the declared models when none has a version yet, then write the configs.

The compose file's ``exporter`` service runs it in a container (``tfsk stack prepare``); the
devserver engine runs it on the host before it starts the server, so both engines serve the same
files. What fills the models is the caller's (``tfsk stack`` passes the demo's export): this
layer knows no models of its own.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from tfsk import serving_config as sc

from .._errors import StackError

__all__ = ["PreparedStack", "prepare_stack"]


@dataclass(frozen=True)
class PreparedStack:
    """What :func:`prepare_stack` did: ``exported`` (model -> version) is empty when models existed."""

    declaration: sc.Declaration
    exported: dict[str, int]
    written: tuple[sc.RenderedConfig, ...]
    reports: tuple[sc.ValidationReport, ...]

    @property
    def ok(self) -> bool:
        return all(report.ok for report in self.reports)


def _missing_models(declaration: sc.Declaration) -> list[str]:
    container = declaration.model_server_config("container")
    return [entry.name for entry in sc.model_entries(container)
            if not sc.inspect_model_folder(entry.base_path, declaration.mapping).versions]


def prepare_stack(declaration_path: str | os.PathLike[str] = sc.DECLARATION_FILE,
                  on_step: Callable[[str], None] = lambda _: None, *,
                  fill_missing: Callable[[Path], dict[str, int]] | None = None,
                  fillable: Collection[str] = (), in_container: bool = False) -> PreparedStack:
    """Fill the models when no declared model has a version yet, write every config, validate them.

    ``fill_missing(host_root)`` exports the models named in ``fillable`` under the host's model
    folder and returns model -> version (``tfsk stack`` passes the demo's export); it is called
    only when every declared model lacks a version and all of them are ``fillable``. Otherwise a
    model without a version is refused: TF Serving would wait forever for it at start-up.
    ``in_container`` (the exporter service) leaves models.host.config alone: the paths this process
    sees are the container's, not the host's the devserver engine needs.
    """
    declaration = sc.load_declaration(declaration_path)
    missing = _missing_models(declaration)
    exported: dict[str, int] = {}
    declared = {model.name for model in declaration.models}
    if missing and fill_missing is not None and len(missing) == len(declared) and declared <= set(fillable):
        exported = fill_missing(declaration.mapping.host_root)
    elif missing:
        raise StackError(f"model(s) {', '.join(missing)} have no version under {declaration.mapping.host_root}: "
                         f"TF Serving would wait for them forever; export them (tfsk export ...) or remove them "
                         f"from {declaration.source}")
    written = tuple(sc.write_configs(declaration, host_config=not in_container))
    for item in written:
        on_step(f"{'wrote' if item.changed else 'unchanged'} {item.path}")
    reports = [sc.validate_model_server_config(declaration.model_server_config("container"), mapping=declaration.mapping,
                                               allow_version_labels_for_unavailable_models=True,
                                               source=str(declaration.outputs.models_config))]
    if declaration.monitoring is not None:
        reports.append(sc.validate_monitoring_settings(declaration.monitoring,
                                                       str(declaration.outputs.monitoring_config)))
    if declaration.batching is not None:
        reports.append(sc.validate_batching_settings(declaration.batching,
                                                     str(declaration.outputs.batching_parameters)))
    return PreparedStack(declaration, exported, written, tuple(reports))
