"""One generator process's load: closed loop (a fixed number of requests always in flight) or open
loop (sends on a schedule, whatever the answers do), over gRPC or REST, recording every latency.

gRPC calls go out as pre-serialized bytes on raw channel methods and come back as bytes that are
never parsed (only the status counts), so the generator spends its CPU on sending, not on protobuf.
A closed loop chains each answer's callback into the next send (no thread per request: grpcio's
callbacks run on its own poller thread, which outpaces a thread per slot on a GIL-bound process).

Open loop: latency counts from the *scheduled* send time, so a server that stalls the generator
(or a generator that falls behind) shows up as latency instead of silently lowering the load
("coordinated omission"). A send that leaves more than :data:`LATE_AFTER` seconds behind its
schedule, or never leaves before the step ends, is a *missed* send: the generator, not the server,
failed to keep the rate.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import grpc
import numpy as np

__all__ = ["LATE_AFTER", "Payloads", "Samples", "Share", "grpc_channel", "run_share"]

#: A send this late (seconds) behind its schedule is a missed send.
LATE_AFTER = 0.01
PREDICT = "/tensorflow.serving.PredictionService/Predict"


@dataclass(frozen=True)
class Payloads:
    """What a generator sends: request bodies (serialized PredictRequests, or REST JSON) sent in turn,
    to ``targets`` in turn; ``path`` is the REST URL path (gRPC uses Predict)."""

    protocol: str
    bodies: tuple[bytes, ...]
    targets: tuple[str, ...]
    path: str = ""
    timeout: float = 30.0


@dataclass(frozen=True)
class Share:
    """One process's part of a step: its concurrency or its rate, on the step's clock."""

    concurrency: int | None
    rate: float | None
    warmup: float
    duration: float
    arrivals: str = "constant"
    phase: float = 0.0  # open loop: this process's first send, after the step's start (spreads processes' sends)
    seed: int = 0
    engine: str = "callbacks"  # closed loop over gRPC: "callbacks" (answer sends the next) or "threads" (one a slot)


@dataclass
class Samples:
    """What one process measured in a step's window (sends scheduled after the warmup, before its end)."""

    latencies: np.ndarray  # seconds, successful requests
    replicas: np.ndarray  # the target index of each latency
    errors: Counter[str] = field(default_factory=Counter)
    missed: int = 0
    scheduled: int = 0  # open loop: sends the window's schedule asked for
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0


class _Recorder:
    """Latencies and errors of the requests sent in the measured window, from any thread."""

    def __init__(self, measure_from: float) -> None:
        self.measure_from = measure_from
        self.latencies: list[float] = []
        self.replicas: list[int] = []
        self.errors: Counter[str] = Counter()
        self.pending = 0
        self.idle = threading.Condition()

    def record(self, start: float, end: float, replica: int, error: str | None) -> None:
        if start >= self.measure_from:
            if error is None:
                self.latencies.append(end - start)
                self.replicas.append(replica)
            else:
                self.errors[error] += 1

    def sent(self) -> None:
        with self.idle:
            self.pending += 1

    def done(self) -> None:
        with self.idle:
            self.pending -= 1
            if self.pending == 0:
                self.idle.notify_all()

    def wait_idle(self, timeout: float) -> None:
        with self.idle:
            self.idle.wait_for(lambda: self.pending == 0, timeout)

    def samples(self) -> Samples:
        return Samples(np.array(self.latencies, dtype=np.float64), np.array(self.replicas, dtype=np.int32),
                       Counter(self.errors))


def grpc_channel(target: str) -> grpc.Channel:
    """A plain channel: no retries (a failed request is counted, not hidden), no message size limit."""
    return grpc.insecure_channel(target, options=[("grpc.max_send_message_length", -1),
                                                  ("grpc.max_receive_message_length", -1),
                                                  ("grpc.enable_retries", 0)])


class GrpcSender:
    """Sends bodies to the targets in turn; calls ``finished(start, end, replica, error)`` on each answer."""

    def __init__(self, payloads: Payloads, channels: Sequence[grpc.Channel]) -> None:
        self.calls = [channel.unary_unary(PREDICT) for channel in channels]
        self.bodies = payloads.bodies
        self.timeout = payloads.timeout
        self.turn = itertools.count()  # next() on a count is atomic under the GIL

    def send(self, start: float, then: Callable[[float, float, int, str | None], None]) -> None:
        turn = next(self.turn)
        replica = turn % len(self.calls)
        future = self.calls[replica].future(self.bodies[turn % len(self.bodies)], timeout=self.timeout)
        future.add_done_callback(partial(_answered, start, replica, then))


def _answered(start: float, replica: int, then: Callable[[float, float, int, str | None], None], future: Any) -> None:
    end = time.perf_counter()
    error = future.exception()
    then(start, end, replica, None if error is None else error.code().name)


