"""The blocking client: the calls of ``_calls`` and ``_composed`` run with blocking gRPC calls."""

from __future__ import annotations

import time
from typing import TypeVar

import grpc

from ._base import BaseClient
from ._plans import Done, Plan, next_step

__all__ = ["Client"]

T = TypeVar("T")


class Client(BaseClient):
    __doc__ = BaseClient.__doc__

    def close(self) -> None:
        """Close the channel (unless it was given: its owner closes it)."""
        for replica in self._replicas.values():
            replica.close()  # type: ignore[attr-defined]
        if self._owns_channel:
            self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @staticmethod
    def _sleep(seconds: float, timeout: float | None = None) -> None:
        time.sleep(seconds)

    def _drive(self, plan: Plan[T]) -> T:
        answer, failure = None, None
        while not isinstance(step := next_step(plan, answer, failure), Done):
            try:
                answer, failure = self._stubs_for(step.replica)[step.method](step.request, timeout=step.timeout), None
            except grpc.RpcError as error:
                answer, failure = None, self._error(error)
        return step.value  # type: ignore[no-any-return]
