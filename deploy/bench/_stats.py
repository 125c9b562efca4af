"""Latency statistics from every sample (merged across generator processes before any percentile is
taken: percentiles of parts cannot be averaged into the percentile of the whole), and the knee."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["PERCENTILES", "knee_index", "latency_summary"]

#: The percentiles every step reports, with the maximum and the mean (milliseconds).
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0}


def latency_summary(seconds: np.ndarray) -> dict[str, float]:
    """``p50 p90 p95 p99 max mean`` in milliseconds of the latencies (seconds); NaN when there are none.

    Percentiles are nearest-rank ("inverted_cdf"): always a latency that was measured, as
    HdrHistogram and perf_analyzer report them, never a value between two samples.
    """
    if seconds.size == 0:
        return {**{name: float("nan") for name in PERCENTILES}, "max": float("nan"), "mean": float("nan")}
    ms = seconds * 1e3
    found = np.percentile(ms, list(PERCENTILES.values()), method="inverted_cdf")
    summary = {name: float(value) for name, value in zip(PERCENTILES, found)}
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