def _closed_grpc(sender: GrpcSender, recorder: _Recorder, concurrency: int, stop_at: float) -> None:
    def finished(start: float, end: float, replica: int, error: str | None) -> None:
        recorder.record(start, end, replica, error)
        if end < stop_at:
            sender.send(time.perf_counter(), finished)
        else:
            recorder.done()

    for _ in range(concurrency):
        recorder.sent()
        sender.send(time.perf_counter(), finished)


def _closed_threads(sender: GrpcSender, recorder: _Recorder, concurrency: int, stop_at: float) -> None:
    """A thread per request in flight, each calling in turn and blocking for the answer."""
    def slot() -> None:
        calls, bodies, timeout, turns = sender.calls, sender.bodies, sender.timeout, sender.turn
        clock = time.perf_counter
        while True:
            turn = next(turns)
            replica = turn % len(calls)
            start = clock()
            try:
                calls[replica](bodies[turn % len(bodies)], timeout=timeout)
                error = None
            except grpc.RpcError as failed:
                error = failed.code().name  # type: ignore[attr-defined]  # a call's error is also a grpc.Call
            end = clock()
            recorder.record(start, end, replica, error)
            if end >= stop_at:
                return

    threads = [threading.Thread(target=slot, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def schedule(rate: float, seconds: float, arrivals: str, phase: float, seed: int) -> np.ndarray:
    """Send times (seconds after the step's start) at ``rate`` per second for ``seconds``."""
    count = int(rate * seconds * 1.2) + 16
    if arrivals == "poisson":
        gaps = np.random.default_rng(seed).exponential(1.0 / rate, count)
        times = phase + np.cumsum(gaps) - gaps[0]
    else:
        times = phase + np.arange(count) / rate
    while times[-1] < seconds:  # a Poisson draw short of the end: draw on (rare)
        times = np.concatenate([times, schedule(rate, seconds, arrivals, times[-1] + 1.0 / rate, seed + 1)])
    return times[times < seconds]


def _open_loop(send: Callable[[float], None], recorder: _Recorder, times: np.ndarray, begin: float,
               measure_from: float, stop_at: float, count_late: bool = True) -> tuple[int, int]:
    """Send at ``begin + times``; returns (scheduled in the window, missed in the window). Sends still
    unsent when the step ends are missed; so are late ones, unless ``send`` only queues (``count_late``
    False: whoever takes a send from the queue judges its lateness)."""
    missed = 0
    due_times = (begin + times).tolist()
    sent = 0
    for due in due_times:
        now = time.perf_counter()
        if due - now > 2e-4:  # sleeping less than this overshoots more than it waits
            time.sleep(due - now)
            now = time.perf_counter()
        if now >= stop_at:
            break  # the rest never left: missed, below
        if count_late and due >= measure_from and now - due > LATE_AFTER:
            missed += 1
        recorder.sent()
        send(due)
        sent += 1
    measured = sum(1 for due in due_times if due >= measure_from)
    missed += sum(1 for due in due_times[sent:] if due >= measure_from)
    return measured, missed


def run_share(payloads: Payloads, connections: Any, share: Share, begin: float) -> Samples:
    """Run one process's share of a step that starts at ``begin`` (``time.perf_counter()`` clock).

    ``connections`` are this process's gRPC channels (one per target), or None for REST.
    """
    from ._rest import RestSender

    measure_from = begin + share.warmup
    stop_at = measure_from + share.duration
    recorder = _Recorder(measure_from)
    cpu_before = time.process_time()
    scheduled = missed = 0
    if payloads.protocol == "rest":
        rest = RestSender(payloads)
        if share.concurrency is not None:
            rest.closed_loop(recorder, share.concurrency, begin, stop_at)
        else:
            times = schedule(share.rate or 1.0, share.warmup + share.duration, share.arrivals, share.phase, share.seed)
            scheduled, missed = rest.open_loop(recorder, times, begin, measure_from, stop_at, share.rate or 1.0)
    else:
        sender = GrpcSender(payloads, connections)
        _sleep_until(begin)
        if share.concurrency is not None:
            closed = _closed_threads if share.engine == "threads" else _closed_grpc
            closed(sender, recorder, share.concurrency, stop_at)
        else:
            times = schedule(share.rate or 1.0, share.warmup + share.duration, share.arrivals, share.phase, share.seed)

            def finished(start: float, end: float, replica: int, error: str | None) -> None:
                recorder.record(start, end, replica, error)
                recorder.done()

            scheduled, missed = _open_loop(lambda due: sender.send(due, finished), recorder, times, begin,
                                           measure_from, stop_at)
    recorder.wait_idle(payloads.timeout + 5.0)
    samples = recorder.samples()
    samples.scheduled, samples.missed = scheduled, missed
    samples.cpu_seconds = time.process_time() - cpu_before
    samples.wall_seconds = max(time.perf_counter() - begin, 1e-9)
    return samples


def _sleep_until(moment: float) -> None:
    delay = moment - time.perf_counter()
    if delay > 0:
        time.sleep(delay)
