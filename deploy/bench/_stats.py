"""Latency statistics from every sample (merged across generator processes before any percentile is
taken: percentiles of parts cannot be averaged into the percentile of the whole), and the knee."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tfsk._base.latency import latency_percentiles

__all__ = ["PERCENTILES", "knee_index", "latency_summary"]

#: The percentiles every step reports, with the maximum and the mean (milliseconds).
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0}


def latency_summary(seconds: np.ndarray) -> dict[str, float]:
    """``p50 p90 p95 p99 max mean`` in milliseconds of the latencies (seconds); NaN when there are none.

    Percentiles as every tfsk figure takes them (:func:`tfsk._base.latency.latency_percentiles`).
    """
    ms = seconds * 1e3
    found = latency_percentiles(ms, list(PERCENTILES.values()))
    if found is None:
        return {**{name: float("nan") for name in PERCENTILES}, "max": float("nan"), "mean": float("nan")}
    summary = dict(zip(PERCENTILES, found))
    return {**summary, "max": float(ms.max()), "mean": float(ms.mean())}


def knee_index(throughput: Sequence[float], p99_ms: Sequence[float], usable: Sequence[bool]) -> int | None:
    """The step past which more load buys latency rather than throughput: the one with the most
    throughput per p99 millisecond (Kleinrock's "power", throughput / delay, with p99 as the delay).

    Only ``usable`` steps count (kept by the generator, no errors); None when there is none.
    """
    best, found = 0.0, None
    for index, (rate, p99, ok) in enumerate(zip(throughput, p99_ms, usable)):
        if not ok or not p99 > 0 or not rate > 0:
            continue
        power = rate / p99
        if power > best:
            best, found = power, index
    return found
