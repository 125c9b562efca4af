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

from ._labels import LabelSteps
from ._session import CANARY, STABLE, RolloutError, Source
from ._start import StartStep
from ._status import StatusReport

__all__ = ["CANARY", "STABLE", "Rollout", "RolloutError", "Source"]


class Rollout(StartStep, LabelSteps, StatusReport):
    """The rollout commands for one composed model of one declaration, on ``targets``:
    :meth:`start`, :meth:`promote`, :meth:`rollback`, :meth:`finish` and :meth:`status`.

    Each step is a class of its own over the shared :class:`RolloutSession` (the declaration, its
    labels, applying it to the targets); a ``Rollout`` is all of them.
    """
