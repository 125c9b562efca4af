"""The manager: loads and unloads versions so that what is served follows what is aspired.

TF Serving's ``AspiredVersionsManager`` with its ``AvailabilityPreservingPolicy``: a new version is
loaded before the old one is unloaded; a version that fails to load ends in END with its error and
is not retried while its folder stays; the old version keeps serving. The state monitor never
forgets a version (GetModelStatus keeps reporting unloaded ones as END). Loads run on the manager
thread; serving reads an immutable snapshot, so loads and unloads never block requests.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from tfsk._base.messages import VersionState

from ._servable import Servable
from ._status import StatusError

__all__ = ["ServableHandle", "State", "VersionStatus", "VersionManager"]

logger = logging.getLogger(__name__)


#: ``ModelVersionStatus.State`` (the base layer's, so the wire and the manager agree).
State = VersionState


@dataclass(frozen=True)
class VersionStatus:
    state: State
    error: StatusError | None = None


class ServableHandle:
    """A servable held for the length of one request, so an unload waits for it to finish."""

    def __init__(self, servable: Servable, release: Callable[[Servable], None]) -> None:
        self.servable = servable
        self._release = release

    def __enter__(self) -> Servable:
        return self.servable

    def __exit__(self, *_: object) -> None:
        self._release(self.servable)


@dataclass
class _Harness:
    version: int
    path: Path
    state: State = State.START
    error: StatusError | None = None
    servable: Servable | None = None


Loader = Callable[[str, int, Path], Servable]


class VersionManager:
    def __init__(self, loader: Loader, *, max_load_retries: int, retry_interval_seconds: float) -> None:
        self._loader = loader
        self._max_retries = max(max_load_retries, 0)
        self._retry_interval = retry_interval_seconds
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._aspired: dict[str, dict[int, Path]] = {}
        self._harnesses: dict[str, dict[int, _Harness]] = {}
        self._monitor: dict[str, dict[int, VersionStatus]] = {}
        self._serving: dict[str, dict[int, Servable]] = {}
        self._in_flight: dict[int, int] = {}
        self._draining: set[int] = set()  # servables out of the serving map, unloading once their requests end
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="tfsk-manager", daemon=True)
        self._thread.start()

    # -- what should be loaded --------------------------------------------------------------
    def set_aspired(self, model: str, versions: dict[int, Path]) -> None:
        with self._lock:
            if self._aspired.get(model) == versions and model in self._harnesses:
                return
            self._aspired[model] = dict(versions)
            harnesses = self._harnesses.setdefault(model, {})
            for version, path in versions.items():
                if version not in harnesses:
                    harnesses[version] = _Harness(version, path)
                    self._publish(model, version, VersionStatus(State.START))
            self._changed.notify_all()

    def models(self) -> list[str]:
        with self._lock:
            return sorted(self._harnesses)

    # -- what is served ---------------------------------------------------------------------
    def acquire(self, model: str, version: int | None) -> ServableHandle | None:
        """The AVAILABLE servable (``None`` version: the highest AVAILABLE), held until released."""
        with self._lock:
            versions = self._serving.get(model, {})
            if not versions:
                return None
            servable = versions.get(max(versions) if version is None else version)
            if servable is None:
                return None
            self._in_flight[id(servable)] = self._in_flight.get(id(servable), 0) + 1
            return ServableHandle(servable, self._release)

    def _release(self, servable: Servable) -> None:
        with self._lock:
            left = self._in_flight[id(servable)] - 1
            self._in_flight[id(servable)] = left
            if not left and id(servable) in self._draining:  # the unload waits for the last request
                self._changed.notify_all()  # (waking the manager on every request cost each one ~20 µs of CPU)

    def available_versions(self, model: str) -> set[int]:
        with self._lock:
            return set(self._serving.get(model, {}))

    def status(self, model: str) -> dict[int, VersionStatus]:
        with self._lock:
            return dict(self._monitor.get(model, {}))

    def aspired(self, model: str) -> dict[int, Path]:
        with self._lock:
            return dict(self._aspired.get(model, {}))

    def settle_state(self, models: Iterable[str]) -> tuple[set[str], list[tuple[str, int, StatusError]]]:
        """``(models with no version AVAILABLE and none failed, the failed versions of the others)``."""
        pending, failures = set(), []
        with self._lock:
            for model in models:
                if self._serving.get(model):
                    continue
                failed = [(model, v, s.error) for v, s in sorted(self._monitor.get(model, {}).items())
                          if s.state == State.END and s.error is not None and v in self._aspired.get(model, {})]
                if failed:
                    failures.extend(failed)
                else:
                    pending.add(model)
        return pending, failures

    def wait_until_settled(self, models: Iterable[str], should_stop: Callable[[], bool] = lambda: False
                           ) -> tuple[set[str], list[tuple[str, int, StatusError]]]:
        """Block until each model has a version AVAILABLE or one failed, or ``should_stop()``.

        Like TF Serving there is no time limit of its own: a model with no version on disk waits
        for one. Returns the models still pending (when stopped early) and the failures.
        """
        models = list(models)
        while True:
            pending, failures = self.settle_state(models)
            if not pending or should_stop():
                return pending, failures
            with self._lock:
                self._changed.wait(timeout=0.2)

    # -- the manager thread -----------------------------------------------------------------
    def _publish(self, model: str, version: int, status: VersionStatus) -> None:
        self._monitor.setdefault(model, {})[version] = status
        self._changed.notify_all()

    def _refresh_serving(self) -> None:
        self._serving = {
            model: {v: h.servable for v, h in harnesses.items() if h.state == State.AVAILABLE and h.servable}
            for model, harnesses in self._harnesses.items()
        }

    def _next_action(self) -> tuple[str, str, _Harness] | None:
        for model, harnesses in self._harnesses.items():
            aspired = self._aspired.get(model, {})
            for version in [v for v, h in harnesses.items() if v not in aspired and h.state in (State.START, State.END)]:
                if harnesses[version].state == State.START:
                    self._publish(model, version, VersionStatus(State.END))
                del harnesses[version]  # forgotten: a folder added back later loads afresh
            unaspired_ready = sorted(v for v, h in harnesses.items() if h.state == State.AVAILABLE and v not in aspired)
            aspired_ready = any(h.state == State.AVAILABLE for v, h in harnesses.items() if v in aspired)
            if unaspired_ready and (not aspired or aspired_ready or len(unaspired_ready) > 1):
                return ("unload", model, harnesses[unaspired_ready[0]])
            new = sorted((v for v, h in harnesses.items() if v in aspired and h.state == State.START), reverse=True)
            if new:
                return ("load", model, harnesses[new[0]])
        return None

    def _run(self) -> None:
        while True:
            with self._lock:
                if self._stopped:
                    return
                action = self._next_action()
                if action is None:
                    self._changed.wait(timeout=0.5)
                    continue
                kind, model, harness = action
                harness.state = State.LOADING if kind == "load" else State.UNLOADING
                self._publish(model, harness.version, VersionStatus(harness.state))
                if kind == "unload":
                    self._refresh_serving()  # out of the serving map before the session goes
            if kind == "load":
                self._load(model, harness)
            else:
                self._unload(model, harness)

    def _still_aspired(self, model: str, version: int) -> bool:
        with self._lock:
            return version in self._aspired.get(model, {})

    def _load(self, model: str, harness: _Harness) -> None:
        attempt = 0
        while True:
            try:
                servable = self._loader(model, harness.version, harness.path)
            except StatusError as error:
                attempt += 1
                logger.error("loading %s version %d failed: %s", model, harness.version, error)
                if attempt > self._max_retries or not self._still_aspired(model, harness.version):
                    with self._lock:
                        harness.state, harness.error = State.END, error
                        self._publish(model, harness.version, VersionStatus(State.END, error))
                    return
                deadline = time.monotonic() + self._retry_interval
                while time.monotonic() < deadline and self._still_aspired(model, harness.version) and not self._stopped:
                    time.sleep(min(0.05, self._retry_interval))
                continue
            with self._lock:
                harness.state, harness.servable = State.AVAILABLE, servable
                self._refresh_serving()
                self._publish(model, harness.version, VersionStatus(State.AVAILABLE))
            logger.info("Successfully loaded servable version {name: %s version: %d}", model, harness.version)
            return

    def _unload(self, model: str, harness: _Harness) -> None:
        servable = harness.servable
        with self._lock:
            self._draining.add(id(servable))
            while servable is not None and self._in_flight.get(id(servable), 0) > 0:
                self._changed.wait(timeout=0.1)  # requests already holding it finish first
            self._in_flight.pop(id(servable), None)
            self._draining.discard(id(servable))
        if servable is not None:
            servable.close()
        with self._lock:
            harness.state, harness.servable = State.END, None
            self._harnesses.get(model, {}).pop(harness.version, None)
            self._publish(model, harness.version, VersionStatus(State.END))
        logger.info("Done unloading servable version {name: %s version: %d}", model, harness.version)

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            self._changed.notify_all()
        self._thread.join(timeout=5)
