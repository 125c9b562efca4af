"""The blocking client: the calls of ``_calls`` and ``_composed`` run with blocking gRPC calls."""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import TypeVar

import grpc

from ._base import BaseClient
from ._plans import Done, Plan, next_step

__all__ = ["Client"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class Client(BaseClient):
    __doc__ = BaseClient.__doc__

    _shadow_queue: queue.Queue[Plan[None] | None] | None = None
    _shadow_threads: list[threading.Thread]

    def _submit_shadow(self, plan: Plan[None]) -> bool:
        shadow = self._traffic.shadow
        assert shadow is not None
        if self._shadow_queue is None:
            self._shadow_queue = queue.Queue(shadow.queue)
            self._shadow_threads = [threading.Thread(target=self._shadow_worker, name=f"tfsk-shadow-{n}", daemon=True)
                                    for n in range(shadow.workers)]
            for thread in self._shadow_threads:
                thread.start()
        try:
            self._shadow_queue.put_nowait(plan)
        except queue.Full:
            return False
        return True

    def _shadow_worker(self) -> None:
        assert self._shadow_queue is not None
        while (plan := self._shadow_queue.get()) is not None:
            try:
                self._drive(plan)
            except Exception:  # the plan keeps its own errors; anything else must not end the worker either
                log.exception("a shadow copy failed")

    def close(self) -> None:
        """Close the channel (unless it was given: its owner closes it); copies not yet sent to the shadow are dropped."""
        if self._shadow_queue is not None:
            while True:
                try:
                    if self._shadow_queue.get_nowait() is not None:
                        self._traffic.shadow_dropped()
                except queue.Empty:
                    break
            for _ in self._shadow_threads:
                self._shadow_queue.put(None)
            for thread in self._shadow_threads:
                thread.join(timeout=1.0)  # a copy still waiting for its answer is cut short by closing the channel
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
