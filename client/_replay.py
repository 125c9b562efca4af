"""Sending captured requests again (to another label or version, at a rate or a concurrency) and
comparing the answers with the captured ones."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ._captured import CapturedCall
from ._errors import ClientError, ServingError
from ._traffic import percentiles

if TYPE_CHECKING:
    from ._client import Client

__all__ = ["ReplayReport", "replay"]


@dataclass
class ReplayReport:
    """What a replay found: calls sent, errors by status code, latency percentiles (seconds), and
    how the answers compare with the captured ones (``max_abs_difference`` per output)."""

    sent: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    matched: int = 0  # answers equal to the captured ones within the tolerance
    differed: int = 0
    not_compared: int = 0  # no captured answer (warmup records, failed calls) or the call failed now
    max_abs_difference: dict[str, float] = field(default_factory=dict)
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.errors and not self.differed

    def as_dict(self) -> dict[str, Any]:
        return {"sent": self.sent, "errors": self.errors, "matched": self.matched, "differed": self.differed,
                "not_compared": self.not_compared, "max_abs_difference": self.max_abs_difference,
                "latency_seconds": {"p50": self.p50, "p90": self.p90, "p99": self.p99}, "seconds": self.seconds,
                "ok": self.ok}


def _compare(captured: dict[str, np.ndarray], answer: dict[str, np.ndarray], atol: float, rtol: float,
             report: ReplayReport) -> bool:
    same = set(captured) == set(answer)
    for name in set(captured) & set(answer):
        old, new = captured[name], answer[name]
        if old.shape != new.shape or old.dtype.kind != new.dtype.kind:
            same = False
            continue
        if old.dtype.kind in "fciub":
            difference = float(np.max(np.abs(new.astype(np.float64) - old.astype(np.float64)))) if old.size else 0.0
            report.max_abs_difference[name] = max(report.max_abs_difference.get(name, 0.0), difference)
            same = same and bool(np.allclose(new, old, atol=atol, rtol=rtol, equal_nan=True))
        else:
            same = same and bool(np.array_equal(new, old))
    return same


def replay(client: Client, calls: Iterable[CapturedCall], model: str, *, version: int | None = None,
           label: str | None = None, rate: float | None = None, concurrency: int = 1, atol: float = 1e-6,
           rtol: float = 1e-6) -> ReplayReport:
    """Send each call's request to ``model`` (its ``version`` or ``label``, else the latest) and compare.

    ``rate``: calls a second, sent on schedule whatever the answers' latency (open loop);
    otherwise ``concurrency`` calls at a time, each sent when one returns.
    """
    if rate is not None and rate <= 0:
        raise ClientError(f"replay rate {rate} is not a positive number of calls a second")
    if concurrency < 1:
        raise ClientError(f"replay concurrency {concurrency} must be at least 1")
    report, lock, latencies = ReplayReport(), threading.Lock(), []

    def send(call: CapturedCall) -> None:
        started = time.perf_counter()
        try:
            answer = client.predict(model, call.inputs, version=version, label=label, signature=call.signature or None,
                                    output_filter=list(call.request.output_filter) or None)
            error = None
        except ServingError as failed:
            answer, error = None, failed
        latency = time.perf_counter() - started
        with lock:
            report.sent += 1
            latencies.append(latency)
            if error is not None:
                report.errors[error.code.name] = report.errors.get(error.code.name, 0) + 1
            captured = call.outputs if call.status == "OK" else None
            if answer is None or captured is None:
                report.not_compared += 1
            elif _compare(captured, dict(answer), atol, rtol, report):
                report.matched += 1
            else:
                report.differed += 1

    began = time.perf_counter()
    workers = max(concurrency, 32) if rate is not None else concurrency
    with ThreadPoolExecutor(workers, thread_name_prefix="tfsk-replay") as pool:
        futures = []
        for number, call in enumerate(calls):
            if rate is not None:
                delay = began + number / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            futures.append(pool.submit(send, call))
            if rate is None and len(futures) >= 4 * concurrency:  # a bounded backlog over a long capture
                futures.pop(0).result()
        for future in futures:
            future.result()
    report.seconds = time.perf_counter() - began
    for key, value in percentiles(latencies).items():
        setattr(report, key, value)
    return report
