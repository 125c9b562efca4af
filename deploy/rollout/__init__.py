"""Rollouts: a new part version into a composed model on running servers, behind labels.

- :mod:`._session` is what every step shares (the declaration, its labels, applying it);
  :mod:`._start` exports, assembles, loads, checks and labels ``canary``; :mod:`._labels` moves
  ``stable`` (promote, rollback) and finishes; :mod:`._status` reports; :mod:`._rollout` is the
  :class:`Rollout` they make together.
- :mod:`._gate_steps` judges ``canary`` against ``stable`` (``tfsk rollout analyze``, the gate on
  ``promote``): :mod:`._gate_requests` finds the requests, :mod:`._gate_replay` sends them to both
  labels, :mod:`._gate_report` and :mod:`._measures` turn the answers into figures and a verdict.
- :mod:`._rollout_state` keeps the notes that let an interrupted step resume.
- :mod:`._apply` writes the configs of ``tfsk.toml``, pushes them and waits for every target;
  :mod:`._prune` deletes versions nothing refers to any more.
"""

from ._apply import ApplyError, Targets, apply_declaration, wait_for_versions
from ._gate_steps import GateFailedError
from ._prune import prune_unreferenced
from ._rollout import Rollout
from ._rollout_state import RolloutState, gate_report_file, load_state
from ._session import CANARY, STABLE, RolloutError, Source

__all__ = [
    "CANARY",
    "STABLE",
    "ApplyError",
    "GateFailedError",
    "Rollout",
    "RolloutError",
    "RolloutState",
    "Source",
    "Targets",
    "apply_declaration",
    "gate_report_file",
    "load_state",
    "prune_unreferenced",
    "wait_for_versions",
]
