"""The asyncio client: the same calls as ``Client`` (one implementation, ``_plans``) on a ``grpc.aio`` channel."""

from __future__ import annotations

import asyncio
from typing import TypeVar

import grpc

from ._base import BaseClient
from ._plans import Done, Plan, next_step

__all__ = ["AsyncClient"]

T = TypeVar("T")


class AsyncClient(BaseClient):
    """Like :class:`Client`, with ``async`` calls (``async with AsyncClient(...) as serving:``).

    Same settings, same errors and hints; ``channel`` must be a ``grpc.aio`` channel. Make it
    inside the event loop that uses it.
    """

    _aio = True

    async def close(self) -> None:
        """Close the channel (unless it was given: its owner closes it)."""
        for replica in self._replicas.values():
            await replica.close()  # type: ignore[attr-defined]
        if self._owns_channel:
            await self._channel.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    @staticmethod
    async def _sleep(seconds: float, timeout: float | None = None) -> None:
        await asyncio.sleep(seconds)

    async def _drive(self, plan: Plan[T]) -> T:
        answer, failure = None, None
        while not isinstance(step := next_step(plan, answer, failure), Done):
            try:
                call = self._stubs_for(step.replica)[step.method]
                answer, failure = await call(step.request, timeout=step.timeout), None
            except grpc.RpcError as error:
                answer, failure = None, self._error(error)
        return step.value  # type: ignore[no-any-return]
