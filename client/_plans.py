"""Calls written once for the blocking and the asyncio client ("sans I/O").

A plan is a generator: it yields the :class:`Call` it needs made — a gRPC method, or a pause
(:func:`sleep`) — and is sent the answer (or thrown the :class:`ServingError`). ``Client`` runs plans with blocking
calls, ``AsyncClient`` with awaited ones, so predict, hints, waiting and the composed-model checks
have one implementation. Plans compose with ``yield from``.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, NamedTuple, TypeVar

from ._requests import metadata_from, metadata_request, status_request, statuses_from
from ._types import ModelMetadata, VersionStatus

__all__ = ["SLEEP", "Call", "Done", "Plan", "ask_metadata", "ask_status", "next_step", "sleep"]

T = TypeVar("T")


SLEEP = "sleep"  # the pseudo-method that pauses: its request is the number of seconds


class Call(NamedTuple):
    """Make the gRPC call ``method`` (a key of ``_requests.METHODS``, or :data:`SLEEP`); the answer is sent back.

    ``replica``: ask that one address of a balanced target (``None``: the balanced channel).
    """

    method: str
    request: Any
    timeout: float | None
    replica: str | None = None


class Done(NamedTuple):
    value: Any


Plan = Generator[Call, Any, T]


def sleep(seconds: float) -> Call:
    return Call(SLEEP, seconds, None)


def next_step(plan: Plan[Any], answer: Any, failure: BaseException | None) -> Call | Done:
    """Give ``plan`` the answer to its last call (or throw it the failure): its next call, or what it returned."""
    try:
        return plan.send(answer) if failure is None else plan.throw(failure)
    except StopIteration as done:
        return Done(done.value)


def ask_metadata(model: str, version: int | None, label: str | None, timeout: float | None) -> Plan[ModelMetadata]:
    """GetModelMetadata, read; errors as the server gives them (no hint)."""
    response = yield Call("GetModelMetadata", metadata_request(model, version, label), timeout)
    return metadata_from(response, model)


def ask_status(model: str, version: int | None, timeout: float | None,
               replica: str | None = None) -> Plan[list[VersionStatus]]:
    """GetModelStatus, read; errors as the server gives them (no hint)."""
    return statuses_from((yield Call("GetModelStatus", status_request(model, version), timeout, replica)))
