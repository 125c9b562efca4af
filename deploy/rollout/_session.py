"""What every rollout step shares: the declaration and its labels, the notes, applying them to the targets."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfsk import serving_config as sc

from .._errors import StackError
from ._apply import Targets, apply_declaration
from ._rollout_state import load_state

__all__ = ["CANARY", "STABLE", "Progress", "RolloutError", "RolloutSession", "Source"]

STABLE, CANARY = "stable", "canary"
Progress = Callable[[str], None]


class RolloutError(StackError):
    """A rollout step that could not be done; ``stable`` is untouched (the message says where it stopped).

    ``resumable`` is false for a refusal before anything began (running the same command again
    would be refused again)."""

    def __init__(self, message: str, log_tail: str = "", *, resumable: bool = True) -> None:
        super().__init__(message, log_tail)
        self.resumable = resumable


@dataclass(frozen=True)
class Source:
    """Where the part's new version comes from: a ``.keras`` file, a factory, or an exported version."""

    keras_file: str | None = None
    factory: str | None = None
    version: int | None = None

    def describe(self) -> str:
        if self.version is not None:
            return f"version:{self.version}"
        return f"file:{Path(self.keras_file).resolve()}" if self.keras_file else f"factory:{self.factory}"


class RolloutSession:
    """What every rollout step shares: one composed model of one declaration, on ``targets``; the
    labels and versions the declaration keeps, and applying them to every target."""

    def __init__(self, declaration: str | Path, model: str, targets: Targets,
                 on_progress: Progress = lambda _: None) -> None:
        self.path = Path(declaration).resolve()
        self.folder = self.path.parent
        self.model = model
        self.targets = targets
        self.say = on_progress
        self.declaration = sc.load_declaration(self.path)
        self.declaration.model(model)  # a clear error when it is not declared
        self.state = load_state(self.folder, model)
        #: after a step, with ``[kubernetes]`` declared: the ConfigMap written and the command that makes it stick
        self.config_map: Path | None = None
        self.kubectl: str | None = None

    # -- what is declared ---------------------------------------------------------------------------
    @property
    def labels(self) -> dict[str, int]:
        return self.declaration.model(self.model).label_map

    @property
    def kept(self) -> list[int]:
        policy = self.declaration.model(self.model).policy
        return list(policy.versions) if policy.kind == "specific" else []

    def _host_dir(self, model: str) -> Path:
        return self.declaration.mapping.host_path(self.declaration.model(model).folder)

    def _declared_lineage_parts(self, lineage: Mapping[str, Any]) -> Iterator[tuple[str, int, list[int]]]:
        """(part, the version the lineage names, the versions it serves now) for each part of a composed
        version's lineage that tfsk.toml declares (what start and finish keep or pin)."""
        declared = {m.name for m in self.declaration.models}
        for ref in lineage.get("parts", []):
            name, version = ref["name"], int(ref["version"])
            if name in declared:
                yield name, version, self._served_versions(name)

    def _served_versions(self, name: str) -> list[int]:
        """The versions of the declared model ``name`` its policy serves from what is on disk, lowest first."""
        from tfsk._base.layout import list_versions

        policy = self.declaration.model(name).policy
        if policy.kind == "specific":
            return sorted(policy.versions)
        on_disk = [v.version for v in list_versions(self._host_dir(name)) if v.complete]
        return on_disk if policy.kind == "all" else on_disk[-max(1, policy.num_versions):]

    def _pin_part(self, name: str, versions: list[int]) -> None:
        """Serve exactly ``versions`` of the declared part ``name`` (``specific`` in tfsk.toml; its labels on them kept)."""
        model = self.declaration.model(name)
        self.declaration = sc.record_versions(self.declaration, name, versions,
                                              {k: v for k, v in model.label_map.items() if v in versions})

    def _record(self, versions: list[int], labels: Mapping[str, int]) -> None:
        self.declaration = sc.record_versions(self.declaration, self.model, versions, labels)

    def _apply(self, expect: Mapping[str, list[int]]) -> None:
        apply_declaration(self.declaration, self.targets, expect=expect, labels={self.model: self.labels},
                          on_progress=self.say)

    def _sync_kubernetes(self) -> None:
        """With ``[kubernetes]`` declared, write the ConfigMap the pods read (as ``tfsk stack render k8s``,
        into ``k8s/`` beside tfsk.toml) from the step's tfsk.toml, and say the ``kubectl apply`` that
        makes the step survive a pod restart (the running servers already have it)."""
        from ..k8s import MANIFESTS_DIR, kubernetes_declared, render_kubernetes, write_config_map
        from ..stack import COMPOSE_FILE, load_stack

        self.config_map = self.kubectl = None
        if not kubernetes_declared(self.path):
            return
        try:
            spec = load_stack(self.folder / COMPOSE_FILE, self.path)
            path = write_config_map(render_kubernetes(spec), self.folder / MANIFESTS_DIR)
        except (StackError, sc.ConfigError, OSError) as error:
            self.say(f"[kubernetes]: the ConfigMap was not written ({error}); a restarted pod serves the old "
                     f"labels until you run `tfsk stack render k8s` and `kubectl apply -f k8s/configmap.yaml`")
            return
        try:
            shown = path.relative_to(Path.cwd())
        except ValueError:
            shown = path
        self.config_map = path
        self.kubectl = f"kubectl apply -f {shown}"
        self.say(f"wrote {shown} (the pods' models.config); for the pods to keep it across restarts: {self.kubectl}")
