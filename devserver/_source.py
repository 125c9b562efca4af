"""The file-system source: which versions of a model the server should have loaded ("aspired").

TF Serving's ``FileSystemStoragePathSource``; the rules (version folders, policies, which of two
folders of one version loads, the messages) are :mod:`tfsk._base.rules`, shared with the config
validator. This module reads one model's folder, logs what TF Serving logs, and maps verdicts
to StatusErrors.
"""

from __future__ import annotations

import logging
from pathlib import Path

import grpc

from tfsk._base import rules
from tfsk._base.messages import ModelConfig

from ._status import StatusError

__all__ = ["poll_model", "status_of"]

logger = logging.getLogger(__name__)


def status_of(verdict: rules.Verdict) -> StatusError:
    """The StatusError a rule's refusal is answered with (TF and gRPC share the code names)."""
    return StatusError(grpc.StatusCode[verdict.code or "UNKNOWN"], verdict.message)


def poll_model(config: ModelConfig) -> tuple[dict[int, Path], rules.Poll]:
    """Version number -> folder for ``config``'s policy, and the poll (its error, if it failed)."""
    poll = rules.poll_servable(config)
    for note in poll.notes:
        (logger.error if note.message.startswith("Internal error") else logger.warning)("%s", note.message)
    local = rules.local_path(config.base_path)
    if poll.error is not None or local is None:
        return {}, poll
    return {version: Path(local) / child for version, child in poll.versions.items()}, poll
