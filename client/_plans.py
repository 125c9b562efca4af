"""Calls written once for the blocking and the asyncio client ("sans I/O").

A plan is a generator: it yields what it needs done — a gRPC :class:`Call` or a :class:`Sleep` —
and is sent the answer (or thrown the :class:`ServingError`). ``Client`` runs plans with blocking
calls, ``AsyncClient`` with awaited ones, so predict, hints, waiting and the composed-model checks
have one implementation. Plans compose with ``yield from``.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, NamedTuple, TypeVar

from ._requests import metadata_from, metadata_request, status_request, statuses_from
from ._types import ModelMetadata, VersionStatus

__all__ = ["Call", "Plan", "Sleep", "ask_metadata", "ask_status"]

T = TypeVar("T")


class Call(NamedTuple):
    """Make the gRPC call ``method`` (a key of ``_requests.METHODS``); the answer is sent back."""

    method: str
    request: Any
    timeout: float | None


class Sleep(NamedTuple):
    seconds: float


Plan = Generator["Call | Sleep", Any, T]


def ask_metadata(model: str, version: int | None, label: str | None, timeout: float | None) -> Plan[ModelMetadata]:
    """GetModelMetadata, read; errors as the server gives them (no hint)."""
    response = yield Call("GetModelMetadata", metadata_request(model, version, label), timeout)
    return metadata_from(response, model)


def ask_status(model: str, version: int | None, timeout: float | None) -> Plan[list[VersionStatus]]:
    """GetModelStatus, read; errors as the server gives them (no hint)."""
    return statuses_from((yield Call("GetModelStatus", status_request(model, version), timeout)))
