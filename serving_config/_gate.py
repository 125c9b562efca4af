"""``[rollout.gate]`` of ``tfsk.toml``: the thresholds ``tfsk rollout analyze`` judges a canary against.

Every key has a default, so a declaration without the table still gates. The defaults are loose
enough that an identical re-export passes on a busy laptop and tight enough that a retrained tower
which moves decisions, a canary several times slower, or one that fails requests does not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

__all__ = ["GateSettings", "read_gate_settings"]


@dataclass(frozen=True)
class GateSettings:
    """Thresholds of the canary gate (``[rollout.gate]``); a check fails when the canary goes past one."""

    #: canary p99 may be at most this many times stable's p99 ...
    latency_p99_ratio: float = 1.5
    #: ... plus this many milliseconds (a few ms of noise on a fast model is no regression)
    latency_p99_slack_ms: float = 10.0
    #: canary's share of failed requests may exceed stable's by at most this much (0.01 = 1 point)
    error_rate_increase: float = 0.01
    #: largest allowed absolute difference of any value of a gated output
    max_abs_difference: float = 0.1
    #: largest allowed mean absolute difference of a gated output
    mean_abs_difference: float = 0.02
    #: scores (outputs within [0, 1]): decisions are ``score >= decision_threshold`` ...
    decision_threshold: float = 0.5
    #: ... and at most this share of them may flip between stable and canary
    max_flip_rate: float = 0.02
    #: scores: the Spearman rank correlation of canary with stable must be at least this
    min_rank_agreement: float = 0.9
    #: population stability index of each gated output's distribution (0.1 small, 0.25 large shift)
    max_psi: float = 0.2
    #: requests sent to each label on each replica when replaying (captured, warmup or synthesized)
    requests: int = 100
    #: which outputs are gated: "head" (a composed model's head output only: a new tower is expected
    #: to move its own output) or "all"
    outputs: str = "head"

    def check(self) -> GateSettings:
        """Itself, or :class:`ValueError` naming the first setting out of range."""
        for name in ("latency_p99_ratio", "latency_p99_slack_ms", "error_rate_increase", "max_abs_difference",
                     "mean_abs_difference", "max_psi"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 or more, got {getattr(self, name)}")
        for name in ("decision_threshold", "max_flip_rate"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be between 0 and 1, got {getattr(self, name)}")
        if not -1 <= self.min_rank_agreement <= 1:
            raise ValueError(f"min_rank_agreement is a correlation, between -1 and 1, got {self.min_rank_agreement}")
        if self.requests < 1:
            raise ValueError(f"requests must be 1 or more, got {self.requests}")
        if self.outputs not in ("head", "all"):
            raise ValueError(f"outputs must be \"head\" or \"all\", got {self.outputs!r}")
        return self


def read_gate_settings(table: Mapping[str, Any], fail: Callable[[str, str], Exception]) -> GateSettings:
    """``[rollout.gate]`` as :class:`GateSettings`; ``fail(key, problem)`` makes the error to raise."""
    defaults = GateSettings()
    known = {f.name for f in fields(GateSettings)}
    unknown = sorted(set(table) - known)
    if unknown:
        raise fail("[rollout.gate]", f"unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    values: dict[str, Any] = {}
    for key, value in table.items():
        kind = type(getattr(defaults, key))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)  # `latency_p99_ratio = 2` means 2.0
        if not isinstance(value, kind) or isinstance(value, bool):
            raise fail(f"[rollout.gate] {key}", f"must be {'a number' if kind is float else kind.__name__}, "
                                                f"got {value!r}")
        values[key] = value
    try:
        return GateSettings(**values).check()
    except ValueError as error:
        raise fail("[rollout.gate]", str(error)) from None
