"""The figures a canary is judged by, numpy only: latency percentiles, how far an output moved, drift."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tfsk._base.latency import latency_percentiles

__all__ = ["compare_distributions", "compare_outputs", "describe_latency", "is_score", "ks_statistic", "psi", "spearman"]

_PSI_BINS = 10
_PSI_FLOOR = 1e-4  # an empty bin would make PSI infinite: count it as a tiny share instead


def describe_latency(seconds: Sequence[float]) -> dict[str, float | None]:
    """p50/p90/p99 in milliseconds (None without a single answer)."""
    found = latency_percentiles(seconds, (50, 90, 99))
    if found is None:
        return {"p50_ms": None, "p90_ms": None, "p99_ms": None}
    return {name: round(value * 1000.0, 3) for name, value in zip(("p50_ms", "p90_ms", "p99_ms"), found)}


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks with ties given their average rank (what Spearman's coefficient needs)."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.arange(len(values), dtype=np.float64)
    unique, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    if len(unique) < len(values):  # average the ranks of equal values
        sums = np.bincount(inverse, weights=ranks)
        ranks = (sums / counts)[inverse]
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman's rank correlation of two equally long vectors (None when either is constant)."""
    ra, rb = _ranks(np.ravel(a)), _ranks(np.ravel(b))
    if len(ra) < 2 or np.ptp(ra) == 0 or np.ptp(rb) == 0:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])


def psi(expected: np.ndarray, actual: np.ndarray, bins: int = _PSI_BINS) -> float:
    """Population stability index of ``actual`` against ``expected``, on ``expected``'s deciles."""
    expected, actual = np.ravel(expected).astype(np.float64), np.ravel(actual).astype(np.float64)
    edges = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:  # stable is constant: any change in the canary is a shift, none is not
        return 0.0 if np.all(actual == expected[0]) else float("inf")
    edges[0], edges[-1] = -np.inf, np.inf
    share_e = np.maximum(np.histogram(expected, edges)[0] / len(expected), _PSI_FLOOR)
    share_a = np.maximum(np.histogram(actual, edges)[0] / max(len(actual), 1), _PSI_FLOOR)
    return float(np.sum((share_a - share_e) * np.log(share_a / share_e)))


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic: the largest gap between the two empirical CDFs."""
    a, b = np.sort(np.ravel(a)), np.sort(np.ravel(b))
    if not len(a) or not len(b):
        return 0.0
    points = np.concatenate([a, b])
    gap = np.searchsorted(a, points, side="right") / len(a) - np.searchsorted(b, points, side="right") / len(b)
    return float(np.max(np.abs(gap)))


def is_score(values: np.ndarray) -> bool:
    """A score: real numbers within [0, 1] (a sigmoid or softmax output), where decisions are thresholds."""
    return values.dtype.kind == "f" and values.size > 0 and bool(np.all((values >= 0) & (values <= 1)))


def compare_outputs(stable: Sequence[np.ndarray], canary: Sequence[np.ndarray], threshold: float) -> dict[str, Any]:
    """How far one output moved from stable to canary over answers to the same requests (pairs in order)."""
    a = np.concatenate([np.ravel(x).astype(np.float64) for x in stable]) if stable else np.zeros(0)
    b = np.concatenate([np.ravel(x).astype(np.float64) for x in canary]) if canary else np.zeros(0)
    if a.shape != b.shape:
        return {"values": int(a.size), "problem": f"stable answered {a.size} values, canary {b.size}: the output's "
                                                  f"shape changed"}
    if not a.size:
        return {"values": 0}
    difference = np.abs(a - b)
    figures: dict[str, Any] = {
        "values": int(a.size),
        "max_abs_difference": float(np.max(difference)),
        "mean_abs_difference": float(np.mean(difference)),
        "psi": psi(a, b),
        "ks": ks_statistic(a, b),
        "score": is_score(a) and is_score(b),
    }
    if figures["score"]:
        figures["rank_agreement"] = spearman(a, b)
        figures["flip_rate"] = float(np.mean((a >= threshold) != (b >= threshold)))
    return figures


def compare_distributions(stable: Sequence[np.ndarray], canary: Sequence[np.ndarray]) -> dict[str, Any]:
    """Drift of one output between answers to *different* requests (live traffic): PSI and KS only."""
    a = np.concatenate([np.ravel(x).astype(np.float64) for x in stable]) if stable else np.zeros(0)
    b = np.concatenate([np.ravel(x).astype(np.float64) for x in canary]) if canary else np.zeros(0)
    if not a.size or not b.size:
        return {"values": [int(a.size), int(b.size)]}
    return {"values": [int(a.size), int(b.size)], "psi": psi(a, b), "ks": ks_statistic(a, b),
            "mean_difference": float(np.mean(b) - np.mean(a))}
