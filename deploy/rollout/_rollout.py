"""``tfsk rollout``: a new part version into a composed model, behind labels, on running servers.

The composed model's entry in ``tfsk.toml`` becomes ``policy = "specific"`` with the versions to
keep loaded and the labels ``stable`` (what clients should get) and ``canary`` (the newest
rollout). Every step changes ``tfsk.toml``, writes the configs and applies them to every target
(:func:`apply_declaration`); a label only moves to a version every target reports AVAILABLE, and
no step unloads or relabels what ``stable`` names before ``promote``. So an interrupted step
leaves ``stable`` serving what it served, and running the command again resumes: the exported
part version and composed version are found again (notes in ``.tfsk/rollout/``, lineage on disk)
instead of exported twice.
"""

from __future__ import annotations

import os
from typing import Any

from ._gate_steps import GateSteps
from ._labels import LabelSteps
from ._rollout_state import RolloutState
from ._session import CANARY, STABLE, RolloutError, Source
from ._start import StartStep
from ._status import StatusReport

__all__ = ["CANARY", "STABLE", "Rollout", "RolloutError", "Source"]


class Rollout(StartStep, LabelSteps, StatusReport, GateSteps):
    """The rollout commands for one composed model of one declaration, on ``targets``:
    :meth:`start`, :meth:`analyze`, :meth:`promote`, :meth:`rollback`, :meth:`finish` and :meth:`status`;
    :meth:`start_judged` is an automated canary (start, analyze, then promote or drop the canary).

    Each step is a class of its own over the shared :class:`RolloutSession` (the declaration, its
    labels, applying it to the targets); a ``Rollout`` is all of them.

    With ``[kubernetes]`` declared in tfsk.toml, every step ends by writing the ConfigMap the pods
    read (:attr:`config_map`, as ``tfsk stack render k8s`` writes it) and saying the ``kubectl
    apply`` that makes it stick (:attr:`kubectl`): the pods read models.config from it on restart.
    """

    def start(self, part: str, source: Source, *, atol: float = 1e-5,
              allow_contract_change: bool = False) -> RolloutState:
        state = super().start(part, source, atol=atol, allow_contract_change=allow_contract_change)
        self._sync_kubernetes()
        return state

    def promote(self) -> int:
        """Move ``stable`` to the canary, as told: ``tfsk rollout promote`` calls :meth:`gate` first."""
        version = super().promote()
        self._sync_kubernetes()
        return version

    def start_judged(self, part: str, source: Source, *, atol: float = 1e-5, allow_contract_change: bool = False,
                     capture: str | os.PathLike[str] | None = None) -> dict[str, Any]:
        """An automated canary: :meth:`start`, :meth:`analyze`, then :meth:`promote` on pass, or on fail
        drop the canary (:meth:`finish`: canary back on stable, the candidate unloaded).
        Returns ``{"candidate", "stable", "outcome": "promoted" | "rolled back", "report"}``."""
        state = self.start(part, source, atol=atol, allow_contract_change=allow_contract_change)
        report = self.analyze(capture=capture)
        if report["verdict"] == "pass":
            self.promote()
            outcome = "promoted"
        else:
            self.say(f"the canary failed the gate ({', '.join(report['failed'])}): dropping it, stable stays on "
                     f"version {state.stable}")
            self.finish()
            outcome = "rolled back"
        return {"candidate": state.candidate, "stable": self.labels.get(STABLE), "outcome": outcome, "report": report}

    def rollback(self) -> int:
        version = super().rollback()
        self._sync_kubernetes()
        return version

    def finish(self) -> list[str]:
        pruned = super().finish()
        self._sync_kubernetes()
        return pruned
