"""The asyncio client: the same calls as ``Client`` (one implementation, ``_plans``) on a ``grpc.aio`` channel."""

from __future__ import annotations

import asyncio
import logging
from typing import TypeVar

import grpc

from ._base import BaseClient
from ._plans import Done, Plan, next_step

__all__ = ["AsyncClient"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class AsyncClient(BaseClient):
    """Like :class:`Client`, with ``async`` calls (``async with AsyncClient(...) as serving:``).

    Same settings, same errors and hints; ``channel`` must be a ``grpc.aio`` channel. Make it
    inside the event loop that uses it.
    """

    _aio = True

    _shadow_queue: asyncio.Queue[Plan[None]] | None = None
    _shadow_tasks: list[asyncio.Task[None]]

    def _submit_shadow(self, plan: Plan[None]) -> bool:
        shadow = self._traffic.shadow
        assert shadow is not None
        if self._shadow_queue is None:  # made here, inside the event loop that runs the calls
            self._shadow_queue = asyncio.Queue(shadow.queue)
            self._shadow_tasks = [asyncio.get_running_loop().create_task(self._shadow_worker())
                                  for _ in range(shadow.workers)]
        try:
            self._shadow_queue.put_nowait(plan)
        except asyncio.QueueFull:
            return False
        return True

    async def _shadow_worker(self) -> None:
        assert self._shadow_queue is not None
        while True:
            plan = await self._shadow_queue.get()
            try:
                await self._drive(plan)
            except Exception:  # the plan keeps its own errors; anything else must not end the worker either
                log.exception("a shadow copy failed")

    async def close(self) -> None:
        """Close the channel (unless it was given: its owner closes it); copies not yet sent to the shadow are dropped."""
        if self._shadow_queue is not None:
            for _ in range(self._shadow_queue.qsize()):
                self._shadow_queue.get_nowait()
                self._traffic.shadow_dropped()
            for task in self._shadow_tasks:
                task.cancel()
            await asyncio.gather(*self._shadow_tasks, return_exceptions=True)
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
