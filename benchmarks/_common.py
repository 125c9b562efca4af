"""Shared pieces of the benchmarks: timing statistics, result files, a devserver process."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
sys.path.insert(0, str(REPO))  # the real packages, and tests.server_process (servers started as the tests start them)


def latency_stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def percentile(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]

    return {"p50_ms": percentile(50) * 1e3, "p99_ms": percentile(99) * 1e3, "mean_ms": statistics.fmean(ordered) * 1e3,
            "samples": len(ordered)}


def time_calls(call: Callable[[], Any], *, seconds: float, warmup: int = 20, max_calls: int = 100_000) -> list[float]:
    """Latency of each call, for about ``seconds`` (bounded in count as well)."""
    for _ in range(warmup):
        call()
    samples: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end and len(samples) < max_calls:
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


def run_clients(call: Callable[[int], Any], clients: int, seconds: float) -> dict[str, float]:
    """``clients`` threads each calling ``call(index)`` back to back for ``seconds``: throughput and
    per-call latency. A failed call stops its thread and the measurement fails, never hidden."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[str] = []
    stop = threading.Event()

    def worker(index: int) -> None:
        while not stop.is_set():
            start = time.perf_counter()
            try:
                call(index)
            except Exception as error:  # noqa: BLE001 - counted and reported below
                errors.append(str(error))
                return
            latencies[index].append(time.perf_counter() - start)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join(120)
    elapsed = time.perf_counter() - began
    samples = [s for per_client in latencies for s in per_client]
    if errors:
        raise RuntimeError(f"{len(errors)} calls failed, e.g. {errors[0]}")
    return {"throughput_rps": len(samples) / elapsed, **latency_stats(samples)}


def write_results(name: str, results: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    results = {"benchmark": name, "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": {
        "cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}, **results}
    path.write_text(json.dumps(results, indent=2) + "\n")
    return path


def export_demo_once(base: Path) -> Path:
    if not (base / "composed").exists():
        subprocess.run([sys.executable, "-m", "tfsk", "export", "demo", "--base", str(base)], check=True,
                       capture_output=True, cwd=REPO)
    return base


def spread(values: list[float]) -> dict[str, Any]:
    """Median and range of per-round ratios (each round measured both sides back to back)."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "rounds": values}
