"""What a tune found: every trial as measured, the best that meets the bound, and the verdict."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field, replace
from typing import Any

from tfsk import serving_config as sc

from ..bench import LoadStep, StepResult
from ._space import Candidate

__all__ = ["MIN_GAIN", "Trial", "TuneReport", "Verdict", "load_json"]

#: How much better than the baseline the best batched trial must be before batching is said to pay
#: (one measurement each, on a machine that may be busy: a smaller gain is within the noise).
MIN_GAIN = 0.05


@dataclass(frozen=True)
class Trial:
    """One server measured at the load: ``candidate`` ``None`` is the baseline without batching."""

    index: int
    candidate: Candidate | None
    throughput: float
    latency_ms: dict[str, float]
    requests: int
    errors: dict[str, int]
    missed_sends: int
    sustained: bool
    seconds: float
    meets: bool

    @classmethod
    def measured(cls, index: int, candidate: Candidate | None, result: StepResult, seconds: float,
                 p99_ms: float) -> Trial:
        """A trial from its bench step: it meets the bound when its p99 does and the step is usable
        (no errors; at a rate, the generator kept the schedule)."""
        latency = {k: float(v) for k, v in result.latency_ms.items()}
        meets = result.usable and latency.get("p99", math.inf) <= p99_ms
        return cls(index, candidate, result.throughput, latency, result.requests, dict(result.errors),
                   result.missed_sends, result.sustained, seconds, meets)

    @property
    def p99(self) -> float:
        return self.latency_ms.get("p99", math.inf)

    @property
    def label(self) -> str:
        return "no batching (baseline)" if self.candidate is None else self.candidate.describe()

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "batching": None if self.candidate is None else self.candidate.settings().to_json(),
                "grid_point": None if self.candidate is None else self.candidate.to_json(),
                "throughput": self.throughput, "latency_ms": self.latency_ms, "requests": self.requests,
                "errors": self.errors, "missed_sends": self.missed_sends, "sustained": self.sustained,
                "seconds": round(self.seconds, 3), "meets_bound": self.meets}


def trial_score(trial: Trial, by_rate: bool) -> tuple[float, float]:
    """Higher is better: any trial that meets the bound beats every one that does not; then the
    throughput (closed loop) or the lower p99 (at a rate); below the bound, the lower p99."""
    if not trial.meets:
        return (0.0, -trial.p99)
    return (1.0, -trial.p99 if by_rate else trial.throughput)


class Verdict:
    BATCHING = "batching"  # the best batched trial meets the bound and beats the baseline
    OFF = "off"  # the baseline meets the bound and no batched trial beats it: batching does not pay
    NONE = "none"  # no trial, the baseline included, meets the bound


@dataclass
class TuneReport:
    """Every trial in the order measured (the baseline first), the best batched one, and the verdict."""

    model: str
    version: int
    engine: str
    load: LoadStep
    p99_ms: float
    seed: int
    grid_size: int
    trials: list[Trial] = field(default_factory=list)
    stopped_by: str = "converged"
    seconds: float = 0.0
    #: The baseline, the starting point and the top trial measured again, interleaved (``index``
    #: names the trial re-measured).
    confirmations: list[Trial] = field(default_factory=list)

    def judged(self, trial: Trial) -> Trial:
        """``trial`` as the verdict sees it: the medians of its measurements, confirmations included;
        it meets the bound when the median p99 does and no measurement had errors or missed its rate."""
        runs = [trial, *(c for c in self.confirmations if c.index == trial.index)]
        if len(runs) == 1:
            return trial
        errors: dict[str, int] = {}
        for run in runs:
            for code, count in run.errors.items():
                errors[code] = errors.get(code, 0) + count
        latency = {key: statistics.median(r.latency_ms.get(key, math.inf) for r in runs) for key in trial.latency_ms}
        usable = all(r.sustained and not r.errors and r.requests > 0 for r in runs)
        return replace(trial, throughput=statistics.median(r.throughput for r in runs), latency_ms=latency,
                       requests=sum(r.requests for r in runs), errors=errors,
                       missed_sends=sum(r.missed_sends for r in runs), sustained=all(r.sustained for r in runs),
                       meets=usable and latency.get("p99", math.inf) <= self.p99_ms)

    @property
    def measurements(self) -> int:
        """How many measurements each figure of the verdict is the median of."""
        best = self.best
        return 1 + sum(1 for c in self.confirmations if best is not None and c.index == best.index)

    @property
    def by_rate(self) -> bool:
        return self.load.rate is not None

    @property
    def baseline(self) -> Trial | None:
        return next((t for t in self.trials if t.candidate is None), None)

    @property
    def top(self) -> Trial | None:
        """The batched trial that measured best, once each, among those that meet the bound."""
        meeting = [t for t in self.trials if t.candidate is not None and t.meets]
        return max(meeting, key=lambda t: (trial_score(t, self.by_rate), -t.index)) if meeting else None

    @property
    def start(self) -> Trial | None:
        """The search's starting point (TF Serving's advice for CPUs), the first batched trial."""
        return next((t for t in self.trials if t.candidate is not None), None)

    @property
    def best(self) -> Trial | None:
        """The best batched trial that meets the bound (``None`` when none does).

        Once confirmation rounds measured the starting point beside the search's top trial, the top
        one must beat it on their medians by more than :data:`MIN_GAIN`, else the starting point
        stays: a search that moved on one lucky measurement does not move the answer.
        """
        top, start = self.top, self.start
        if top is None or start is None or top is start or not any(c.index == start.index
                                                                   for c in self.confirmations):
            return top
        judged_top, judged_start = self.judged(top), self.judged(start)
        if not judged_start.meets:
            return top
        return top if judged_top.meets and self._beats(judged_top, judged_start) else start

    def paired_ratio(self, one: Trial, other: Trial) -> float | None:
        """How much better ``one`` did than ``other`` in the confirmation rounds that measured both (the
        median of the per-round ratios: throughput one/other, or at a rate p99 other/one), or ``None``
        without such rounds. Measured back to back, a round's two figures share the machine's load of the
        moment, which the medians of separate measurements do not cancel."""
        mine = [c for c in self.confirmations if c.index == one.index]
        theirs = [c for c in self.confirmations if c.index == other.index]
        if not mine or not theirs:
            return None
        if self.by_rate:
            return statistics.median(b.p99 / max(a.p99, 1e-9) for a, b in zip(mine, theirs))
        return statistics.median(a.throughput / max(b.throughput, 1e-9) for a, b in zip(mine, theirs))

    def _beats(self, one: Trial, other: Trial) -> bool:
        """``one`` is better than ``other`` by more than the noise allowance."""
        ratio = self.paired_ratio(one, other)
        if ratio is not None:
            return ratio > 1 + MIN_GAIN
        if self.by_rate:
            return one.p99 < other.p99 * (1 - MIN_GAIN)
        return one.throughput > other.throughput * (1 + MIN_GAIN)

    @property
    def best_settings(self) -> sc.BatchingSettings | None:
        """The batching parameters of :attr:`best`."""
        best = self.best
        return None if best is None or best.candidate is None else best.candidate.settings()

    @property
    def verdict(self) -> str:
        best, baseline = self._judged_pair()
        if best is None or not best.meets:
            return Verdict.OFF if baseline is not None and baseline.meets else Verdict.NONE
        if baseline is None or not baseline.meets:
            return Verdict.BATCHING
        return Verdict.BATCHING if self._beats(best, baseline) else Verdict.OFF

    def _judged_pair(self) -> tuple[Trial | None, Trial | None]:
        best, baseline = self.best, self.baseline
        return (None if best is None else self.judged(best)), (None if baseline is None else self.judged(baseline))

    def message(self) -> str:
        """One sentence: what to do."""
        bound = f"p99 <= {self.p99_ms:g} ms at {self.load.describe()}"
        (best, baseline), verdict = self._judged_pair(), self.verdict
        ratio = None if best is None or baseline is None else self.paired_ratio(best, baseline)
        paired = "" if ratio is None else f"; {ratio:.2f}x the baseline, median of the rounds that measured both"
        medians = f" (medians of {self.measurements} interleaved measurements{paired})" if self.measurements > 1 else ""
        if verdict == Verdict.NONE:
            return (f"no trial meets {bound}, without batching or with it: batching should stay off for "
                    f"{self.model!r}; lower the load or raise the bound")
        if verdict == Verdict.OFF:
            assert baseline is not None
            beaten = ("" if best is None else
                      f"; the best batched trial (#{best.index}) reached {_figure(best, self.by_rate)}")
            return (f"batching does not pay for {self.model!r} at {self.load.describe()}: without it "
                    f"{_figure(baseline, self.by_rate)}{beaten}{medians}; keep batching off for this model")
        assert best is not None
        versus = "" if baseline is None else (f" against {_figure(baseline, self.by_rate)} without batching"
                                              + ("" if baseline.meets else " (which misses the bound)"))
        top = self.top
        kept = ("" if top is None or top.index == best.index else
                f"; the search's top trial #{top.index} ({_figure(self.judged(top), self.by_rate)}) did not beat this "
                f"starting point by more than {MIN_GAIN:.0%}")
        return f"best under {bound}: trial #{best.index}, {_figure(best, self.by_rate)}{versus}{medians}{kept}"

    def to_json(self) -> dict[str, Any]:
        best, settings = self.best, self.best_settings
        return {"model": self.model, "version": self.version, "engine": self.engine, "load": load_json(self.load),
                "p99_bound_ms": self.p99_ms, "seed": self.seed, "grid_size": self.grid_size,
                "stopped_by": self.stopped_by, "seconds": round(self.seconds, 3),
                "trials": [t.to_json() for t in self.trials], "best": None if best is None else best.index,
                "best_batching": None if settings is None else settings.to_json(),
                "confirmations": [c.to_json() for c in self.confirmations],
                "judged": {name: None if t is None else t.to_json()
                           for name, t in zip(("best", "baseline"), self._judged_pair(), strict=True)},
                "verdict": self.verdict, "message": self.message()}


def load_json(load: LoadStep) -> dict[str, Any]:
    return {"concurrency": load.concurrency, "rate": load.rate, "duration_seconds": load.duration_seconds,
            "warmup_seconds": load.warmup_seconds}


def _figure(trial: Trial, by_rate: bool) -> str:
    return (f"p99 {trial.p99:.1f} ms" if by_rate
            else f"{trial.throughput:.1f} req/s (p99 {trial.p99:.1f} ms)")
