"""What an export returns, and the progress steps it reports."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._specs import SignatureSpec

__all__ = ["EXPORT_STEPS", "ExportResult", "ProgressCallback"]

#: The steps an export reports through ``on_step``, in order.
EXPORT_STEPS = ("load", "write", "verify", "publish")
ProgressCallback = Callable[[str], None]


@dataclass(frozen=True)
class ExportResult:
    """A published version: where it is, its signatures and its lineage manifest."""

    model_name: str
    version: int
    path: Path
    signatures: dict[str, SignatureSpec]
    lineage: dict[str, Any]


def no_progress(step: str) -> None:
    """Default ``on_step``: report nothing."""
