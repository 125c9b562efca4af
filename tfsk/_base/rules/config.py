"""Base paths and the config checks of ``ServerCore::ReloadConfig``, in TF Serving's order.

``model_servers/server_core.cc``: the transition check, ``ValidateModelConfigList`` (names,
base paths), ``ValidateNoModelsChangePlatforms``, then (after the stored config is replaced)
``UpdateModelVersionLabelMap`` and ``CreateStoragePathRoutes``. Base paths follow TensorFlow's
``io::ParseURI``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping

from ..messages import ModelConfig, ModelServerConfig
from ._verdict import Verdict, servable_id

__all__ = [
    "DEVSERVER_SCHEMES",
    "MODEL_TYPE_TENSORFLOW",
    "TENSORFLOW_PLATFORM",
    "TF_SERVING_SCHEMES",
    "config_list_refusals",
    "describe_unavailable",
    "is_relative",
    "label_admitted",
    "label_refusal",
    "label_refusals",
    "local_path",
    "platform_change_refusals",
    "platform_of",
    "reload_refusal",
    "route_refusals",
    "split_uri",
    "transition_refusal",
    "unreadable_scheme",
]

TENSORFLOW_PLATFORM = "tensorflow"
#: ModelType.TENSORFLOW of the deprecated ``model_type`` field.
MODEL_TYPE_TENSORFLOW = 1
#: File-system schemes ``tensorflow_model_server`` reads (local, and Google Cloud Storage over the network;
#: S3 left TensorFlow in 2.6, so ``s3://`` passes the config check and then fails every poll).
TF_SERVING_SCHEMES = frozenset({"", "file", "gs"})
#: The devserver reads local folders only (it never goes to the network).
DEVSERVER_SCHEMES = frozenset({"", "file"})
# tensorflow::io::ParseURI: a scheme is one letter then one or more of [a-zA-Z0-9.] (Scanner::Many), then "://".
_URI = re.compile(r"([a-zA-Z][0-9a-zA-Z.]+)://([^/]*)(.*)", re.DOTALL)


def split_uri(base_path: str) -> tuple[str, str, str]:
    """``(scheme, host, path)`` exactly as ``tensorflow::io::ParseURI`` splits a string."""
    match = _URI.fullmatch(base_path)
    if not match:
        return "", "", base_path
    return match.group(1), match.group(2), match.group(3)


def is_relative(base_path: str) -> bool:
    """``UriIsRelativePath``: no scheme, no host, and not starting with ``/`` (``""`` included)."""
    scheme, host, path = split_uri(base_path)
    return not scheme and not host and not path.startswith("/")


def local_path(base_path: str) -> str | None:
    """The local path of a base path (``file://`` included), ``None`` for another file system."""
    scheme, _host, path = split_uri(base_path)
    return path if scheme in ("", "file") else None


def unreadable_scheme(base_path: str, readable: Collection[str] = TF_SERVING_SCHEMES) -> str | None:
    """The TensorFlow ``Env`` error for a scheme no file system is registered for, else ``None``."""
    scheme = split_uri(base_path)[0]
    if scheme in readable:
        return None
    return f"UNIMPLEMENTED: File system scheme '{scheme or '[local]'}' not implemented (file: '{base_path}')"



def transition_refusal(stored: ModelServerConfig, new: ModelServerConfig) -> Verdict | None:
    """Only a first config, the same config, or list -> list may be applied."""
    stored_kind, new_kind = stored.WhichOneof("config"), new.WhichOneof("config")
    if stored_kind is None or stored == new or stored_kind == new_kind == "model_config_list":
        return None
    return Verdict("config-kind", "FAILED_PRECONDITION", "Cannot transition to requested config. It is only legal "
                                                         "to transition from one ModelConfigList to another.")


def _models(config: ModelServerConfig) -> list[ModelConfig]:
    return list(config.model_config_list.config) if config.WhichOneof("config") == "model_config_list" else []


def config_list_refusals(config: ModelServerConfig) -> list[Verdict]:
    """``ValidateModelConfigList``: names listed twice (in order), then relative base paths."""
    refusals, seen, reported = [], set(), set()
    for model in _models(config):
        if model.name in seen and model.name not in reported:
            reported.add(model.name)
            refusals.append(Verdict("duplicate-name", "INVALID_ARGUMENT",
                                    f"Illegal to list model {model.name} multiple times in config list", model.name))
        seen.add(model.name)
    for model in _models(config):
        if is_relative(model.base_path):
            refusals.append(Verdict("relative-base-path", "INVALID_ARGUMENT",
                                    f"Expected model {model.name} to have an absolute path or URI; got "
                                    f"base_path()={model.base_path}", model.name))
    return refusals


def platform_of(model: ModelConfig) -> tuple[str | None, Verdict | None]:
    """``GetPlatform``: the platform, or why the model's platform fields are refused."""
    def refuse(rule: str, message: str) -> tuple[None, Verdict]:
        return None, Verdict(rule, "INVALID_ARGUMENT", message, model.name)

    if model.model_type:
        if model.model_platform:
            return refuse("platform-and-model-type", "Illegal setting both ModelServerConfig::model_type "
                          f"(deprecated) and ModelServerConfig::model_platform, model name is {model.name}")
        if model.model_type != MODEL_TYPE_TENSORFLOW:
            return refuse("unsupported-platform",
                          f"ModelServerConfig::model_type choice {model.model_type} not supported.")
        return TENSORFLOW_PLATFORM, None
    if not model.model_platform:
        return refuse("missing-platform", "Illegal setting neither ModelServerConfig::model_type (deprecated) nor "
                      f"ModelServerConfig::model_platform, model name is {model.name}")
    return model.model_platform, None


def platform_change_refusals(stored: ModelServerConfig, new: ModelServerConfig) -> list[Verdict]:
    """``ValidateNoModelsChangePlatforms`` (runs only when both configs are lists)."""
    if not (stored.WhichOneof("config") == new.WhichOneof("config") == "model_config_list"):
        return []
    old_platforms = {m.name: platform_of(m)[0] for m in _models(stored)}
    refusals = []
    for model in _models(new):
        if model.name not in old_platforms:
            continue
        platform, refused = platform_of(model)
        if refused is not None:
            refusals.append(refused)
        elif platform != old_platforms[model.name]:
            refusals.append(Verdict("platform-change", "INVALID_ARGUMENT",
                                    f"Illegal to change a model's platform. For model {model.name} platform was "
                                    f"{old_platforms[model.name]} and new platform requested is {platform}",
                                    model.name))
    return refusals


def route_refusals(config: ModelServerConfig) -> list[Verdict]:
    """``CreateStoragePathRoutes``: every platform must be one the server has (only "tensorflow")."""
    refusals = []
    for model in _models(config):
        platform, refused = platform_of(model)
        if refused is None and platform != TENSORFLOW_PLATFORM:
            refused = Verdict("unsupported-platform", "INVALID_ARGUMENT",
                              f"Model {model.name} requests unsupported platform {platform}", model.name)
        if refused is not None:
            refusals.append(refused)
    return refusals


def label_admitted(version: int, available: Collection[int], existing: int | None, allow_unavailable: bool) -> bool:
    """Whether a label may name ``version`` (``existing``: the version the label names now, if any).

    A label may name only an AVAILABLE version; with ``--allow_version_labels_for_unavailable_models``
    a new label, or one that keeps its version, may name any version (moving one stays refused).
    """
    return version in available or (allow_unavailable and existing in (None, version))


def label_refusal(model: str, version: int) -> Verdict:
    return Verdict("label-unavailable", "FAILED_PRECONDITION", f"Request to assign label to version {version} of "
                   f"model {model}, which is not currently available for inference", model)


def label_refusals(config: ModelServerConfig, available: Callable[[str], Collection[int]],
                   current: Mapping[str, Mapping[str, int]], allow_unavailable: bool) -> list[Verdict]:
    """``UpdateModelVersionLabelMap``: every label of every model, against the versions AVAILABLE now."""
    return [label_refusal(model.name, version)
            for model in _models(config) for label, version in model.version_labels.items()
            if not label_admitted(version, available(model.name), current.get(model.name, {}).get(label),
                                  allow_unavailable)]


def reload_refusal(stored: ModelServerConfig, new: ModelServerConfig, *, available: Callable[[str], Collection[int]],
                   labels: Mapping[str, Mapping[str, int]], allow_unavailable: bool) -> Verdict | None:
    """The status TF Serving answers a reload with, before it changes anything it serves; ``None``: accepted."""
    for refusals in (
        [r for r in [transition_refusal(stored, new)] if r],
        config_list_refusals(new),
        platform_change_refusals(stored, new),
        label_refusals(new, available, labels, allow_unavailable),
        route_refusals(new),
    ):
        if refusals:
            return refusals[0]
    return None


def describe_unavailable(failures: Iterable[tuple[str, int, str]], at_startup: bool) -> str:
    """``WaitUntilModelsAvailable``'s UNKNOWN message; ``failures``: (model, version, "CODE: message")."""
    failures = list(failures)
    groups = "".join(f"{{{servable_id(m, v)} due to error: {status}}}, " for m, v, status in failures)
    noun = "servable(s)" if at_startup else "model(s)"
    return f"{len(failures)} {noun} did not become available: {{{groups}}}"


