"""The on-disk layout contract shared by the exporter, the config validator and the devserver.

``<model_base>/<model_name>/<version>/`` holds one SavedModel. A child of a model folder is a
version exactly when TF Serving's file-system source would take it as one: its name parses as a
64-bit integer the way ``absl::SimpleAtoi`` parses it (surrounding ASCII whitespace, an optional
sign, decimal digits). Everything the toolkit writes beside versions (temporary folders, lock
files) has a name that does not parse, so a polling server never sees it.

This module is pure Python on purpose: the client and the config validator use it without
loading TensorFlow.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import TfskError

__all__ = [
    "ASSETS_EXTRA",
    "LINEAGE_FILE",
    "SAVED_MODEL_FILE",
    "SAVED_MODEL_TEXT_FILE",
    "MODEL_NAME_PATTERN",
    "WARMUP_FILE",
    "InvalidNameError",
    "VersionDir",
    "check_model_name",
    "list_versions",
    "parse_version",
    "parse_version_reference",
]

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)

#: The SavedModel graph a version folder holds, in binary or (rarely) text form.
SAVED_MODEL_FILE = "saved_model.pb"
SAVED_MODEL_TEXT_FILE = SAVED_MODEL_FILE + "txt"
#: Folder inside a version that TF Serving ignores for loading but reads warmup records from.
ASSETS_EXTRA = "assets.extra"
#: Warmup records, as TF Serving expects them (TFRecord of ``PredictionLog``).
WARMUP_FILE = "tf_serving_warmup_requests"
#: Our lineage manifest, beside the warmup records.
LINEAGE_FILE = "tfsk_lineage.json"

MODEL_NAME_PATTERN = r"[A-Za-z0-9_.-]+"
_MODEL_NAME_RE = re.compile(MODEL_NAME_PATTERN)
_ASCII_WHITESPACE = " \t\n\v\f\r"
_SIMPLE_ATOI_RE = re.compile(r"[+-]?[0-9]+")


class InvalidNameError(TfskError, ValueError):
    """A model or part name that cannot be a folder name under a model base path."""


def check_model_name(name: str, what: str = "model name") -> str:
    """Return ``name`` if it is a safe model/part name, else raise :class:`InvalidNameError`.

    A name becomes a folder and a TF Serving model name, so it must be one path component of
    ``[A-Za-z0-9_.-]+`` and not ``.`` or ``..``.
    """
    if not isinstance(name, str) or not _MODEL_NAME_RE.fullmatch(name) or name in (".", ".."):
        raise InvalidNameError(
            f"invalid {what} {name!r}: use letters, digits, '_', '.' and '-' only "
            f"(one folder name, no path separators, not '.' or '..')"
        )
    return name


def parse_version(child_name: str) -> int | None:
    """Parse a folder name the way TF Serving does (``absl::SimpleAtoi`` into int64).

    Returns ``None`` for names TF Serving ignores, e.g. ``v1``, ``1.0``, ``.tmp-3``.
    """
    text = child_name.strip(_ASCII_WHITESPACE)
    if not _SIMPLE_ATOI_RE.fullmatch(text):
        return None
    value = int(text)
    if value > INT64_MAX or value < INT64_MIN:
        return None
    return value


def parse_version_reference(text: str) -> int | None:
    """The version a user names (``part@5``): a name TF Serving parses as a version, at least 1, written
    without surrounding whitespace; ``None`` otherwise."""
    version = parse_version(text)
    return version if version is not None and version >= 1 and text.strip() == text else None


@dataclass(frozen=True, order=True)
class VersionDir:
    """One child of a model folder that TF Serving would take as a version."""

    version: int
    path: Path

    @property
    def complete(self) -> bool:
        """Whether the folder holds a SavedModel graph (it may still fail to load for other reasons)."""
        return (self.path / SAVED_MODEL_FILE).is_file() or (self.path / SAVED_MODEL_TEXT_FILE).is_file()


def list_versions(model_dir: str | os.PathLike[str]) -> list[VersionDir]:
    """Every child of ``model_dir`` whose name TF Serving parses as a version, lowest first.

    Like TF Serving, files count too (there is no is-directory check) and ``005`` and ``5`` are
    both listed; a missing ``model_dir`` gives an empty list.
    """
    root = Path(model_dir)
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return []
    found = []
    for child in names:
        version = parse_version(child)
        if version is not None:
            found.append(VersionDir(version, root / child))
    return sorted(found)
