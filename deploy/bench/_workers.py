"""Generator processes: spawned once per bench (fresh interpreters: grpcio and fork do not mix),
each with its own channels, and reused by every step; a step's load is split among them and
their samples come back whole, to be merged before any statistic is taken. With one process the
load runs in the caller's process (no spawn, no pickling)."""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

from ._errors import BenchError
from ._load import Payloads, Samples, Share, grpc_channel, run_share
from ._steps import LoadStep

__all__ = ["Generators", "default_processes", "split"]

#: How long before a step's start its processes are told (so that all start on the same clock tick).
_LEAD_SECONDS = 0.25


def default_processes() -> int:
    """Half the cores this process may use (the server under test often shares the machine), 1 to 8."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(8, cores // 2))


def split(step: LoadStep, processes: int, arrivals: str, seed: int, engine: str = "callbacks") -> list[Share]:
    """Each process's share: the concurrency dealt out (no process idle with less than one request in
    flight), or the rate divided, constant arrivals staggered so that together they stay even."""
    if step.concurrency is not None:
        counts = [step.concurrency // processes + (1 if k < step.concurrency % processes else 0) for k in range(processes)]
        return [Share(count, None, step.warmup_seconds, step.duration_seconds, engine=engine) for count in counts if count]
    rate = float(step.rate or 0.0)
    return [Share(None, rate / processes, step.warmup_seconds, step.duration_seconds, arrivals,
                  phase=k / rate if arrivals == "constant" else 0.0, seed=seed * 1000 + k) for k in range(processes)]


def _connect(payloads: Payloads) -> Any:
    return [grpc_channel(t) for t in payloads.targets] if payloads.protocol == "grpc" else None


def _serve(pipe: Connection, payloads: Payloads) -> None:
    """A generator process: run each share it is sent at the wall-clock moment given, send back the samples."""
    connections = _connect(payloads)
    pipe.send(("ready", None))
    while (message := pipe.recv()) is not None:
        share, start_at = message
        begin = time.perf_counter() + (start_at - time.time())
        try:
            pipe.send(("samples", run_share(payloads, connections, share, begin)))
        except Exception as error:  # noqa: BLE001 - sent to the parent, which raises it as a BenchError
            pipe.send(("error", f"{type(error).__name__}: {error}"))


class Generators:
    """``processes`` generators for one bench run; use as a context manager."""

    def __init__(self, payloads: Payloads, processes: int) -> None:
        self.payloads = payloads
        self.processes = processes
        self._local: Any = None
        self._pipes: list[Connection] = []
        self._children: list[Any] = []
        if processes == 1:
            self._local = _connect(payloads)
            return
        context = multiprocessing.get_context("spawn")
        for _ in range(processes):
            parent, child = context.Pipe()
            process = context.Process(target=_serve, args=(child, payloads), daemon=True)
            process.start()
            child.close()
            self._pipes.append(parent)
            self._children.append(process)
        for pipe in self._pipes:
            self._receive(pipe, timeout=120)

    def _receive(self, pipe: Connection, timeout: float) -> Any:
        if not pipe.poll(timeout):
            raise BenchError(f"a generator process did not answer within {timeout:g}s")
        try:
            kind, value = pipe.recv()
        except EOFError:
            raise BenchError("a generator process exited; run with --processes 1 to see why") from None
        if kind == "error":
            raise BenchError(f"a generator process failed: {value}")
        return value

    def run(self, step: LoadStep, arrivals: str, seed: int, engine: str = "callbacks") -> list[Samples]:
        shares = split(step, self.processes, arrivals, seed, engine)
        if self._local is not None or self.processes == 1:
            return [run_share(self.payloads, self._local, shares[0], time.perf_counter() + 0.01)]
        start_at = time.time() + _LEAD_SECONDS
        for pipe, share in zip(self._pipes, shares):
            pipe.send((share, start_at))
        limit = step.warmup_seconds + step.duration_seconds + self.payloads.timeout + 60
        return [self._receive(pipe, limit) for pipe in self._pipes[:len(shares)]]

    def close(self) -> None:
        for pipe in self._pipes:
            try:
                pipe.send(None)
                pipe.close()
            except OSError:
                pass
        for process in self._children:
            process.join(5)
            if process.is_alive():
                process.terminate()
        if self._local:
            for channel in self._local:
                channel.close()

    def __enter__(self) -> Generators:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def merge(parts: Sequence[Samples]) -> Samples:
    """Every process's samples as one (latencies concatenated, counts summed, CPU summed)."""
    from collections import Counter

    import numpy as np

    errors: Counter[str] = Counter()
    for part in parts:
        errors.update(part.errors)
    return Samples(np.concatenate([p.latencies for p in parts]), np.concatenate([p.replicas for p in parts]), errors,
                   missed=sum(p.missed for p in parts), scheduled=sum(p.scheduled for p in parts),
                   cpu_seconds=sum(p.cpu_seconds for p in parts), wall_seconds=max(p.wall_seconds for p in parts))
