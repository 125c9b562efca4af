"""Load steps: what one step of a sweep asks for, and the command line's spellings of them."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ._errors import BenchError

__all__ = ["ARRIVALS", "LoadStep", "parse_counts", "parse_duration", "parse_rates", "steps_for"]

#: How open-loop sends are spaced: evenly, or as a Poisson process (exponential gaps) like real users.
ARRIVALS = ("constant", "poisson")
_DURATION = re.compile(r"(?P<value>\d+(?:\.\d*)?|\.\d+)(?P<unit>ms|s|m)?")
_UNITS = {"ms": 1e-3, "s": 1.0, "m": 60.0, None: 1.0}


@dataclass(frozen=True)
class LoadStep:
    """One step of a sweep: ``concurrency`` requests always in flight (closed loop), or ``rate``
    requests per second sent on a schedule whatever the answers do (open loop). Exactly one of them.

    ``warmup_seconds`` of load come first and are not measured (connections, the model's first calls).
    """

    concurrency: int | None = None
    rate: float | None = None  # requests per second, open loop
    duration_seconds: float = 10.0
    warmup_seconds: float = 2.0

    def __post_init__(self) -> None:
        if (self.concurrency is None) == (self.rate is None):
            raise BenchError(f"a load step takes a concurrency or a rate, exactly one (got concurrency={self.concurrency}, "
                             f"rate={self.rate})")
        if self.concurrency is not None and (isinstance(self.concurrency, bool) or not isinstance(self.concurrency, int)
                                             or self.concurrency < 1):
            raise BenchError(f"concurrency {self.concurrency!r}: give a whole number of requests in flight, 1 or more")
        if self.rate is not None and not (isinstance(self.rate, int | float) and math.isfinite(self.rate) and self.rate > 0):
            raise BenchError(f"rate {self.rate!r}: give requests per second, a number above 0")
        if not (math.isfinite(self.duration_seconds) and self.duration_seconds > 0):
            raise BenchError(f"duration {self.duration_seconds!r}: give seconds above 0, e.g. 10")
        if not (math.isfinite(self.warmup_seconds) and self.warmup_seconds >= 0):
            raise BenchError(f"warmup {self.warmup_seconds!r}: give seconds, 0 or more")

    @property
    def open_loop(self) -> bool:
        return self.rate is not None

    def describe(self) -> str:
        return f"rate {self.rate:g}/s" if self.rate is not None else f"concurrency {self.concurrency}"


def parse_duration(text: str, what: str = "--duration") -> float:
    """``10s``, ``500ms``, ``1.5m`` or plain seconds (``10``) -> seconds."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise BenchError(f"{what} {text!r} is not a duration: write e.g. 10s, 500ms, 2m or 10 (seconds)")
    return float(match["value"]) * _UNITS[match["unit"]]


def _items(text: str, what: str, example: str) -> list[str]:
    items = [item.strip() for item in text.split(",")]
    if not text.strip() or any(not item for item in items):
        raise BenchError(f"{what} {text!r}: give a comma-separated list, e.g. {what} {example}")
    return items


def parse_counts(text: str, what: str = "--concurrency") -> list[int]:
    """``1,2,4,8`` -> [1, 2, 4, 8]: requests in flight, each a whole number of 1 or more."""
    counts = []
    for item in _items(text, what, "1,2,4,8"):
        if not item.isdigit() or int(item) < 1:
            raise BenchError(f"{what} {text!r}: {item!r} is not a whole number of 1 or more; write e.g. {what} 1,2,4,8")
        counts.append(int(item))
    return counts


def parse_rates(text: str, what: str = "--rate") -> list[float]:
    """``100,200,400`` -> requests per second, each above 0."""
    rates = []
    for item in _items(text, what, "100,200,400"):
        try:
            rate = float(item)
        except ValueError:
            rate = -1.0
        if not (math.isfinite(rate) and rate > 0):
            raise BenchError(f"{what} {text!r}: {item!r} is not a number of requests per second above 0; "
                             f"write e.g. {what} 100,200,400")
        rates.append(rate)
    return rates


def steps_for(*, concurrency: Sequence[int] = (), rates: Sequence[float] = (), duration_seconds: float = 10.0,
              warmup_seconds: float = 2.0) -> list[LoadStep]:
    """The sweep: one step per concurrency, or per rate (not both)."""
    if concurrency and rates:
        raise BenchError("give --concurrency (closed loop) or --rate (open loop), not both")
    if rates:
        return [LoadStep(rate=r, duration_seconds=duration_seconds, warmup_seconds=warmup_seconds) for r in rates]
    return [LoadStep(concurrency=c, duration_seconds=duration_seconds, warmup_seconds=warmup_seconds)
            for c in (concurrency or (1, 2, 4, 8, 16, 32))]
