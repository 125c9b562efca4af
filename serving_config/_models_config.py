"""``models.config``: TF Serving's ``ModelServerConfig`` built, written, parsed and read."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

from google.protobuf import text_format

from tfsk._base import rules
from tfsk._base.messages import ModelConfig, ModelServerConfig

from ._errors import ConfigError
from ._policy import VersionPolicy
from ._textproto import parse_text, read_text, with_header, write_atomic

#: The only platform ``tensorflow_model_server`` knows.
PLATFORM = rules.TENSORFLOW_PLATFORM
#: TF Serving's documented rule for label names (the server itself only refuses '/' and ':').
LABEL_PATTERN = r"[a-zA-Z0-9_]+"
_LABEL = re.compile(LABEL_PATTERN)


def check_label_name(label: str) -> str:
    """Return ``label`` if it follows TF Serving's label rule, else raise :class:`ConfigError`."""
    if not isinstance(label, str) or not _LABEL.fullmatch(label):
        raise ConfigError(f"invalid version label {label!r}: TF Serving's labels are {LABEL_PATTERN} "
                          f"(letters, digits, '_'); e.g. 'stable', 'canary'")
    return label


def label_name_ok(label: str) -> bool:
    return bool(_LABEL.fullmatch(label))


def model_config(name: str, base_path: str, policy: VersionPolicy | None = None,
                 labels: Mapping[str, int] | None = None) -> ModelConfig:
    """One ``ModelConfig`` with ``model_platform: "tensorflow"`` and an explicit version policy."""
    config = ModelConfig(name=name, base_path=base_path, model_platform=PLATFORM)
    config.model_version_policy.CopyFrom((policy or VersionPolicy.latest()).to_proto())
    for label, version in (labels or {}).items():
        config.version_labels[label] = version
    return config


def model_server_config(models: Iterable[ModelConfig]) -> ModelServerConfig:
    """A ``ModelServerConfig`` whose ``model_config_list`` holds ``models`` in order."""
    config = ModelServerConfig()
    config.model_config_list.SetInParent()  # an empty list is still a list, not an empty config
    config.model_config_list.config.extend(models)
    return config


def model_entries(config: ModelServerConfig) -> list[ModelConfig]:
    """The list's ``ModelConfig`` entries (none for an empty or custom config)."""
    if config.WhichOneof("config") != "model_config_list":
        return []
    return list(config.model_config_list.config)


def find_model(config: ModelServerConfig, name: str) -> ModelConfig | None:
    """The first entry named ``name`` (the mutable message inside ``config``)."""
    return next((m for m in model_entries(config) if m.name == name), None)


def labels_of(model: ModelConfig) -> dict[str, int]:
    return dict(sorted(model.version_labels.items()))


def format_model_server_config(config: ModelServerConfig, header: str | None = None) -> str:
    """Text format, one field per line, with optional ``#`` header comment lines."""
    return with_header(header, text_format.MessageToString(config))


def parse_model_server_config(text: str, source: str = "<string>") -> ModelServerConfig:
    """Parse a models.config text; :class:`ConfigParseError` (with line and column) when TF Serving would refuse it."""
    return parse_text(text, ModelServerConfig, source, what="models.config")


def read_model_server_config(path: str | os.PathLike[str]) -> ModelServerConfig:
    """Read and parse a models.config file."""
    return parse_model_server_config(read_text(path, "models.config"), os.fspath(path))


def write_model_server_config(config: ModelServerConfig, path: str | os.PathLike[str],
                              header: str | None = None) -> bool:
    """Write atomically (a polling server never sees half a file); return whether it changed."""
    if config.WhichOneof("config") == "custom_model_config":
        raise ConfigError("refusing to write a custom_model_config: tensorflow_model_server does not support it; "
                          "use model_config_list")
    return write_atomic(path, format_model_server_config(config, header))
