"""Moving a version label as a plan of complete configs.

TF Serving lets a label name only a version that is already AVAILABLE, and checks labels before
it loads the versions of the same config. So "label L of model M -> version V" takes phases:

1. a config whose policy loads V (and keeps every labelled version loaded); wait for AVAILABLE;
2. the same config with L -> V;
3. optionally, the old version dropped from ``specific``.

Each phase is a complete ``ModelServerConfig``, validated as if the previous phase were live.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tfsk._base.layout import SAVED_MODEL_FILE
from tfsk._base.messages import ModelConfig, ModelServerConfig

from ._declaration import load_declaration
from ._diff import Change, diff_configs
from ._disk import aspired_versions, inspect_model_folder
from ._errors import ConfigError, LabelPlanError
from ._findings import ValidationReport
from ._models_config import (
    check_label_name,
    find_model,
    format_model_server_config,
    labels_of,
    model_entries,
    read_model_server_config,
)
from ._paths import PathMapping
from ._policy import VersionPolicy
from ._validate import ServerState, validate_model_server_config


@dataclass(frozen=True)
class PlanPhase:
    """One config to push. ``wait_for``: after pushing it, wait until this version is AVAILABLE."""

    number: int
    title: str
    instructions: str
    config: ModelServerConfig
    changes: tuple[Change, ...]
    report: ValidationReport
    wait_for: int | None = None

    @property
    def text(self) -> str:
        return format_model_server_config(self.config)

    def to_json(self) -> dict[str, Any]:
        return {"phase": self.number, "title": self.title, "instructions": self.instructions,
                "wait_for_available_version": self.wait_for, "changes": [c.to_json() for c in self.changes],
                "validation": self.report.to_json(), "config": self.text}


@dataclass(frozen=True)
class LabelPlan:
    model: str
    label: str
    version: int
    previous_version: int | None
    phases: tuple[PlanPhase, ...]
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Every phase validates without errors."""
        return all(phase.report.ok for phase in self.phases)

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "label": self.label, "version": self.version,
                "previous_version": self.previous_version, "ok": self.ok, "notes": list(self.notes),
                "phases": [p.to_json() for p in self.phases]}


def plan_label_move(config: ModelServerConfig, model: str, label: str, version: int, *,
                    mapping: PathMapping | None = None, check_disk: bool = True, drop_old: bool = False,
                    allow_version_labels_for_unavailable_models: bool = False) -> LabelPlan:
    """The phases that take ``config`` (live, every version loaded) to ``label`` of ``model`` -> ``version``.

    ``drop_old`` adds phase 3, which unloads the version the label named before (when the policy
    is ``specific`` and no other label still names it).
    """
    entry = find_model(config, model)
    if entry is None:
        names = ", ".join(m.name for m in model_entries(config)) or "none"
        raise LabelPlanError(f"model {model!r} is not in the config (models: {names}); add it first")
    try:
        check_label_name(label)
    except ConfigError as error:
        raise LabelPlanError(str(error)) from None
    labels = labels_of(entry)
    previous = labels.get(label)
    if previous == version:
        return LabelPlan(model, label, version, previous, (),
                         (f"label {label!r} of {model!r} already names version {version}: nothing to do",))
    notes: list[str] = []
    policy = VersionPolicy.from_model_config(entry)
    loadable = _loadable_policy(entry.base_path, policy, version, set(labels.values()), mapping, check_disk, notes)

    first = config if loadable == policy else _with_model(config, model, lambda m: _set_policy(m, loadable))
    second = _with_model(first, model, lambda m: m.version_labels.__setitem__(label, version))
    configs = [(first, "load", version), (second, "label", None)]

    if drop_old:
        third = _drop_old(second, model, label, previous, notes)
        if third is not None:
            configs.append((third, "drop", None))

    phases = []
    before = config
    for number, (phase_config, step, wait_for) in enumerate(configs, start=1):
        title, instructions = _describe(step, model, label, version, previous, phase_config == before)
        server = _state_after(before, mapping, check_disk)
        report = validate_model_server_config(
            phase_config, mapping=mapping, check_disk=check_disk, server=server,
            allow_version_labels_for_unavailable_models=allow_version_labels_for_unavailable_models,
            source=f"phase {number}")
        changes = diff_configs(before, phase_config, mapping=mapping, check_disk=check_disk,
                               allow_version_labels_for_unavailable_models=allow_version_labels_for_unavailable_models)
        phases.append(PlanPhase(number, title, instructions, phase_config, changes.changes, report, wait_for))
        before = phase_config
    return LabelPlan(model, label, version, previous, tuple(phases), tuple(notes))


