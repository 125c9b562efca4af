"""``tfsk rollout start``: export the part's new version, assemble the composed model's next version
with the head of ``stable``, load it beside ``stable`` everywhere, check it, label it ``canary``.

Each stage is noted before it runs (:class:`RolloutState`), so a start that was interrupted
resumes where it stopped, finding what it exported instead of exporting it twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tfsk import serving_config as sc
from tfsk._base.layout import list_versions

from ._rollout_state import RolloutState
from ._session import CANARY, STABLE, RolloutError, RolloutSession, Source

__all__ = ["StartStep"]


class StartStep(RolloutSession):
    """The start of a rollout and its stages."""

    # -- start --------------------------------------------------------------------------------------
    def start(self, part: str, source: Source, *, atol: float = 1e-5,
              allow_contract_change: bool = False) -> RolloutState:
        """Export ``part``'s next version (or take ``source.version``), assemble the composed model's next
        version with the head of ``stable``, load it beside ``stable`` everywhere, check it, label it ``canary``.

        ``allow_contract_change`` is passed to both exports (a part whose inputs or outputs change on
        purpose); without it such a part is refused with :class:`tfsk.exporter.ContractChangeError`."""
        labels, state = self.labels, self.state
        resuming = (state.part == part and state.source == source.describe()
                    and state.stable == labels.get(STABLE, state.stable))
        if not resuming and state.candidate is not None and labels.get(CANARY) != labels.get(STABLE) \
                and state.step not in ("finish", "rollback") and labels.get(STABLE) is not None \
                and state.candidate in self.kept:
            raise RolloutError(f"a rollout of {self.model!r} is in progress (part {state.part}, {state.source}, "
                               f"version {state.candidate}, step {state.step}): promote, rollback or finish it first "
                               f"(tfsk rollout finish {self.model}), or re-run that rollout's start to resume it",
                               resumable=False)
        if resuming and state.step == "label" and state.done:
            self.say(f"already started: canary -> {state.candidate}, stable -> {state.stable}; nothing to do")
            return state
        if not resuming:
            state = self.state = RolloutState(self.model, part, source.describe())
        stable = labels.get(STABLE) or self._discover_stable()
        state.stable = stable
        self.say(f"stable is {self.model} version {stable}")

        state.begin("pin", self.folder)  # stable labelled, the versions to keep pinned: no export moves them
        lineage = self._lineage(stable)
        parts_loading = self._pin_parts_serving(lineage)
        old_canary = labels.get(CANARY)
        keep = sorted({stable, *([old_canary] if old_canary is not None and old_canary in self.kept else [])})
        pinned = {k: v for k, v in labels.items() if v in keep} | {STABLE: stable}
        candidate = state.candidate if state.candidate in self.kept else None
        self._record(sorted({*keep, *([candidate] if candidate else [])}), pinned)
        self._apply({self.model: keep, **parts_loading})

        state.begin("export-part", self.folder)
        parts = {p["name"]: p for p in lineage.get("parts", [])}
        if part not in parts:
            raise RolloutError(f"{self.model} version {stable} has no part {part!r} (parts: {', '.join(parts)})")
        parts_base = self._parts_base(parts)
        state.part_version = self._part_version(part, source, parts_base, allow_contract_change)
        self.state.finish(self.folder)
        wanted = {name: (state.part_version if name == part else ref["version"]) for name, ref in parts.items()}

        state.begin("export-composed", self.folder)
        state.candidate = self._composed_version(stable, lineage, wanted, parts_base, allow_contract_change)
        state.finish(self.folder)

        state.begin("load", self.folder)
        versions = sorted({*keep, state.candidate})
        self._record(versions, pinned)
        self._keep_part_loaded(part, state.part_version)
        served_part = any(m.name == part for m in self.declaration.models)  # then the check asks it standalone
        self._apply({self.model: versions, **({part: [state.part_version]} if served_part else {})})

        state.begin("check", self.folder)
        self._check(state.candidate, atol)

        state.begin("label", self.folder)
        self._record(versions, pinned | {CANARY: state.candidate})
        self._apply({self.model: versions})
        state.finish(self.folder)
        self.say(f"canary -> {self.model} version {state.candidate} ({part} version {state.part_version}); "
                 f"stable -> version {stable}. Next: tfsk rollout promote {self.model}")
        return state

    def _discover_stable(self) -> int:
        """No ``stable`` label yet: the newest version every target has AVAILABLE (what unlabelled requests get)."""
        common: set[int] | None = None
        for address in self.targets.addresses:
            from tfsk.client import Client

            with Client(address, timeout=10, retries=0) as client:
                try:
                    available = {s.version for s in client.status(self.model) if s.state == "AVAILABLE"}
                except Exception as error:  # noqa: BLE001
                    raise RolloutError(f"{address}: cannot read the status of {self.model!r}: {error}") from None
            common = available if common is None else common & available
        if not common:
            raise RolloutError(f"no version of {self.model!r} is AVAILABLE on every target ({self.targets.describe()});"
                               f" start the server first (tfsk stack up)")
        return max(common)

    def _lineage(self, version: int) -> dict[str, Any]:
        from tfsk.exporter import read_lineage

        lineage = read_lineage(self._host_dir(self.model) / str(version))
        if not lineage or not lineage.get("parts"):
            raise RolloutError(f"{self._host_dir(self.model) / str(version)} has no composed lineage: rollouts need a "
                               f"composed model exported by tfsk (tfsk export composed)")
        return lineage

    def _parts_base(self, parts: Mapping[str, Any]) -> Path:
        """The folder holding the part models, as tfsk.toml declares them (the lineage's absolute paths
        name where the parts were when the composed version was exported, maybe another machine)."""
        declared = {m.name: m for m in self.declaration.models}
        bases = set()
        for name, ref in parts.items():
            folder = self._host_dir(name) if name in declared else Path(ref["path"]).parent
            if folder.name != name:
                raise RolloutError(f"part {name!r} lives in folder {folder}; rollouts need each part in a folder of "
                                   f"its name (folder = \"{name}\" in tfsk.toml)")
            bases.add(folder.parent)
        if len(bases) != 1:
            raise RolloutError(f"the parts of {self.model} live under different folders ({sorted(map(str, bases))}); "
                               f"rollouts need them side by side")
        return bases.pop()

    def _part_version(self, part: str, source: Source, parts_base: Path, allow_contract_change: bool = False) -> int:
        on_disk = {v.version for v in list_versions(parts_base / part)}
        if source.version is not None:
            if source.version not in on_disk:
                raise RolloutError(f"{part} version {source.version} is not in {parts_base / part}: export it first")
            return source.version
        if self.state.part_version is not None and self.state.part_version in on_disk:
            self.say(f"reusing {part} version {self.state.part_version}, exported by the interrupted start")
            return self.state.part_version
        from tfsk.exporter import export_part

        self.say(f"exporting {part} from {source.keras_file or source.factory}")
        result = export_part(source.keras_file or source.factory, parts_base, part,
                             allow_contract_change=allow_contract_change, on_step=lambda step: self.say(f"  export {part}: {step}"))
        self.say(f"exported {part} version {result.version}")
        return result.version

    def _composed_version(self, stable: int, lineage: dict[str, Any], wanted: dict[str, int],
                          parts_base: Path, allow_contract_change: bool = False) -> int:
        """The composed version of ``wanted`` parts with the head of ``stable``: found on disk, else exported."""
        from tfsk.exporter import HeadRef, export_composed, read_lineage

        folder = self._host_dir(self.model)
        head = lineage.get("head", {}).get("sha256")  # a reused head records the sha256 of the one it came from
        for child in (v for v in list_versions(folder) if v.version > stable):
            found = read_lineage(child.path) or {}
            found_head = found.get("head", {})
            same_head = head is not None and head in (found_head.get("sha256"), found_head.get("source", {}).get("sha256"))
            if {p["name"]: p["version"] for p in found.get("parts", [])} == wanted and same_head:
                self.say(f"reusing {self.model} version {child.version} (same parts, same head)")
                return child.version
        refs = [f"{name}@{version}" for name, version in wanted.items()]
        self.say(f"exporting {self.model} from {', '.join(refs)} with the head of version {stable}")
        result = export_composed(folder.parent, folder.name, refs, HeadRef(folder.name, stable), parts_base=parts_base,
                                 allow_contract_change=allow_contract_change, on_step=lambda step: self.say(f"  export {self.model}: {step}"))
        self.say(f"exported {self.model} version {result.version}")
        return result.version

    def _pin_parts_serving(self, lineage: dict[str, Any]) -> dict[str, list[int]]:
        """Each declared part of ``stable`` is pinned (``specific``) to what it serves plus the version stable
        was built from, so the consistency checks can always ask that version and no later export (this
        rollout's, or a user's ``tfsk export part``) unloads it. What unversioned requests get does not
        change: a part that serves only that version keeps serving it; one that moved on to a newer export
        keeps its newest and loads stable's beside it. A version no longer on disk is left to the check.
        Returns the part versions to wait for."""
        from tfsk._base.layout import list_versions

        loading = {}
        for name, version, served in self._declared_lineage_parts(lineage):
            on_disk = {v.version for v in list_versions(self._host_dir(name)) if v.complete}
            if (self.declaration.model(name).policy.kind == "specific" and version in served) \
                    or version not in on_disk:
                continue
            self._pin_part(name, sorted({*served, version}))
            loading[name] = [version]
            self.say(f"{name}: pinned to versions {sorted({*served, version})} in tfsk.toml (version {version} is "
                     f"what stable was built from)")
        return loading

    def _keep_part_loaded(self, part: str, version: int) -> None:
        """A part under ``specific`` gets the new version added (the consistency check asks it)."""
        declared = next((m for m in self.declaration.models if m.name == part), None)
        if declared is None or declared.policy.kind != "specific" or version in declared.policy.versions:
            return
        self.declaration = sc.record_versions(self.declaration, part, [*declared.policy.versions, version],
                                           declared.label_map)

    def _check_advice(self, bad: list[Any]) -> str:
        """What to do about the parts that failed the check: which standalone version to serve, and how."""
        declared = {m.name for m in self.declaration.models}
        unasked = [c for c in bad if c.verdict == "could_not_compare" and c.version is not None]
        advice = []
        for check in unasked:
            if check.name in declared:
                advice.append(f"the standalone {check.name} must serve version {check.version} (what the composed "
                              f"version was built from): in {self.path.name} set [models.{check.name}] "
                              f"policy = \"specific\" and versions = [{check.version}] (keep any version being rolled "
                              f"out), then run the same command again")
        if len(unasked) < len(bad):
            advice.append("a part that DIFFERS computes other numbers standalone than inside the composed model "
                          "(another export under the same version, or a tolerance too tight: --atol)")
        return "; ".join(advice) or "see tfsk check " + self.model

    def _check(self, version: int, atol: float) -> None:
        from tfsk.client import Client

        for address in self.targets.addresses:
            with Client(address, timeout=self.targets.timeout, retries=0) as client:
                report = client.check_consistency(self.model, version=version, atol=atol)
            if not report.consistent:
                bad = [c for c in report.parts if not c.consistent]
                said = "; ".join(f"{c.name}@{c.version}: {c.problem or c.max_abs_difference}" for c in bad)
                raise RolloutError(f"{address}: the consistency check of {self.model} version {version} failed "
                                   f"({said}). {self._check_advice(bad)}")
        self.say(f"consistency check passed on {len(self.targets.addresses)} target(s)")
