"""Generator processes: started once per bench as fresh interpreters (``python -m tfsk.deploy.bench``:
grpcio and fork do not mix, and multiprocessing's spawn would re-run the caller's main script),
each with its own channels, and reused by every step; a step's load is split among them and
their samples come back whole over the child's stdin/stdout (pickled: parent and child are the
same code), to be merged before any statistic is taken. With one process the load runs in the
caller's process (no child, no pickling)."""

from __future__ import annotations

import gc
import os
import pickle
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import IO, Any

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


def serve(messages: IO[bytes], answers: IO[bytes]) -> None:
    """A generator process: read the payloads, connect, then run each share it is sent at the
    wall-clock moment given and send back the samples, until told to stop (None) or stdin closes."""
    def answer(kind: str, value: Any) -> None:
        pickle.dump((kind, value), answers, protocol=pickle.HIGHEST_PROTOCOL)
        answers.flush()

    try:
        payloads = pickle.load(messages)
    except EOFError:
        return  # the parent went away before it said anything
    connections = _connect(payloads)
    gc.freeze()  # what exists now lives as long as the process: no collection needs to walk it again
    answer("ready", None)
    while True:
        try:
            message = pickle.load(messages)
        except EOFError:
            return
        if message is None:
            return
        share, start_at = message
        begin = time.perf_counter() + (start_at - time.time())
        try:
            answer("samples", run_share(payloads, connections, share, begin))
        except Exception as error:  # noqa: BLE001 - sent to the parent, which raises it as a BenchError
            answer("error", f"{type(error).__name__}: {error}")


class _Child:
    """One generator process and its pipes; what it prints goes to a file, shown if it fails."""

    def __init__(self, payloads: Payloads) -> None:
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen([sys.executable, "-m", "tfsk.deploy.bench"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=self.log)
        self.send(payloads)

    def send(self, message: Any) -> None:
        assert self.process.stdin is not None
        pickle.dump(message, self.process.stdin, protocol=pickle.HIGHEST_PROTOCOL)
        self.process.stdin.flush()

    def receive(self, timeout: float) -> Any:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not ready:
            raise BenchError(f"a generator process did not answer within {timeout:g}s")
        try:
            kind, value = pickle.load(self.process.stdout)
        except (EOFError, pickle.UnpicklingError):
            self.process.wait(5)
            raise BenchError(f"a generator process exited (status {self.process.returncode}): {self.tail()}") from None
        if kind == "error":
            raise BenchError(f"a generator process failed: {value}")
        return value

    def tail(self) -> str:
        self.log.seek(0)
        lines = self.log.read().decode("utf-8", "replace").strip().splitlines()
        return " | ".join(lines[-3:]) or "it printed nothing"

    def close(self) -> None:
        try:
            self.send(None)
            if self.process.stdin is not None:
                self.process.stdin.close()
        except OSError:
            pass
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.log.close()


class Generators:
    """``processes`` generators for one bench run; use as a context manager."""

    def __init__(self, payloads: Payloads, processes: int) -> None:
        self.payloads = payloads
        self.processes = processes
        self._local: Any = None
        self._children: list[_Child] = []
        if processes == 1:
            self._local = _connect(payloads)
            return
        try:
            for _ in range(processes):
                self._children.append(_Child(payloads))
            for child in self._children:
                child.receive(timeout=120)
        except BaseException:
            self.close()
            raise

    def run(self, step: LoadStep, arrivals: str, seed: int, engine: str = "callbacks") -> list[Samples]:
        shares = split(step, self.processes, arrivals, seed, engine)
        if not self._children:
            return [run_share(self.payloads, self._local, shares[0], time.perf_counter() + 0.01)]
        start_at = time.time() + _LEAD_SECONDS
        for child, share in zip(self._children, shares):
            child.send((share, start_at))
        limit = step.warmup_seconds + step.duration_seconds + self.payloads.timeout + 60
        return [child.receive(limit) for child in self._children[:len(shares)]]

    def close(self) -> None:
        for child in self._children:
            child.close()
        self._children = []
        if self._local:
            for channel in self._local:
                channel.close()
            self._local = None

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
