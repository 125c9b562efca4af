"""The batching parameters a tune tries, and the order it tries them in.

A grid per parameter, cut to what can matter at the load and the latency bound (no batch is
larger than the number of clients of a closed loop; a timeout of half the p99 bound or more
cannot meet it), and a coordinate descent over it, the way Triton's Model Analyzer climbs one
parameter at a time instead of trying every combination: from a start point, step one
parameter up (or down) while the score improves, then the next parameter; passes repeat until
one changes nothing or the trials run out. The first pass visits the parameters in the order
they matter most; later passes in an order, and with first directions, drawn from ``seed`` —
so the trials are a function of the seed and the measurements alone.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any

from tfsk import serving_config as sc

__all__ = ["AXES", "Candidate", "SearchSpace", "coordinate_descent"]

#: The parameters, in the order the first pass visits them (most effect first).
AXES = ("max_batch_size", "batch_timeout_micros", "num_batch_threads", "max_enqueued_batches", "padded")
_BATCH_SIZES = (2, 4, 8, 16, 32, 64, 128)
_TIMEOUTS = (0, 500, 1000, 2000, 5000, 10000, 20000)
_ENQUEUED = (10, 100, 1000)
_SMALLEST_PADDED = 4  # allowed_batch_sizes starts here: padding a batch of 1 to 2 only costs


@dataclass(frozen=True, order=True)
class Candidate:
    """One point of the grid; ``padded`` is ``allowed_batch_sizes`` = powers of two up to ``max_batch_size``."""

    max_batch_size: int
    batch_timeout_micros: int
    num_batch_threads: int
    max_enqueued_batches: int
    padded: bool = False

    def settings(self) -> sc.BatchingSettings:
        allowed: tuple[int, ...] = ()
        if self.padded:
            allowed = tuple(s for s in (2 ** i for i in range(1, 16))
                            if _SMALLEST_PADDED <= s < self.max_batch_size) + (self.max_batch_size,)
        return sc.BatchingSettings(max_batch_size=self.max_batch_size, batch_timeout_micros=self.batch_timeout_micros,
                                   max_enqueued_batches=self.max_enqueued_batches,
                                   num_batch_threads=self.num_batch_threads, allowed_batch_sizes=allowed)

    def describe(self) -> str:
        return (f"max_batch_size={self.max_batch_size} batch_timeout_micros={self.batch_timeout_micros} "
                f"num_batch_threads={self.num_batch_threads} max_enqueued_batches={self.max_enqueued_batches}"
                + (" allowed_batch_sizes=" + ",".join(map(str, self.settings().allowed_batch_sizes))
                   if self.padded else ""))

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class SearchSpace:
    """The values each parameter may take, smallest first, and where the search starts."""

    values: dict[str, tuple[Any, ...]]
    start: Candidate

    @classmethod
    def for_load(cls, *, concurrency: int | None, p99_ms: float, cpus: int | None = None,
                 min_batch_size: int = 0) -> SearchSpace:
        """The grid for a closed loop of ``concurrency`` clients (``None``: an open loop) under ``p99_ms``;
        no ``max_batch_size`` below ``min_batch_size`` (the model's warmup batch: smaller fails its load)."""
        cpus = cpus or os.cpu_count() or 1
        sizes: tuple[int, ...] = _BATCH_SIZES
        if concurrency is not None:  # a closed loop never has more requests waiting than clients
            sizes = tuple(s for s in _BATCH_SIZES if s < 2 * concurrency) or _BATCH_SIZES[:1]
        if min_batch_size > sizes[0]:
            sizes = (tuple(s for s in sizes if s >= min_batch_size)
                     or (next((s for s in _BATCH_SIZES if s >= min_batch_size), min_batch_size),))
        timeouts = tuple(t for t in _TIMEOUTS if t < p99_ms * 1000 / 2) or (0,)
        threads = tuple(t for t in (1, 2, 4, 8, 16) if t <= max(2, 2 * cpus))
        values: dict[str, tuple[Any, ...]] = {"max_batch_size": sizes, "batch_timeout_micros": timeouts,
                                              "num_batch_threads": threads, "max_enqueued_batches": _ENQUEUED,
                                              "padded": (False, True)}
        # TF Serving's batching guide starts CPU tuning here: as many batch threads as cores, no
        # timeout, a batch as large as the load can fill.
        start = Candidate(max_batch_size=sizes[-1] if concurrency is not None else min(32, sizes[-1]),
                          batch_timeout_micros=0, num_batch_threads=_nearest(threads, cpus),
                          max_enqueued_batches=100, padded=False)
        return cls(values, start)

    @property
    def size(self) -> int:
        """How many combinations there are (what an exhaustive search would run)."""
        total = 1
        for axis in AXES:
            total *= len(self.values[axis])
        return total


def _nearest(values: tuple[int, ...], wanted: int) -> int:
    return min(values, key=lambda v: (abs(v - wanted), v))


Score = tuple[float, ...]
#: Measures a candidate: its score (higher is better), or ``None`` to stop the search (budget spent).
Evaluate = Callable[[Candidate], Score | None]


def coordinate_descent(space: SearchSpace, evaluate: Evaluate, *, trials: int, seed: int = 0) -> list[Candidate]:
    """Climb the grid one parameter at a time; at most ``trials`` evaluations, each candidate once.

    Returns the candidates in the order they were evaluated; the caller keeps their scores.
    """
    rng = random.Random(seed)
    scores: dict[Candidate, Score] = {}
    order: list[Candidate] = []
    stopped = False

    def score_of(candidate: Candidate) -> Score | None:
        nonlocal stopped
        if candidate in scores:
            return scores[candidate]
        if stopped or len(order) >= trials:
            stopped = True
            return None
        result = evaluate(candidate)
        if result is None:
            stopped = True
            return None
        scores[candidate] = result
        order.append(candidate)
        return result

    best = space.start
    if score_of(best) is None:
        return order
    axes, first_pass = list(AXES), True
    while not stopped:
        if not first_pass:
            rng.shuffle(axes)
        moved = False
        for axis in axes:
            values = space.values[axis]
            directions = [1, -1] if first_pass or rng.random() < 0.5 else [-1, 1]
            for direction in directions:
                stepped = False
                while True:
                    index = values.index(getattr(best, axis)) + direction
                    if not 0 <= index < len(values):
                        break
                    candidate = replace(best, **{axis: values[index]})
                    score = score_of(candidate)
                    if score is None or score <= scores[best]:
                        break
                    best, stepped, moved = candidate, True, True
                if stepped or stopped:
                    break  # improved going this way: the other way was worse from where we started
            if stopped:
                break
        first_pass = False
        if not moved:
            break
    return order