def _loadable_policy(base_path: str, policy: VersionPolicy, version: int, labelled: set[int],
                     mapping: PathMapping | None, check_disk: bool, notes: list[str]) -> VersionPolicy:
    """A policy that loads ``version``, keeps every labelled version loaded, and keeps them when newer
    versions are exported."""
    folder = inspect_model_folder(base_path, mapping) if check_disk else None
    if folder is not None and folder.checked:
        if not folder.is_dir:
            container = "" if mapping is not None else (" (if it is a container path, give "
                                                         "--host-root/--container-root)")
            raise LabelPlanError(f"the base path {base_path!r} ({folder.host_path}) is missing or not a folder"
                                 f"{container}; fix the config (tfsk config validate) before moving labels")
        found = {v.version: v for v in folder.versions}
        if version not in found:
            raise LabelPlanError(f"version {version} is not in {base_path!r} ({folder.host_path}; it has "
                                 f"{sorted(found) or 'no version'}); export it first (tfsk export ...)")
        if not found[version].complete:
            raise LabelPlanError(f"version {version} ({found[version].path}) has no {SAVED_MODEL_FILE} and would not load; "
                                 f"export a complete version")
    elif check_disk and folder is not None:
        if policy.kind == "latest":
            raise LabelPlanError(f"cannot tell which versions policy {policy.describe()} serves: {folder.unchecked}. "
                                 f"Give --host-root/--container-root so the model folder can be read")
        notes.append(f"version {version} was not checked on disk ({folder.unchecked}); make sure it exists")
    elif policy.kind == "latest":
        raise LabelPlanError(f"policy {policy.describe()} loads whichever versions are newest on disk, so the plan "
                             f"needs to read the model folder; do not skip the disk check")
    if policy.kind == "all":
        return policy
    if policy.kind == "specific":
        return policy if version in policy.versions else VersionPolicy.specific(sorted({*policy.versions, version}))
    assert folder is not None
    # Under latest, the next export unloads the oldest served version, and a label naming it then
    # answers NOT_FOUND; so the versions being served, and every labelled one, are pinned.
    served = {v.version for v in policy.aspired(folder.versions)}
    needed = {version} | {v for v in labelled if v in folder.version_numbers()}
    pinned = VersionPolicy.specific(sorted(served | needed))
    notes.append(f"policy {policy.describe()} would unload labelled versions as newer ones are exported (requests "
                 f"by label then fail with NOT_FOUND), so phase 1 pins {pinned.describe()}: new exports are no longer "
                 f"loaded automatically; record the final policy in tfsk.toml")
    return pinned


def _drop_old(config: ModelServerConfig, model: str, label: str, previous: int | None,
              notes: list[str]) -> ModelServerConfig | None:
    entry = find_model(config, model)
    assert entry is not None
    policy = VersionPolicy.from_model_config(entry)
    if previous is None:
        notes.append(f"no phase 3: label {label!r} is new, so there is no old version to drop")
        return None
    others = sorted(name for name, v in labels_of(entry).items() if v == previous)
    if others:
        notes.append(f"no phase 3: version {previous} is still named by label(s) {others}")
        return None
    if policy.kind != "specific" or previous not in policy.versions:
        notes.append(f"no phase 3: policy {policy.describe()} decides which versions stay loaded; "
                     f"there is no version list to drop {previous} from")
        return None
    remaining = VersionPolicy.specific(v for v in policy.versions if v != previous)
    return _with_model(config, model, lambda m: _set_policy(m, remaining))


def _describe(step: str, model: str, label: str, version: int, previous: int | None,
              unchanged: bool) -> tuple[str, str]:
    if step == "load":
        title = f"load version {version} of {model!r}"
        push = ("no config change is needed: the policy already loads it" if unchanged
                else "push this config (HandleReloadConfigRequest, or write it where the server polls)")
        return title, (f"{push}; then wait until GetModelStatus reports version {version} of {model!r} AVAILABLE "
                       f"(TF Serving refuses the label before that)")
    if step == "label":
        verb = "add" if previous is None else f"move from version {previous}"
        return (f"label {label!r} -> version {version} ({verb})",
                f"push this config once version {version} is AVAILABLE; requests by label {label!r} then go to "
                f"version {version}")
    return (f"unload version {previous} of {model!r}",
            f"push this config after phase 2 is live; nothing names version {previous} any more")


def _state_after(config: ModelServerConfig, mapping: PathMapping | None, check_disk: bool) -> ServerState:
    """The server once ``config`` is live and its versions loaded (unknown for folders not read)."""
    available = aspired_versions(config, mapping) if check_disk else {}
    return ServerState(available=available, labels={m.name: labels_of(m) for m in model_entries(config)})


def _with_model(config: ModelServerConfig, model: str, change: Callable[[ModelConfig], None]) -> ModelServerConfig:
    """A copy of ``config`` with ``change`` applied to the entry of ``model`` (the original stays as it was)."""
    copy = ModelServerConfig()
    copy.CopyFrom(config)
    entry = find_model(copy, model)
    assert entry is not None, model
    change(entry)
    return copy


def _set_policy(entry: ModelConfig, policy: VersionPolicy) -> None:
    entry.model_version_policy.CopyFrom(policy.to_proto())


def read_labels(path: str | os.PathLike[str], model: str) -> dict[str, int]:
    """The version labels of ``model`` in a models.config, or in a tfsk.toml (a ``.toml`` file).

    A model a models.config does not list has no labels; one a tfsk.toml does not declare is a
    :class:`DeclarationError`. Unreadable files raise :class:`ConfigError`.
    """
    if os.fspath(path).endswith(".toml"):
        return load_declaration(path).model(model).label_map
    found = find_model(read_model_server_config(path), model)
    return labels_of(found) if found is not None else {}
