"""The label moves after ``start``: ``promote`` (stable -> canary), ``rollback`` (stable back), and
``finish`` (one version left loaded, unreferenced versions pruned)."""

from __future__ import annotations

from ._apply import wait_for_versions
from ._session import CANARY, STABLE, RolloutError, RolloutSession

__all__ = ["LabelSteps"]


class LabelSteps(RolloutSession):
    """promote, rollback, finish."""

    def promote(self) -> int:
        """``stable`` -> the canary version (AVAILABLE on every target first); the old version stays loaded."""
        stable, canary = self.labels.get(STABLE), self.labels.get(CANARY)
        if canary is None or stable is None:
            raise RolloutError(f"{self.model} has no canary to promote: tfsk rollout start first")
        self.state.begin("promote", self.folder)
        if canary == stable:  # promoted, maybe not applied everywhere (interrupted): apply again
            self._apply({self.model: self.kept})
            self.state.finish(self.folder)
            self.say(f"stable already names the canary, version {canary}, on every target")
            return canary
        wait_for_versions(self.targets, {self.model: [canary]}, {}, on_progress=self.say)
        self.state.previous = stable
        self._record(self.kept, self.labels | {STABLE: canary})
        self._apply({self.model: self.kept})
        self.state.finish(self.folder)
        self.say(f"stable -> {self.model} version {canary} (version {stable} stays loaded: tfsk rollout rollback "
                 f"{self.model} moves stable back; tfsk rollout finish {self.model} unloads it)")
        return canary

    def rollback(self) -> int:
        """``stable`` -> the version it named before ``promote`` (still loaded)."""
        stable = self.labels.get(STABLE)
        previous = self.state.previous
        if stable is not None and stable == previous and previous in self.kept:  # rolled back (maybe interrupted)
            self.state.begin("rollback", self.folder)
            self._apply({self.model: self.kept})
            self.state.finish(self.folder)
            self.say(f"stable already names {self.model} version {previous}, on every target")
            return previous
        if previous is None or previous not in self.kept:
            older = [v for v in self.kept if stable is not None and v < stable]
            previous = max(older) if older else None
        if previous is None or stable is None or previous == stable:
            raise RolloutError(f"{self.model}: no loaded version to roll back to (stable -> {stable}, kept "
                               f"{self.kept}); rollback works between promote and finish")
        self.state.begin("rollback", self.folder)
        wait_for_versions(self.targets, {self.model: [previous]}, {}, on_progress=self.say)
        self._record(self.kept, self.labels | {STABLE: previous})
        self._apply({self.model: self.kept})
        self.state.finish(self.folder)
        self.say(f"stable -> {self.model} version {previous} (rolled back from {stable})")
        return previous

    def finish(self) -> list[str]:
        """Point ``canary`` at ``stable``, unload every other version, prune versions nothing refers to."""
        stable = self.labels.get(STABLE)
        if stable is None:
            raise RolloutError(f"{self.model} has no stable label: nothing to finish")
        self.state.begin("finish", self.folder)
        if self.labels.get(CANARY, stable) != stable:  # labels first, while every version is still loaded
            self._record(self.kept, self.labels | {CANARY: stable})
            self._apply({self.model: self.kept})
        self._record([stable], {k: v for k, v in self.labels.items() if v == stable})
        pinned = self._pin_parts_of(stable)
        self._apply({self.model: [stable], **{part: [version] for part, version in pinned.items()}})
        from ._prune import prune_unreferenced

        pruned = prune_unreferenced(self.declaration)
        self.state.finish(self.folder)
        self.say(f"{self.model}: only version {stable} stays loaded" + (f"; pruned {', '.join(pruned)}" if pruned
                                                                            else ""))
        return pruned

    def _pin_parts_of(self, stable: int) -> dict[str, int]:
        """Each declared part that serves anything but the one version ``stable`` was built from (a
        rolled-back part version is the newest on disk; start kept stable's part version loaded beside
        the new one) is pinned in tfsk.toml to that version, so the standalone part serves what
        ``stable`` was built from, the consistency check can ask it, and no later export moves it."""
        from tfsk.exporter import read_lineage

        lineage = read_lineage(self._host_dir(self.model) / str(stable)) or {}
        pinned = {}
        for name, version, served in self._declared_lineage_parts(lineage):
            if served == [version]:
                continue
            self._pin_part(name, [version])
            pinned[name] = version
            self.say(f"{name}: pinned to version {version} in tfsk.toml (what {self.model} version {stable} was built "
                     f"from; it served {', '.join(map(str, served)) or 'nothing'})")
        return pinned
