"""Why a version folder fails to load, as TF Serving's C++ loader reports it.

Before loading, the manager estimates resources by walking the folder
(``servables/tensorflow/util.cc`` ``GetModelDiskSize``; errors are wrapped by
``BasicManager::ReserveResources``). Then ``LoadSessionBundleOrSavedModelBundle`` wants a
``saved_model.pb`` (or ``.pbtxt``), and TensorFlow's ``ReadBinaryProto`` parses it through a
file stream: a parser that runs out of bytes (a truncated or half-copied file) reports the
stream's ``OUT_OF_RANGE: Read less bytes than requested`` (observed on the 2.21.0 image),
anything else unparsable is ``DATA_LOSS``.
"""

from __future__ import annotations

import os

from ..layout import SAVED_MODEL_FILE, SAVED_MODEL_TEXT_FILE
from ._verdict import Verdict, servable_id

__all__ = [
    "missing_saved_model",
    "not_a_directory",
    "saved_model_bytes_problem",
    "tags_not_found",
    "version_path",
]


def version_path(base_path: str, child: str) -> str:
    """``io::JoinPath(base_path, child)``."""
    return f"{base_path.rstrip('/')}/{child}" if base_path else child


def reserve_failed(name: str, version: int, code: str, message: str, rule: str = "version-unreadable") -> Verdict:
    return Verdict(rule, code, f"Error while attempting to reserve resources to load servable "
                                               f"{servable_id(name, version)}: {message}", name)


def not_a_directory(name: str, version: int, path: str) -> Verdict:
    """A version "folder" that is a file: ``GetChildren`` fails during resource estimation."""
    return reserve_failed(name, version, "FAILED_PRECONDITION", f"{path}; Not a directory", "version-not-folder")


def missing_saved_model(name: str, path: str) -> Verdict:
    """A version folder without ``saved_model.pb`` / ``saved_model.pbtxt``."""
    return Verdict("version-incomplete", "NOT_FOUND",
                   "Specified file path does not appear to contain a SavedModel bundle (should have a file called "
                   f"`{SAVED_MODEL_FILE}`)\nSpecified file path: {path}", name)


def tags_not_found(name: str, tags: list[str]) -> Verdict:
    return Verdict("version-tags", "NOT_FOUND",
                   f"Could not find meta graph def matching supplied tags: {{ {' '.join(tags)} }}. To inspect "
                   "available tag-sets in the SavedModel, please use the SavedModel CLI: `saved_model_cli`", name)


def _varint(data: bytes, at: int) -> tuple[int, int] | None:
    value = shift = 0
    while at < len(data):
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at += 1
        if not byte & 0x80:
            return value, at
        shift += 7
        if shift >= 70:
            return -1, at  # a varint longer than 10 bytes: malformed
    return None  # ran out of bytes


def _walk(data: bytes) -> tuple[str, int]:
    """Walk top-level fields: ``("ok", end)``, ``("eof", start of the cut field)`` or ``("bad", at)``."""
    at = 0
    while at < len(data):
        start = at
        tag = _varint(data, at)
        if tag is None:
            return "eof", start
        key, at = tag
        wire, number = key & 7, key >> 3
        if key < 0 or number == 0 or wire in (3, 4, 6, 7):
            return "bad", start  # groups do not occur in a SavedModel; 6 and 7 do not exist
        if wire == 0:
            value = _varint(data, at)
            if value is None:
                return "eof", start
            at = value[1]
        elif wire in (1, 5):
            at += 8 if wire == 1 else 4
        else:
            length = _varint(data, at)
            if length is None:
                return "eof", start
            if length[0] < 0:
                return "bad", start
            at = length[1] + length[0]
        if at > len(data):
            return "eof", start
    return "ok", len(data)


def saved_model_bytes_problem(name: str, path: str, data: bytes) -> Verdict | None:
    """What ``ReadBinaryProto`` says of ``data`` at the wire level (``None``: the fields are whole).

    A message cut short is OUT_OF_RANGE (the parser asked the file for more); a broken field
    before the end is DATA_LOSS. Fields nested deeper are checked by the real parser (the
    devserver's loader); it reports DATA_LOSS for them.
    """
    outcome, _ = _walk(data)
    if outcome == "eof":
        return Verdict("version-corrupt", "OUT_OF_RANGE", "Read less bytes than requested", name)
    if outcome == "bad":
        return Verdict("version-corrupt", "DATA_LOSS", f"Can't parse {path} as binary proto", name)
    return None


def unparsable(name: str, path: str) -> Verdict:
    return Verdict("version-corrupt", "DATA_LOSS", f"Can't parse {path} as binary proto", name)


def folder_problem(name: str, version: int, path: str, local: str | os.PathLike[str]) -> Verdict | None:
    """What the manager and loader say of a version folder before TensorFlow parses the graph.

    ``path`` is the version path TF Serving names; ``local`` where this machine reads it.
    """
    local = os.fspath(local)
    if not os.path.exists(local):
        return reserve_failed(name, version, "NOT_FOUND", f"{path} not found")
    if not os.path.isdir(local):
        return not_a_directory(name, version, path)
    for folder, _dirs, _files in os.walk(local, onerror=None):
        if not os.access(folder, os.R_OK | os.X_OK):
            return reserve_failed(name, version, "PERMISSION_DENIED", f"{folder}; Permission denied")
    if os.path.exists(os.path.join(local, "export.meta")):
        return Verdict("version-session-bundle", "UNIMPLEMENTED", "Session Bundle is deprecated and removed.", name)
    pb = os.path.join(local, SAVED_MODEL_FILE)
    if not os.path.exists(pb) and not os.path.exists(os.path.join(local, SAVED_MODEL_TEXT_FILE)):
        return missing_saved_model(name, path)
    if os.path.isfile(pb):
        with open(pb, "rb") as stream:
            return saved_model_bytes_problem(name, version_path(path, SAVED_MODEL_FILE), stream.read())
    return None
