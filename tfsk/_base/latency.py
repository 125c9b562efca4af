"""Latency percentiles: one definition for every figure tfsk reports (the client's route, shadow and
replay statistics, the rollout gate, ``tfsk bench``), so two commands given the same samples agree.

Nearest rank (numpy's ``inverted_cdf``): each percentile is a latency that was measured, as
HdrHistogram and perf_analyzer report them, never a value interpolated between two samples.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["latency_percentiles"]


def latency_percentiles(seconds: Sequence[float] | npt.NDArray[np.float64],
                        quantiles: Sequence[float] = (50.0, 90.0, 99.0)) -> list[float] | None:
    """The ``quantiles`` (0-100) of the latencies, in their unit; ``None`` when there are none."""
    values = np.asarray(seconds, dtype=np.float64)
    if values.size == 0:
        return None
    return [float(value) for value in np.percentile(values, list(quantiles), method="inverted_cdf")]
