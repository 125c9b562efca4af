"""The lineage manifest: what a version holds and how it was made, beside it in ``assets.extra/``."""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from tfsk import __version__ as tfsk_version
from tfsk._base import layout

__all__ = ["LINEAGE_FORMAT", "build_lineage", "read_lineage", "write_lineage"]

LINEAGE_FORMAT = 1


def build_lineage(kind: str, model_name: str, **facts: Any) -> dict[str, Any]:
    """The common header of every manifest plus the facts of this export."""
    return {
        "format": LINEAGE_FORMAT,
        "kind": kind,
        "model": model_name,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "exported_by": {
            "tfsk": tfsk_version,
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "host": os.uname().nodename,
        },
        **facts,
    }


def write_lineage(version_dir: Path, lineage: Mapping[str, Any]) -> Path:
    path = Path(version_dir) / layout.ASSETS_EXTRA / layout.LINEAGE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(lineage, indent=2, sort_keys=True) + "\n")
    return path


def read_lineage(version_dir: Path) -> dict[str, Any] | None:
    """The version's manifest, or ``None`` for a version not written by tfsk."""
    path = Path(version_dir) / layout.ASSETS_EXTRA / layout.LINEAGE_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
