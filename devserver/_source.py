"""The file-system source: which versions of a model the server should have loaded ("aspired").

TF Serving's ``FileSystemStoragePathSource``: children of the base path whose names parse as
int64 are versions; the version policy picks among them.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from tfsk._base import layout
from tfsk._base.messages import ModelConfig

from ._status import StatusError

__all__ = ["aspired_versions"]

logger = logging.getLogger(__name__)


def aspired_versions(config: ModelConfig) -> dict[int, Path]:
    """Version number -> folder for ``config``'s policy; StatusError if the base path is missing."""
    base = config.base_path
    if not os.path.isdir(base):
        raise StatusError.invalid_argument(
            f"Could not find base path {base} for servable {config.name} with error NOT_FOUND: {base} not found")
    children = layout.list_versions(base)
    if not children:
        logger.warning("No versions of servable %s found under base path %s. Did you forget to name your leaf "
                       "directory as a number (eg. '/1/')?", config.name, base)
        return {}
    # Duplicates such as 5 and 005: the lexicographically last name wins (sorted order keeps it last).
    by_version: dict[int, Path] = {}
    for child in sorted(children, key=lambda c: (c.version, c.path.name)):
        if child.version in by_version:
            logger.warning("duplicate version %d of %s: using %s", child.version, config.name, child.path)
        by_version[child.version] = child.path
    policy = config.model_version_policy
    choice = policy.WhichOneof("policy_choice")
    if choice == "all":
        return by_version
    if choice == "specific":
        wanted = list(policy.specific.versions)
        if not wanted:
            logger.warning("model %s has an empty 'specific' version policy: no version is served", config.name)
        missing = [v for v in wanted if v not in by_version]
        if missing:
            logger.warning("versions %s of model %s named by its 'specific' policy are not under %s", missing, config.name, base)
        return {v: by_version[v] for v in wanted if v in by_version}
    count = max(policy.latest.num_versions, 1) if choice == "latest" else 1
    newest = sorted(by_version, reverse=True)[:count]
    return {v: by_version[v] for v in newest}
