"""A rule's outcome: TF Serving's status code name and its exact message."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Verdict", "servable_id"]


@dataclass(frozen=True)
class Verdict:
    """One rule's outcome: ``code`` is TF Serving's status code name (``None``: only logged).

    ``rule`` is a stable name shared with :mod:`tfsk.serving_config`'s finding codes.
    """

    rule: str
    code: str | None
    message: str
    model: str | None = None

    def __str__(self) -> str:  # the form of TF's Status::ToString()
        return f"{self.code}: {self.message}" if self.code else self.message


def servable_id(name: str, version: int) -> str:
    """``ServableId::DebugString()``."""
    return f"{{name: {name} version: {version}}}"
