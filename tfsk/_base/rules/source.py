"""What one poll of a model's base path yields: ``FileSystemStoragePathSource`` and the manager.

``sources/storage_path/file_system_storage_path_source.cc``: children are listed (files count
too) in byte order; names that ``SimpleAtoi`` parses are versions; for ``latest`` and
``specific`` the lexicographically last of two folders of one version wins; ``all`` emits both,
and ``core/aspired_versions_manager.cc`` then manages the first (``005`` before ``5``) and logs
an internal error for the other. ``specific`` first tries ``<base>/<decimal>`` for every version
(no listing, no duplicate check). A missing base path fails the poll.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass, field

from ..layout import parse_version
from ..messages import ModelConfig
from ._verdict import Verdict, servable_id
from .config import DEVSERVER_SCHEMES, local_path, split_uri, unreadable_scheme

__all__ = ["Poll", "poll_servable", "select_versions"]


@dataclass(frozen=True)
class Poll:
    """One model's file-system poll.

    ``error``: the poll failed (TF Serving then skips the whole poll, for every model).
    ``versions``: version -> folder name, as the manager ends up managing them (of two folders
    of one version, one). ``notes``: what TF Serving logs about it.
    """

    error: Verdict | None = None
    versions: dict[int, str] = field(default_factory=dict)
    notes: tuple[Verdict, ...] = ()


def _policy(model: ModelConfig) -> tuple[str, int, list[int]]:
    policy = model.model_version_policy
    choice = policy.WhichOneof("policy_choice") or "latest"
    return choice, max(policy.latest.num_versions, 1), list(policy.specific.versions)


def _list(base_path: str, local: str) -> tuple[list[str] | None, Verdict | None]:
    try:
        return sorted(os.listdir(local)), None  # TF Serving puts the children in a std::set: byte order
    except NotADirectoryError:
        return None, Verdict("base-path-not-folder", "FAILED_PRECONDITION", f"{base_path}; Not a directory")
    except PermissionError:
        return None, Verdict("base-path-unreadable", "PERMISSION_DENIED", f"{base_path}; Permission denied")
    except FileNotFoundError:
        return None, Verdict("base-path-missing", "NOT_FOUND", f"{base_path}; No such file or directory")


def poll_servable(model: ModelConfig, *, local: str | os.PathLike[str] | None = None,
                  readable: Collection[str] = DEVSERVER_SCHEMES) -> Poll:
    """What one poll of ``model``'s base path yields; ``local``: read this folder instead (a mount)."""
    name, base = model.name, model.base_path
    where = local_path(base) if local is None else os.fspath(local)
    unreadable = unreadable_scheme(base, readable) if local is None else None
    if unreadable is None and where is not None and not os.path.exists(where):
        unreadable = f"NOT_FOUND: {base} not found"
    if unreadable is not None or where is None:
        status = unreadable or (f"UNIMPLEMENTED: File system scheme '{split_uri(base)[0]}' not implemented "
                                f"(file: '{base}')")
        return Poll(Verdict("base-path-missing", "INVALID_ARGUMENT",
                            f"Could not find base path {base} for servable {name} with error {status}", name))
    kind, _latest, wanted = _policy(model)
    if kind == "specific" and not wanted:
        return select_versions(model, [])
    if kind == "specific" and all(os.path.exists(os.path.join(where, str(v))) for v in wanted):
        return select_versions(model, [str(v) for v in wanted])
    children, failed = _list(base, where)
    if failed is not None:
        return Poll(failed)
    assert children is not None  # _list gives the children or a verdict
    return select_versions(model, children)


def select_versions(model: ModelConfig, children: Collection[str]) -> Poll:
    """The versions a poll aspires among the base path's ``children`` (names), and what it logs.

    Pure: the poll and the validator's policy preview share it.
    """
    name, base = model.name, model.base_path
    kind, latest, wanted = _policy(model)
    notes: list[Verdict] = []
    emitted: list[tuple[int, str]] = []
    names = sorted(children)  # TF Serving puts the children in a std::set: byte order
    if kind == "specific" and not wanted:
        notes.append(Verdict("specific-empty", None, f"No specific versions requested for servable {name}.", name))
        return Poll(notes=tuple(notes))
    if kind == "specific" and all(str(v) in children for v in wanted):
        emitted = [(v, str(v)) for v in wanted]  # the fast path: <base>/<decimal> exists for all, no listing
    else:
        by_version: dict[int, str] = {}
        numeric = [(v, c) for c in names if (v := parse_version(c)) is not None]
        for version, child in numeric:
            if version in by_version:
                notes.append(Verdict("duplicate-version", None,
                                     f"Duplicate version directories detected. Version {version} will be loaded from "
                                     f"{child}, {by_version[version]} will be ignored.", name))
            by_version[version] = child  # the lexicographically last name wins
        if kind == "all":
            emitted = numeric  # every numeric child, both folders of one version included
        elif kind == "specific":
            emitted = [(v, c) for v, c in sorted(by_version.items()) if v in wanted]
            notes += [Verdict("specific-version-missing", None,
                              f"Version {v} of servable {name}, which was requested to be served as a 'specific' "
                              "version in the servable's version policy, was not found in the file system", name)
                      for v in sorted(set(wanted) - set(by_version))]
        else:
            emitted = sorted(by_version.items(), reverse=True)[:latest]
        if not emitted:
            notes.append(Verdict("no-versions", None,
                                 f"No versions of servable {name} found under base path {base}. Did you forget to "
                                 "name your leaf directory as a number (eg. '/1/')?", name))
    managed: dict[int, str] = {}
    for version, child in emitted:
        if version in managed:  # the manager keeps the first and logs an internal error for the next
            sid = servable_id(name, version)
            notes.append(Verdict("duplicate-version", None,
                                 f"Internal error: Unable to transfer servable {sid} to 'basic_manager_': This "
                                 f"servable is already being managed: {sid}", name))
            continue
        managed[version] = child
    return Poll(versions=managed, notes=tuple(notes))
