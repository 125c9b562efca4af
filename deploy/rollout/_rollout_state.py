"""A rollout's notes between commands: ``.tfsk/rollout/<model>.json`` beside ``tfsk.toml``.

Only what the truth cannot tell is kept here: which part and source a ``start`` was given, the part
version it exported, the composed version it assembled, the step it reached and the version
``stable`` named before ``promote``. Versions and labels are read from ``tfsk.toml`` and the
servers. The file is replaced atomically, so an interrupted command leaves the previous notes.
The gate's last verdict is noted too (its whole report is ``<model>.gate.json`` beside), and every
``promote --force`` past a failing gate, so the notes say who overrode what.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["RolloutState", "gate_report_file", "load_state", "save_state", "state_file"]


@dataclass
class RolloutState:
    """Where a rollout of ``model`` is. ``step`` is the last step begun (it finished when ``done``)."""

    model: str
    part: str | None = None
    source: str | None = None  # "file:PATH", "factory:MOD:FN" or "version:N"
    part_version: int | None = None
    stable: int | None = None
    candidate: int | None = None
    previous: int | None = None  # what stable named before promote (rollback's target)
    step: str = "none"
    done: bool = False
    history: list[str] = field(default_factory=list)
    gate: dict[str, Any] | None = None  # the last verdict of `tfsk rollout analyze`: versions, verdict, failed checks
    overrides: list[str] = field(default_factory=list)  # each promote --force past a failing gate, and why it failed

    def begin(self, step: str, folder: Path) -> None:
        self.step, self.done = step, False
        self.history.append(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {step}")
        del self.history[:-50]
        save_state(folder, self)

    def finish(self, folder: Path) -> None:
        self.done = True
        save_state(folder, self)


def state_file(folder: Path, model: str) -> Path:
    return folder / ".tfsk" / "rollout" / f"{model}.json"


def gate_report_file(folder: Path, model: str) -> Path:
    """The last gate report (JSON), beside the notes."""
    return folder / ".tfsk" / "rollout" / f"{model}.gate.json"


def load_state(folder: Path, model: str) -> RolloutState:
    """The notes of ``model``'s rollout, or fresh ones (also when the file is unreadable)."""
    try:
        data = json.loads(state_file(folder, model).read_text(encoding="utf-8"))
        return RolloutState(**data)
    except (OSError, ValueError, TypeError):
        return RolloutState(model)


def save_state(folder: Path, state: RolloutState) -> None:
    target = state_file(folder, state.model)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(asdict(state), indent=2), encoding="utf-8")
    os.replace(temporary, target)
