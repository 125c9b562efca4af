"""The stack's one-shot step: export the demo models when none exist, then write the configs.

The compose file's ``exporter`` service runs it in a container (``tfsk stack prepare``); the
devserver engine runs it on the host before it starts the server, so both engines serve the same
files.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from tfsk import serving_config as sc

from ._errors import StackError

__all__ = ["DEMO_MODELS", "PreparedStack", "prepare_stack"]

#: The models ``tfsk export demo`` writes: a declaration naming only these can be filled by the demo.
DEMO_MODELS = frozenset({"tower_a", "tower_b", "tower_c", "composed"})


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
                  on_step: Callable[[str], None] = lambda _: None) -> PreparedStack:
    """Export the demo when no declared model has a version yet, write every config, validate them.

    A declaration whose models are not all the demo's, with a model that has no version, is
    refused: TF Serving would wait forever for it at start-up.
    """
    declaration = sc.load_declaration(declaration_path)
    missing = _missing_models(declaration)
    exported: dict[str, int] = {}
    declared = {model.name for model in declaration.models}
    if missing and len(missing) == len(declared) and declared <= DEMO_MODELS:
        on_step(f"no model under {declaration.mapping.host_root} yet: exporting the demo models")
        from tfsk.exporter import export_demo  # TensorFlow: only when there is something to export

        exported = {name: result.version for name, result in export_demo(declaration.mapping.host_root).items()}
    elif missing:
        raise StackError(f"model(s) {', '.join(missing)} have no version under {declaration.mapping.host_root}: "
                         f"TF Serving would wait for them forever; export them (tfsk export ...) or remove them "
                         f"from {declaration.source}")
    written = tuple(sc.write_configs(declaration))
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
