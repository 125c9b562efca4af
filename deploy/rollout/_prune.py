"""``tfsk rollout finish``'s clean-up: delete the versions no label, policy or composed lineage refers to."""

from __future__ import annotations

from pathlib import Path

from tfsk import serving_config as sc
from tfsk._base.layout import VersionDir, list_versions

__all__ = ["prune_unreferenced"]


def _versions(folder: Path) -> list[VersionDir]:
    """The version folders TF Serving would see (its integer rule, not ``str.isdigit``), lowest first."""
    return list_versions(folder)


def _kept_by_declaration(model: sc.ModelDeclaration) -> tuple[int, set[int]] | None:
    """``(keep newest N, protected)`` for :func:`prune_versions`, or ``None`` when the policy keeps everything."""
    policy = model.policy
    labelled = set(model.label_map.values())
    if policy.kind == "all":
        return None
    if policy.kind == "latest":
        return policy.num_versions, labelled
    return 1, labelled | set(policy.versions)


def prune_unreferenced(declaration: sc.Declaration) -> list[str]:
    """Prune every declared model; the part versions that a kept composed version was built from stay.

    Composed models (versions with a lineage naming parts) go first, so only their kept versions protect
    part versions. The newest version of a model is never deleted (the exporter's rule).
    """
    from tfsk.exporter import prune_versions, read_lineage

    folders = {m.name: declaration.mapping.host_path(m.folder) for m in declaration.models}
    referenced: dict[str, set[int]] = {}  # by part name: lineage paths name where the parts were exported

    def is_composed(name: str) -> bool:
        versions = _versions(folders[name])
        return bool(versions and (read_lineage(versions[-1].path) or {}).get("parts"))

    pruned = []
    for model in sorted(declaration.models, key=lambda m: not is_composed(m.name)):
        folder = folders[model.name]
        on_disk = [v.version for v in _versions(folder)]
        kept = _kept_by_declaration(model)
        if kept is not None and on_disk:
            keep, protect = kept
            protect |= referenced.get(model.name, set())
            result = prune_versions(folder.parent, folder.name, keep=keep, protect=protect & set(on_disk))
            pruned += [f"{model.name}@{v}" for v in sorted(result.removed)]
        for found in _versions(folder):
            for part in (read_lineage(found.path) or {}).get("parts", []):
                referenced.setdefault(part["name"], set()).add(int(part["version"]))
    return pruned
