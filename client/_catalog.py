"""The models (and labels) a server is configured with, read from a file, for hints only.

TF Serving has no call that lists its models or labels: they are the ``config`` entries of the
models.config it reads. When that file (or the project's ``tfsk.toml`` declaration it is written
from) is at hand, an "unknown model" or "unknown label" error can name what exists.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf import text_format

from tfsk._base.declared import DECLARATION_FILE, declared_labels, declared_models
from tfsk._base.messages import MESSAGES

__all__ = ["DECLARATION", "KnownModels", "read_known_models"]

DECLARATION = DECLARATION_FILE  # looked for in the working folder when no file is given


@dataclass(frozen=True)
class KnownModels:
    source: str  # the file the names come from, as the hint shows it
    names: list[str]
    labels: dict[str, dict[str, int]] = field(default_factory=dict)


def read_known_models(path: str | os.PathLike[str] | None) -> KnownModels | None:
    """The models in a models.config (text ``ModelServerConfig``) or a ``tfsk.toml``; ``None`` if unreadable.

    With no ``path``, ``./tfsk.toml`` if there is one.
    """
    file = Path(DECLARATION if path is None else path)
    try:
        text = file.read_text(encoding="utf-8")
        if file.suffix == ".toml":
            declared = declared_models(tomllib.loads(text)) or {}
            labels = {name: dict(declared_labels(spec)) for name, spec in declared.items() if isinstance(spec, dict)}
            return KnownModels(str(file), list(declared), labels)
        config = text_format.Parse(text, MESSAGES["ModelServerConfig"]())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, text_format.ParseError, AttributeError):
        return None  # a hint is not worth an error of its own
    entries = config.model_config_list.config
    return KnownModels(str(file), [c.name for c in entries], {c.name: dict(c.version_labels) for c in entries})
