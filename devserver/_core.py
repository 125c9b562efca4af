"""ServerCore: the config in effect, version labels, model resolution and the pollers.

A config change follows ``server_core.cc``'s ``ReloadConfig`` with the rules of
:mod:`tfsk._base.rules`: every check runs before anything served changes, so a refused config
(by RPC or file poll) leaves models, versions, labels and the file-system source as they were.
As in TF Serving the *stored* config (used by the next transition and platform checks) is
replaced before labels and platforms are checked.

A reload then waits until every new model has a version AVAILABLE or failed (TF Serving: with no
time limit). Here the wait ends when the caller leaves (deadline or cancel) and the server keeps
waiting without a thread; a later reload queues behind a model that is still loading, and is
refused at once, naming the model and why, when that model cannot load (no version folder,
missing base path). Serving never waits for a reload.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc
from tensorflow_serving.apis import model_pb2

from tfsk._base import rules
from tfsk._base.messages import ModelConfig, ModelServerConfig

from ._manager import ServableHandle, VersionManager
from ._source import poll_model, status_of
from ._status import StatusError

__all__ = ["ServerCore"]

logger = logging.getLogger(__name__)
#: A caller's deadline is answered this much early, so it reads our message rather than its own timeout.
_DEADLINE_MARGIN = 0.3


def _never() -> bool:
    return False


@dataclass(frozen=True)
class _Waiter:
    """A reload that waits for a new model (its caller may be gone)."""

    origin: str
    since: float


class ServerCore:
    def __init__(self, manager: VersionManager, *, allow_labels_for_unavailable: bool,
                 file_system_poll_seconds: int) -> None:
        self.manager = manager
        self._allow_unavailable_labels = allow_labels_for_unavailable
        self._poll_seconds = file_system_poll_seconds
        self._stored = ModelServerConfig()  # TF Serving's config_: replaced before labels/platforms are checked
        self._config = ModelServerConfig()  # the config in effect
        self._models: dict[str, ModelConfig] = {}
        self._labels: dict[str, dict[str, int]] = {}
        self._reloads = threading.Condition()  # reloads are serialized, as in TF Serving
        self._waiting: dict[str, _Waiter] = {}  # new models a reload still waits for
        self._state_lock = threading.Lock()
        self._unaspired: dict[str, rules.Verdict] = {}  # per model: why the last poll aspired nothing
        # Held while aspired versions are set, so a poll that read the old config cannot re-aspire
        # a model the reload just removed.
        self._aspire_lock = threading.RLock()
        self._stop = threading.Event()
        self._pollers: list[threading.Thread] = []

    # -- config -----------------------------------------------------------------------------
    @property
    def config(self) -> ModelServerConfig:
        """The config in effect (the last one accepted)."""
        with self._state_lock:
            return self._config

    def reload_config(self, config: ModelServerConfig, *, initial: bool = False, origin: str | None = None,
                      cancelled: Callable[[], bool] = _never, deadline: float | None = None) -> None:
        """Apply ``config`` and wait for its new models; raise StatusError as TF Serving answers.

        ``origin`` names the reload in later reloads' messages (default: start-up, or the config
        file poll). ``cancelled`` / ``deadline`` (``time.monotonic()``): the caller's RPC; when it
        goes, the wait ends with DEADLINE_EXCEEDED (or CANCELLED) and the server keeps waiting on
        its own.
        """
        origin = origin or ("start-up" if initial else "config file poll")

        def leave() -> bool:
            return self._stop.is_set() or cancelled() or (
                deadline is not None and time.monotonic() > deadline - _DEADLINE_MARGIN)

        with self._reloads:
            self._wait_for_earlier_reloads(leave)
            new_models = self._apply(config)
            for name in new_models:
                self._waiting[name] = _Waiter(origin, time.monotonic())
        pending, failures = self.manager.wait_until_settled(new_models, should_stop=leave)
        self._settled(set(new_models) - pending)
        if pending and not self._stop.is_set():
            reasons = "; ".join(f"{name}: {self._why_waiting(name)}" for name in sorted(pending))
            expired = deadline is not None and time.monotonic() > deadline - _DEADLINE_MARGIN
            code = grpc.StatusCode.DEADLINE_EXCEEDED if expired else grpc.StatusCode.CANCELLED
            raise StatusError(code, f"The config was applied, but model(s) {', '.join(sorted(pending))} did not "
                                    f"become available before the caller left ({reasons}). The server keeps waiting "
                                    f"for them, and refuses later reloads while one cannot load.")
        if failures:
            raise StatusError.unknown(rules.describe_unavailable(
                ((m, v, str(e)) for m, v, e in failures), at_startup=initial))

    def _apply(self, config: ModelServerConfig) -> list[str]:
        """Check ``config`` with TF Serving's rules, then put it in effect; the models new in it."""
        refused = rules.transition_refusal(self._stored, config)
        if refused is not None:
            raise status_of(refused)
        kind = config.WhichOneof("config")
        if kind is None:
            logger.info("Taking no action for empty config.")
            return []
        if kind != "model_config_list":
            raise StatusError.unimplemented("ModelServer does not yet support custom model config.")
        for refusals in (rules.config_list_refusals(config), rules.platform_change_refusals(self._stored, config)):
            if refusals:
                raise status_of(refusals[0])
        self._stored = config
        late = (rules.label_refusals(config, self.manager.available_versions, self._labels,
                                     self._allow_unavailable_labels) or rules.route_refusals(config))
        if late:
            raise status_of(late[0])
        models = {m.name: m for m in config.model_config_list.config}
        labels = {m.name: dict(m.version_labels) for m in models.values() if m.version_labels}
        with self._aspire_lock:
            with self._state_lock:
                removed = [name for name in self._models if name not in models]
                new_models = [name for name in models if name not in self._models]
                self._config, self._models, self._labels = config, models, labels
            for name in removed:
                logger.info("unloading model %s: it is not in the new config", name)
                self.manager.set_aspired(name, {})
        self.poll_once()
        return new_models

    # -- reloads that wait ------------------------------------------------------------------
    def _settled(self, models: set[str]) -> None:
        with self._reloads:
            for name in models:
                self._waiting.pop(name, None)
            self._reloads.notify_all()

    def _still_waiting(self) -> list[str]:
        """The models an earlier reload waits for that have neither loaded nor failed."""
        pending, _ = self.manager.settle_state(self._waiting)
        self._settled(set(self._waiting) - pending)
        return sorted(pending)

    def waiting(self) -> dict[str, str]:
        """The new models a reload still waits for (its caller may be gone), each with why."""
        with self._reloads:
            return {name: self._why_waiting(name) for name in self._still_waiting()}

    def _why_waiting(self, name: str) -> str:
        """Why ``name`` has no version AVAILABLE yet: the poll's verdict, or the state of its versions."""
        with self._state_lock:
            unaspired = self._unaspired.get(name)
        if unaspired is not None:
            return unaspired.message
        states = self.manager.status(name)
        if not states:
            return "no version of it has been found yet"
        return ", ".join(f"version {v} is {s.state.name}" for v, s in sorted(states.items()))

    def _wait_for_earlier_reloads(self, leave: Callable[[], bool]) -> None:
        """TF Serving queues a reload behind one still waiting; here only behind one that can finish."""
        while True:
            pending = self._still_waiting()
            if not pending:
                return
            with self._state_lock:
                stuck = [name for name in pending if name in self._unaspired]
            name = (stuck or pending)[0]
            waiter = self._waiting.get(name, _Waiter("reload", time.monotonic()))
            earlier = (f"An earlier config reload ({waiter.origin}, {time.monotonic() - waiter.since:.0f} s ago) is "
                       f"still waiting for model {name} to become available: {self._why_waiting(name)}")
            if stuck:
                raise StatusError.failed_precondition(
                    f"{earlier}. TF Serving would hold this reload behind it until that model loads; put a version "
                    f"folder under its base path (or restart the server with a corrected config), then reload again.")
            if leave():
                raise StatusError(grpc.StatusCode.DEADLINE_EXCEEDED, f"{earlier}; this reload was not applied.")
            self._reloads.wait(0.2)

    # -- version discovery ------------------------------------------------------------------
    def poll_once(self) -> None:
        """One file-system poll of every configured model (one failing base path stops it for all)."""
        with self._aspire_lock:
            with self._state_lock:
                models = list(self._models.values())
            found, unaspired = {}, {}
            for model in models:
                versions, poll = poll_model(model)
                if poll.error is not None:
                    logger.error("FileSystemStoragePathSource encountered a filesystem access error: %s",
                                 poll.error.message)
                    stopped = rules.Verdict(poll.error.rule, None, f"the file-system poll stops at model "
                                            f"{model.name}: {poll.error.message}")
                    with self._state_lock:
                        self._unaspired = {m.name: poll.error if m.name == model.name else stopped
                                           for m in models if not self.manager.aspired(m.name)}
                    return
                found[model.name] = versions
                if not versions:
                    unaspired[model.name] = poll.notes[-1] if poll.notes else rules.Verdict("no-versions", None, "")
            with self._state_lock:
                self._unaspired = unaspired
            for name, versions in found.items():
                self.manager.set_aspired(name, versions)

    def _every(self, seconds: int, action: Callable[[], None], name: str) -> None:
        def loop() -> None:
            while not self._stop.wait(seconds):
                action()

        thread = threading.Thread(target=loop, name=name, daemon=True)
        thread.start()
        self._pollers.append(thread)

    def start_polling(self, reload_from_file: Callable[[], None] | None, config_poll_seconds: int) -> None:
        """Poll the version folders (and the config file) the way TF Serving's flags ask.

        ``--file_system_poll_wait_seconds``: > 0 polls every N s; 0 polled once already (at
        the config load); < 0 never polls. ``--model_config_file_poll_wait_seconds`` > 0 re-reads
        the config file every N s.
        """
        if self._poll_seconds > 0:
            self._every(self._poll_seconds, self.poll_once, "tfsk-version-poller")
        if reload_from_file is not None and config_poll_seconds > 0:
            self._every(config_poll_seconds, reload_from_file, "tfsk-config-poller")

    # -- requests ---------------------------------------------------------------------------
    def resolve(self, spec: model_pb2.ModelSpec) -> ServableHandle:
        """``ServableRequestFromModelSpec`` + the manager lookup, with TF Serving's errors."""
        if not spec.name:
            raise StatusError.invalid_argument("ModelSpec has no name specified.")
        choice = spec.WhichOneof("version_choice")
        if choice == "version":
            version: int | None = spec.version.value
            request = f"Specific({spec.name}, {version})"
        elif choice == "version_label":
            with self._state_lock:
                version = self._labels.get(spec.name, {}).get(spec.version_label)
            if version is None:
                raise StatusError.invalid_argument(f"Unrecognized servable version label: {spec.version_label}")
            request = f"Specific({spec.name}, {version})"
        else:
            version = None
            request = f"Latest({spec.name})"
        handle = self.manager.acquire(spec.name, version)
        if handle is None:
            raise StatusError.not_found(f"Servable not found for request: {request}")
        return handle

    def stop(self) -> None:
        self._stop.set()
        for thread in self._pollers:
            thread.join(timeout=5)
        self.manager.stop()
