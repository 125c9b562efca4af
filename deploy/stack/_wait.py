"""Waiting until a server answers and every declared model has a version AVAILABLE (gRPC GetModelStatus).

Used by both engines: TF Serving and the devserver open their ports only after the start-up
models loaded, so "connection refused" is the normal first answer, then per-model states.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from tfsk.client import Client, ServingError, VersionStatus

from .._errors import StackError

__all__ = ["ModelState", "models_state", "wait_for_models"]

#: Called with a short progress line whenever what we wait for changes.
Progress = Callable[[str], None]


@dataclass(frozen=True)
class ModelState:
    """One model as the server reports it: its versions, or the error that answered."""

    name: str
    versions: tuple[VersionStatus, ...] = ()
    error: str | None = None

    @property
    def available(self) -> list[int]:
        return [v.version for v in self.versions if v.state == "AVAILABLE"]

    def describe(self) -> str:
        if self.error is not None:
            return self.error
        return ", ".join(f"{v.version} {v.state}" + (f" ({v.error_message})" if v.error_message else "")
                         for v in self.versions) or "no versions"


def models_state(client: Client, models: Sequence[str], timeout: float = 5.0) -> list[ModelState]:
    states = []
    for name in models:
        try:
            states.append(ModelState(name, tuple(client.status(name, timeout=timeout))))
        except ServingError as error:
            states.append(ModelState(name, error=f"{error.code.name}: {error.details}"))
    return states


def wait_for_models(target: str, models: Sequence[str], *, timeout: float, on_progress: Progress,
                    failure: Callable[[], StackError | None] = lambda: None, interval: float = 0.5,
                    versions: Mapping[str, frozenset[int]] | None = None) -> list[ModelState]:
    """Poll until every model in ``models`` has a version AVAILABLE, and every version of ``versions``
    (what the config aspires to, e.g. a label's older version) is AVAILABLE or has ended; return their states.
    Without the second wait, "up" came while a labelled older version still loaded: ``stable`` failed.

    ``failure()`` is asked on every round (the server exited, the container is unhealthy): an
    error it returns is raised at once. After ``timeout`` seconds a :class:`StackError` says
    which models were still missing.
    """
    start = time.monotonic()
    last_line = ""
    states: list[ModelState] = []
    with Client(target, timeout=5, retries=0) as client:
        while True:
            problem = failure()
            if problem is not None:
                raise problem
            states = models_state(client, models)
            waiting = [s for s in states if not s.available or not _settled(s, (versions or {}).get(s.name, ()))]
            if not waiting:
                return states
            unreachable = all(s.error is not None and s.error.startswith("UNAVAILABLE") for s in states)
            line = (f"waiting for the server at {target} to open its port (it loads the models first)" if unreachable
                    else "waiting for " + "; ".join(f"{s.name}: {s.describe()}" for s in waiting))
            if line != last_line:
                on_progress(f"[{time.monotonic() - start:5.1f}s] {line}")
                last_line = line
            if time.monotonic() - start > timeout:
                raise StackError(f"not every model is AVAILABLE after {timeout:.0f}s at {target}: {line}")
            time.sleep(interval)


def _settled(state: ModelState, aspired: Iterable[int]) -> bool:
    """Every aspired version is AVAILABLE or ended (a failed load is reported by its state, not waited for)."""
    done = {v.version for v in state.versions if v.state in ("AVAILABLE", "END")}
    return set(aspired) <= done
