"""ServerCore: the current config, version labels, model resolution and the pollers.

Config changes follow ``server_core.cc``'s ``ReloadConfig``: the checks run in TF Serving's order
with its messages; the stored config is replaced before labels are validated; labels may only
name AVAILABLE versions (with ``--allow_version_labels_for_unavailable_models``, new labels or
labels that keep their version may name others); a reload waits until every new model has a
version AVAILABLE or failed; models missing from the new config are unloaded.
"""

from __future__ import annotations

import logging
import threading
import urllib.parse
from collections.abc import Callable

from tensorflow_serving.apis import model_pb2

from tfsk._base.messages import ModelConfig, ModelServerConfig

from ._manager import ServableHandle, VersionManager
from ._source import aspired_versions
from ._status import StatusError

__all__ = ["ServerCore"]

logger = logging.getLogger(__name__)
TENSORFLOW_PLATFORM = "tensorflow"
_MODEL_TYPE_TENSORFLOW = 1


def _platform(config: ModelConfig) -> str:
    if config.model_type and config.model_platform:
        raise StatusError.invalid_argument(
            "Illegal setting both ModelServerConfig::model_type (deprecated) and "
            f"ModelServerConfig::model_platform, model name is {config.name}")
    if config.model_type:
        if config.model_type != _MODEL_TYPE_TENSORFLOW:
            raise StatusError.invalid_argument(f"ModelServerConfig::model_type choice {config.model_type} not supported.")
        return TENSORFLOW_PLATFORM
    if not config.model_platform:
        raise StatusError.invalid_argument(
            "Illegal setting neither ModelServerConfig::model_type (deprecated) nor "
            f"ModelServerConfig::model_platform, model name is {config.name}")
    return config.model_platform


def _is_absolute_or_uri(path: str) -> bool:
    parsed = urllib.parse.urlparse(path)
    return path.startswith("/") or bool(parsed.scheme and parsed.netloc)


def describe_failures(failures: list[tuple[str, int, StatusError]], noun: str) -> str:
    groups = "".join(f"{{{{name: {m} version: {v}}} due to error: {e}}}, " for m, v, e in failures)
    return f"{len(failures)} {noun} did not become available: {{{groups}}}"


class ServerCore:
    def __init__(self, manager: VersionManager, *, allow_labels_for_unavailable: bool,
                 file_system_poll_seconds: int) -> None:
        self.manager = manager
        self._allow_unavailable_labels = allow_labels_for_unavailable
        self._poll_seconds = file_system_poll_seconds
        self._config = ModelServerConfig()
        self._models: dict[str, ModelConfig] = {}
        self._labels: dict[str, dict[str, int]] = {}
        self._reload_lock = threading.Lock()  # reloads are serialized, as in TF Serving
        self._state_lock = threading.Lock()
        # Held while aspired versions are set, so a poll that read the old config cannot re-aspire
        # a model the reload just removed.
        self._aspire_lock = threading.RLock()
        self._stop = threading.Event()
        self._pollers: list[threading.Thread] = []

    # -- config -----------------------------------------------------------------------------
    @property
    def config(self) -> ModelServerConfig:
        with self._state_lock:
            return self._config

    def reload_config(self, config: ModelServerConfig, *, initial: bool = False) -> None:
        with self._reload_lock:
            self._reload(config, initial)

    def _reload(self, config: ModelServerConfig, initial: bool) -> None:
        kind = config.WhichOneof("config")
        current_kind = self._config.WhichOneof("config")
        if not (current_kind is None or config == self._config or (kind == current_kind == "model_config_list")):
            raise StatusError.failed_precondition(
                "Cannot transition to requested config. It is only legal to transition from one ModelConfigList to another.")
        if kind is None:
            logger.info("Taking no action for empty config.")
            return
        if kind != "model_config_list":
            raise StatusError.unimplemented("ModelServer does not yet support custom model config.")
        models: dict[str, ModelConfig] = {}
        platforms = {}
        for model in config.model_config_list.config:
            if model.name in models:
                raise StatusError.invalid_argument(f"Illegal to list model {model.name} multiple times in config list")
            models[model.name] = model
        for model in models.values():
            if not _is_absolute_or_uri(model.base_path):
                raise StatusError.invalid_argument(
                    f"Expected model {model.name} to have an absolute path or URI; got base_path()={model.base_path}")
        for model in models.values():
            platforms[model.name] = _platform(model)
            old = self._models.get(model.name)
            if old is not None and _platform(old) != platforms[model.name]:
                raise StatusError.invalid_argument(
                    f"Illegal to change a model's platform. For model {model.name} platform was {_platform(old)} "
                    f"and new platform requested is {platforms[model.name]}")
        new_models = [name for name in models if name not in self._models]
        with self._aspire_lock:
            with self._state_lock:
                removed = [name for name in self._models if name not in models]
                self._config = config
                self._models = models
            self._update_labels(models)
            for name, platform in platforms.items():
                if platform != TENSORFLOW_PLATFORM:
                    raise StatusError.invalid_argument(f"Model {name} requests unsupported platform {platform}")
            for name in removed:
                logger.info("unloading model %s: it is not in the new config", name)
                self.manager.set_aspired(name, {})
        self.poll_once()
        failures = self.manager.wait_until_settled(new_models, should_stop=self._stop.is_set)
        if failures:
            raise StatusError.unknown(describe_failures(failures, "servable(s)" if initial else "model(s)"))

    def _update_labels(self, models: dict[str, ModelConfig]) -> None:
        labels: dict[str, dict[str, int]] = {}
        for model in models.values():
            if not model.version_labels:
                continue
            available = self.manager.available_versions(model.name)
            old = self._labels.get(model.name, {})
            for label, version in model.version_labels.items():
                allowed = version in available or (
                    self._allow_unavailable_labels and (label not in old or old[label] == version))
                if not allowed:
                    raise StatusError.failed_precondition(
                        f"Request to assign label to version {version} of model {model.name}, which is not "
                        "currently available for inference")
            labels[model.name] = dict(model.version_labels)
        with self._state_lock:
            self._labels = labels

    # -- version discovery ------------------------------------------------------------------
    def poll_once(self) -> None:
        """One file-system poll of every configured model."""
        with self._aspire_lock:
            with self._state_lock:
                models = list(self._models.values())
            found = {}
            for model in models:
                try:
                    found[model.name] = aspired_versions(model)
                except StatusError as error:
                    # TF Serving: one missing base path aborts the whole poll; nothing is unloaded.
                    logger.error("File system poll failed: %s", error.message)
                    return
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
