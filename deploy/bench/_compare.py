"""Two runs side by side (``tfsk bench compare``): per step, after / before for throughput and each
latency percentile, each side the median of its repeats, and the noise those repeats show."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from ._errors import BenchError
from ._report import BenchReport, StepResult

__all__ = ["METRICS", "Comparison", "MetricChange", "compare_reports"]

#: What is compared, in the order shown.
METRICS = ("throughput", "p50", "p90", "p95", "p99", "max")


@dataclass(frozen=True)
class MetricChange:
    """One metric of one step: each side's median over its repeats, after / before, and the noise:
    the largest relative spread ((max - min) / median) either side's repeats show (0 with one run each)."""

    before: float
    after: float
    ratio: float
    noise: float

    @property
    def beyond_noise(self) -> bool:
        """The change is larger than the repeats' own spread (with one run per side, any change is)."""
        return math.isfinite(self.ratio) and abs(self.ratio - 1.0) > self.noise


@dataclass(frozen=True)
class Comparison:
    """``steps``: (load, metric -> change) for each load both runs measured, in the before run's order;
    ``only_before``/``only_after``: loads one side lacks."""

    steps: list[tuple[str, dict[str, MetricChange]]]
    only_before: list[str]
    only_after: list[str]
    repeats: tuple[int, int]

    def to_json(self) -> dict[str, object]:
        def number(value: float) -> float | None:
            return round(value, 4) if math.isfinite(value) else None

        return {"repeats": {"before": self.repeats[0], "after": self.repeats[1]},
                "steps": [{"load": load, **{metric: {"before": number(c.before), "after": number(c.after),
                                                     "ratio": number(c.ratio), "noise": number(c.noise),
                                                     "beyond_noise": c.beyond_noise}
                                            for metric, c in changes.items()}} for load, changes in self.steps],
                "only_before": self.only_before, "only_after": self.only_after}

    def rows(self) -> list[list[str]]:
        rows = []
        for load, changes in self.steps:
            cells = []
            for metric in METRICS:
                change = changes[metric]
                mark = "" if change.beyond_noise or change.noise == 0 else " ~"
                cells.append(f"{change.ratio:.2f}x" + (f" ±{change.noise:.0%}" if change.noise else "") + mark)
            rows.append([load, *cells])
        return rows


def _value(result: StepResult, metric: str) -> float:
    return result.throughput if metric == "throughput" else result.latency_ms[metric]


def _spread(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    if len(finite) < 2:
        return 0.0
    middle = statistics.median(finite)
    return (max(finite) - min(finite)) / middle if middle else 0.0


def _by_load(runs: Sequence[BenchReport]) -> dict[str, list[StepResult]]:
    found: dict[str, list[StepResult]] = {}
    for run in runs:
        for result in run.steps:
            found.setdefault(result.step.describe(), []).append(result)
    return found


def compare_reports(before: Sequence[BenchReport], after: Sequence[BenchReport]) -> Comparison:
    """Compare the runs of ``before`` (one, or repeats of the same sweep) with those of ``after``."""
    if not before or not after:
        raise BenchError("compare needs a run on each side")
    old, new = _by_load(before), _by_load(after)
    shared = [load for load in old if load in new]
    if not shared:
        raise BenchError(f"the two files measured no load in common (before: {', '.join(old)}; after: {', '.join(new)}): "
                         f"run both with the same --concurrency or --rate")
    steps = []
    for load in shared:
        changes = {}
        for metric in METRICS:
            was = [_value(r, metric) for r in old[load]]
            now = [_value(r, metric) for r in new[load]]
            median_was = statistics.median(was)
            median_now = statistics.median(now)
            ratio = median_now / median_was if median_was else math.nan
            changes[metric] = MetricChange(median_was, median_now, ratio, max(_spread(was), _spread(now)))
        steps.append((load, changes))
    return Comparison(steps, [load for load in old if load not in new], [load for load in new if load not in old],
                      (len(before), len(after)))
