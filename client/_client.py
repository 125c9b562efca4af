"""The blocking client: the calls of ``_calls`` and ``_composed`` run with blocking gRPC calls."""

from __future__ import annotations

import time
from typing import Any, TypeVar

import grpc

from . import _calls, _composed
from ._base import BaseClient, blocking
from ._errors import ServingError
from ._plans import Plan, Sleep

__all__ = ["Client"]

T = TypeVar("T")


class Client(BaseClient):
    __doc__ = BaseClient.__doc__

    predict = blocking(_calls.predict)
    metadata = blocking(_calls.metadata)
    status = blocking(_calls.status)
    reload_config = blocking(_calls.reload_config)
    wait_until_available = blocking(_calls.wait_until_available)
    lineage = blocking(_calls.lineage)
    parts = blocking(_composed.parts)
    check_consistency = blocking(_composed.check_consistency)

    def close(self) -> None:
        """Close the channel (unless it was given: its owner closes it)."""
        if self._owns_channel:
            self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _drive(self, plan: Plan[T]) -> T:
        answer: Any = None
        failure: ServingError | None = None
        while True:
            try:
                step = plan.send(answer) if failure is None else plan.throw(failure)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            answer = failure = None
            if isinstance(step, Sleep):
                time.sleep(step.seconds)
                continue
            try:
                answer = self._stubs[step.method](step.request, timeout=step.timeout)
            except grpc.RpcError as error:
                failure = self._error(error)
