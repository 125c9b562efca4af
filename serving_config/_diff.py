"""What reloading a server from one models.config to another would do.

TF Serving applies a reload (``ReloadConfig``, or the polled config file) as follows: models
missing from the new config are unloaded, new ones are loaded (the reload RPC waits for them),
policy and base-path changes take effect at the next file-system poll, and the label map is
checked against the versions loaded *before* this reload. Some changes are refused outright.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from google.protobuf import text_format

from tfsk._base import rules
from tfsk._base.messages import ModelConfig, ModelServerConfig

from ._disk import aspired_versions
from ._models_config import labels_of, model_entries
from ._paths import PathMapping
from ._policy import VersionPolicy

_LABEL_RULE = ("TF Serving applies the new label map only if version {v} is AVAILABLE when the reload runs; "
               "otherwise it refuses the whole label map (FAILED_PRECONDITION) and the old labels stay")


@dataclass(frozen=True)
class Change:
    """One difference and what a reload does about it; ``refused``: TF Serving rejects the reload."""

    model: str | None
    kind: str
    old: Any
    new: Any
    effect: str
    refused: bool = False

    def __str__(self) -> str:
        subject = f"{self.model}: " if self.model is not None else ""
        change = f"{self.kind} {_show(self.old)} -> {_show(self.new)}"
        if self.kind in ("model-added", "model-removed"):
            change = self.kind
        mark = "REFUSED " if self.refused else ""
        return f"{mark}{subject}{change}: {self.effect}"

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "kind": self.kind, "old": self.old, "new": self.new, "effect": self.effect,
                "refused": self.refused}


@dataclass(frozen=True)
class ConfigDiff:
    changes: tuple[Change, ...]

    @property
    def empty(self) -> bool:
        return not self.changes

    @property
    def refused(self) -> list[Change]:
        return [c for c in self.changes if c.refused]

    def to_json(self) -> dict[str, Any]:
        return {"changes": [c.to_json() for c in self.changes], "refused": bool(self.refused)}


def diff_configs(old: ModelServerConfig, new: ModelServerConfig, *, mapping: PathMapping | None = None,
                 check_disk: bool = True, allow_version_labels_for_unavailable_models: bool = False) -> ConfigDiff:
    """The changes a reload from ``old`` (live, every version loaded) to ``new`` makes.

    With ``check_disk`` (and ``mapping`` for container paths) the model folders are read to say
    which versions load and unload, and which label changes TF Serving would refuse.
    """
    old_kind, new_kind = old.WhichOneof("config"), new.WhichOneof("config")
    if old == new:
        return ConfigDiff(())
    if new_kind == "custom_model_config" or (old_kind is not None and new_kind != "model_config_list"):
        refusal = rules.transition_refusal(old, new)
        message = refusal.message if refusal else "ModelServer does not yet support custom model config."
        return ConfigDiff((Change(None, "config-kind", old_kind, new_kind, f"TF Serving refuses it: \"{message}\"",
                                  refused=True),))
    before = {m.name: m for m in model_entries(old)}
    after = {m.name: m for m in model_entries(new)}
    loaded_before = aspired_versions(old, mapping) if check_disk else {}
    loaded_after = aspired_versions(new, mapping) if check_disk else {}
    changes: list[Change] = []
    for name, model in after.items():
        if name not in before:
            versions = loaded_after.get(name)
            loads = f"; it loads versions {sorted(versions)}" if versions is not None else ""
            changes.append(Change(name, "model-added", None, _summary(model),
                                  "TF Serving starts loading it; the reload RPC returns once a version is AVAILABLE "
                                  "(never, if its base path is missing or holds no version)" + loads))
            # A new model has nothing loaded when TF Serving checks the labels of the same config.
            changes += _label_changes(name, {}, labels_of(model), frozenset(),
                                      allow_version_labels_for_unavailable_models)
        else:
            changes += _model_changes(name, before[name], model, loaded_before.get(name), loaded_after.get(name),
                                      allow_version_labels_for_unavailable_models)
    for name, model in before.items():
        if name not in after:
            versions = loaded_before.get(name)
            which = f"versions {sorted(versions)}" if versions is not None else "every version"
            changes.append(Change(name, "model-removed", _summary(model), None,
                                  f"TF Serving unloads {which} (without waiting); requests get NOT_FOUND, and "
                                  f"GetModelStatus keeps reporting them as END"))
    return ConfigDiff(tuple(changes))


def _model_changes(name: str, old: ModelConfig, new: ModelConfig, loaded_before: frozenset[int] | None,
                   loaded_after: frozenset[int] | None, allow: bool) -> list[Change]:
    changes = []
    old_platform, new_platform = _platform(old), _platform(new)
    changed = rules.platform_change_refusals(_listing(old), _listing(new))
    if old_platform != new_platform and changed:
        changes.append(Change(name, "platform", old_platform, new_platform,
                              f"TF Serving refuses it: \"{changed[0].message}\"", refused=True))
    if old.base_path != new.base_path:
        changes.append(Change(name, "base_path", old.base_path, new.base_path,
                              "the next file-system poll reads versions from the new path; a version whose number "
                              "is already loaded is not reloaded from it"))
    old_policy, new_policy = VersionPolicy.from_model_config(old), VersionPolicy.from_model_config(new)
    if old_policy != new_policy:
        changes.append(Change(name, "policy", old_policy.describe(), new_policy.describe(),
                              "applies at the next file-system poll (--file_system_poll_wait_seconds, default 1 s)"))
    if loaded_before is not None and loaded_after is not None and loaded_before != loaded_after:
        loads, unloads = sorted(loaded_after - loaded_before), sorted(loaded_before - loaded_after)
        effect = []
        if loads:
            effect.append(f"loads versions {loads}")
        if unloads:
            effect.append(f"unloads versions {unloads}" + (" once the new ones are AVAILABLE" if loads else ""))
        changes.append(Change(name, "versions", sorted(loaded_before), sorted(loaded_after), "; ".join(effect)))
    changes += _label_changes(name, labels_of(old), labels_of(new), loaded_before, allow)
    if old.logging_config != new.logging_config:
        changes.append(Change(name, "logging_config", _text(old.logging_config), _text(new.logging_config),
                              "request logging for this model changes with the reload"))
    return changes


def _label_changes(name: str, old: dict[str, int], new: dict[str, int], loaded: frozenset[int] | None,
                   allow: bool) -> list[Change]:
    changes = []
    for label in sorted(set(old) | set(new)):
        before, after = old.get(label), new.get(label)
        if before == after:
            continue
        if after is None:
            changes.append(Change(name, "label-removed", f"{label}={before}", None,
                                  f"requests by label {label!r} get INVALID_ARGUMENT \"Unrecognized servable version "
                                  f"label: {label}\""))
            continue
        # The flag admits a new label for an unloaded version, never a moved one.
        refused = loaded is not None and not rules.label_admitted(after, loaded, before, allow)
        effect = _LABEL_RULE.format(v=after)
        if refused:
            effect = (f"version {after} is not loaded before this reload, so TF Serving refuses the label map "
                      f"(FAILED_PRECONDITION); load it first, then move the label (tfsk config plan-label)")
        kind = "label-added" if before is None else "label-moved"
        changes.append(Change(name, kind, None if before is None else f"{label}={before}", f"{label}={after}",
                              effect, refused))
    return changes


def _platform(model: ModelConfig) -> str:
    return rules.platform_of(model)[0] or ""


def _listing(model: ModelConfig) -> ModelServerConfig:
    config = ModelServerConfig()
    config.model_config_list.config.add().CopyFrom(model)
    return config


def _summary(model: ModelConfig) -> dict[str, Any]:
    return {"base_path": model.base_path, "policy": VersionPolicy.from_model_config(model).describe(),
            "labels": labels_of(model)}


def _text(message: Any) -> str:
    return str(text_format.MessageToString(message, as_one_line=True))


def _show(value: Any) -> str:
    return "(none)" if value is None else str(value)
