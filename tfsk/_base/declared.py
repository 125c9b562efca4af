"""``tfsk.toml``, the project's one declaration: its file name and where it declares models and labels.

``tfsk.serving_config`` reads the whole declaration strictly (every key checked, paths resolved);
the client only wants the model names and labels for its hints, leniently, and may not import
serving_config. Both take the file name and the place of the models and labels from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["DECLARATION_FILE", "LABELS_KEY", "MODELS_TABLE", "declared_labels", "declared_models"]

#: The declaration's file name (looked for in the working folder when none is given).
DECLARATION_FILE = "tfsk.toml"
#: ``[models.<name>]``: one table per model.
MODELS_TABLE = "models"
#: ``labels = { stable = 3 }`` in a model's table.
LABELS_KEY = "labels"


def declared_models(data: Mapping[str, Any]) -> Any:
    """The ``[models]`` table of parsed TOML, as written (``None`` when absent)."""
    return data.get(MODELS_TABLE)


def declared_labels(model: Mapping[str, Any]) -> Any:
    """One model table's labels, as written (an empty table when absent)."""
    return model.get(LABELS_KEY, {})
