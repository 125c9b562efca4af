"""What a bench found: one :class:`StepResult` per step, and the :class:`BenchReport` of a run, as
JSON (what ``compare`` and ``tfsk tune`` read back), CSV and plain text."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from typing import Any

from ._errors import BenchError
from ._steps import LoadStep

__all__ = ["FORMAT", "BenchReport", "StepResult", "report_from_json"]

#: The JSON document's format name and version (``compare`` refuses anything else).
FORMAT = "tfsk-bench/1"
LATENCY_KEYS = ("p50", "p90", "p95", "p99", "max", "mean")


def _number(value: float) -> float | None:
    return None if isinstance(value, float) and math.isnan(value) else round(value, 4)


@dataclass
class StepResult:
    """One step, measured over its window (warmup left out)."""

    step: LoadStep
    requests: int  # completed (ok + errors)
    errors: dict[str, int]  # gRPC status code name (REST: "HTTP 404") -> count
    throughput: float  # completed ok requests per second
    latency_ms: dict[str, float]  # "p50", "p90", "p95", "p99", "max", "mean"
    missed_sends: int  # open loop: sends the generator could not make on schedule
    sustained: bool  # False when the generator could not keep the asked rate
    generator_cpu: float  # the generator's own CPU seconds per wall second (all its processes)
    scheduled: int = 0  # open loop: sends the window's schedule asked for
    replicas: dict[str, dict[str, float]] = field(default_factory=dict)  # per target: requests, throughput, p50, p99

    @property
    def usable(self) -> bool:
        """Kept by the generator and free of errors: a step whose figures are the server's."""
        return self.sustained and not self.errors and self.requests > 0

    def to_json(self) -> dict[str, Any]:
        return {"concurrency": self.step.concurrency, "rate": self.step.rate,
                "duration_seconds": self.step.duration_seconds, "warmup_seconds": self.step.warmup_seconds,
                "requests": self.requests, "errors": dict(self.errors), "throughput": round(self.throughput, 3),
                "latency_ms": {k: _number(self.latency_ms[k]) for k in LATENCY_KEYS},
                "missed_sends": self.missed_sends, "scheduled": self.scheduled, "sustained": self.sustained,
                "generator_cpu": round(self.generator_cpu, 3), "replicas": self.replicas}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StepResult:
        step = LoadStep(concurrency=data.get("concurrency"), rate=data.get("rate"),
                        duration_seconds=data["duration_seconds"], warmup_seconds=data["warmup_seconds"])
        latency = {k: float("nan") if v is None else float(v) for k, v in data["latency_ms"].items()}
        return cls(step, int(data["requests"]), dict(data["errors"]), float(data["throughput"]), latency,
                   int(data["missed_sends"]), bool(data["sustained"]), float(data["generator_cpu"]),
                   int(data.get("scheduled", 0)), dict(data.get("replicas", {})))


@dataclass
class BenchReport:
    """A run: its steps in order, the knee (index of the step with the best throughput per p99
    millisecond among the usable ones, or None), and what was measured with what."""

    steps: list[StepResult]
    knee: int | None
    target: list[str]
    model: str
    signature: str
    label: str | None = None
    version: int | None = None
    protocol: str = "grpc"
    processes: int = 1
    arrivals: str = "constant"
    inputs: str = "synthesized"
    repeat: int = 0  # which repeat of the same sweep this is (compare reads several as noise)

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "model": self.model, "signature": self.signature, "label": self.label,
                "version": self.version, "target": list(self.target), "protocol": self.protocol,
                "processes": self.processes, "arrivals": self.arrivals, "inputs": self.inputs, "repeat": self.repeat,
                "knee": self.knee, "steps": [s.to_json() for s in self.steps]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BenchReport:
        return cls([StepResult.from_json(s) for s in data["steps"]], data.get("knee"), list(data["target"]),
                   data["model"], data["signature"], data.get("label"), data.get("version"), data.get("protocol", "grpc"),
                   int(data.get("processes", 1)), data.get("arrivals", "constant"), data.get("inputs", "synthesized"),
                   int(data.get("repeat", 0)))

    def rows(self) -> list[list[str]]:
        """The throughput-vs-latency table: one row per step, the knee marked."""
        rows = []
        for index, result in enumerate(self.steps):
            latency = result.latency_ms
            errors = ", ".join(f"{code} {count}" for code, count in sorted(result.errors.items())) or "-"
            note = []
            if index == self.knee:
                note.append("knee")
            if not result.sustained:
                note.append(f"NOT SUSTAINED ({result.missed_sends} of {result.scheduled} sends missed)")
            rows.append([result.step.describe(), f"{result.throughput:.1f}",
                         *(f"{latency[k]:.2f}" for k in ("p50", "p90", "p95", "p99", "max")), errors,
                         f"{result.generator_cpu:.2f}", " ".join(note)])
        return rows

    HEADERS = ("load", "req/s", "p50 ms", "p90 ms", "p95 ms", "p99 ms", "max ms", "errors", "gen cpu", "")

    def text(self) -> list[str]:
        """Plain lines (for logs and pipes): a header, then one row per step."""
        widths = [max(len(h), *(len(r[i]) for r in self.rows())) for i, h in enumerate(self.HEADERS)]
        lines = ["  ".join(h.ljust(w) for h, w in zip(self.HEADERS, widths)).rstrip()]
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in self.rows()]
        return lines

    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["concurrency", "rate", "requests", "throughput", *(f"{k}_ms" for k in LATENCY_KEYS),
                         "errors", "missed_sends", "sustained", "generator_cpu", "knee"])
        for index, s in enumerate(self.steps):
            writer.writerow([s.step.concurrency or "", s.step.rate or "", s.requests, f"{s.throughput:.3f}",
                             *(f"{s.latency_ms[k]:.4f}" for k in LATENCY_KEYS),
                             ";".join(f"{c}={n}" for c, n in sorted(s.errors.items())), s.missed_sends,
                             str(s.sustained).lower(), f"{s.generator_cpu:.3f}", str(index == self.knee).lower()])
        return out.getvalue()


def report_from_json(data: Any, where: str = "the file") -> list[BenchReport]:
    """One report, or the repeats a file holds (a list of reports, or ``{"runs": [...]}``)."""
    runs = data.get("runs", [data]) if isinstance(data, dict) else data
    if not isinstance(runs, list) or not runs:
        raise BenchError(f"{where} holds no bench report: write one with tfsk bench --json FILE")
    try:
        if any(run.get("format") != FORMAT for run in runs):
            raise BenchError(f"{where} is not a tfsk bench report (format {FORMAT}): write one with tfsk bench --json FILE")
        return [BenchReport.from_json(run) for run in runs]
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise BenchError(f"{where} is not a readable tfsk bench report ({type(error).__name__}: {error})") from None
