"""The bench's pieces without a server: step spellings, statistics, schedules, the split over
processes, the JSON round trip, compare's arithmetic and the plot."""

import math
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest

from tfsk.deploy.bench import (
    BenchError,
    BenchReport,
    LoadStep,
    StepResult,
    compare_reports,
    parse_counts,
    parse_duration,
    parse_rates,
    plot_svg,
    steps_for,
)
from tfsk.deploy.bench._load import schedule
from tfsk.deploy.bench._stats import knee_index, latency_summary
from tfsk.deploy.bench._workers import split


def test_step_spellings():
    assert parse_duration("10s") == 10 and parse_duration("500ms") == 0.5 and parse_duration("2m") == 120
    assert parse_duration("1.5") == 1.5
    assert parse_counts("1, 2,4") == [1, 2, 4] and parse_rates("100,250.5") == [100.0, 250.5]
    for bad, parse in (("1,,2", parse_counts), ("0", parse_counts), ("two", parse_counts), ("nan", parse_rates),
                       ("0", parse_rates), ("-1", parse_rates), ("10x", parse_duration), ("", parse_duration)):
        with pytest.raises(BenchError):
            parse(bad)
    assert [s.concurrency for s in steps_for()] == [1, 2, 4, 8, 16, 32]
    with pytest.raises(BenchError, match="not both"):
        steps_for(concurrency=[1], rates=[10.0])
    with pytest.raises(BenchError, match="exactly one"):
        LoadStep(concurrency=2, rate=5.0)
    with pytest.raises(BenchError, match="exactly one"):
        LoadStep()
    with pytest.raises(BenchError, match="duration"):
        LoadStep(concurrency=1, duration_seconds=0)


def test_percentiles_are_nearest_rank_of_every_sample():
    samples = np.arange(1, 101) / 1e3  # 1..100 ms
    summary = latency_summary(samples)
    assert summary["p50"] == pytest.approx(50) and summary["p99"] == pytest.approx(99)
    assert summary["max"] == pytest.approx(100) and summary["mean"] == pytest.approx(50.5)
    # merging processes: the percentile of the whole, not the mean of each part's
    fast, slow = np.full(90, 0.001), np.full(10, 0.100)
    assert latency_summary(np.concatenate([fast, slow]))["p95"] == pytest.approx(100)
    assert math.isnan(latency_summary(np.array([]))["p50"])


def test_the_knee_is_the_most_throughput_per_p99_millisecond_among_usable_steps():
    assert knee_index([100, 190, 200, 205], [1.0, 1.2, 4.0, 20.0], [True] * 4) == 1
    assert knee_index([100, 190], [1.0, 1.2], [True, False]) == 0
    assert knee_index([100], [1.0], [False]) is None


def test_schedules_and_the_split_over_processes():
    constant = schedule(100.0, 1.0, "constant", 0.0, 0)
    assert len(constant) == 100 and np.allclose(np.diff(constant), 0.01)
    poisson = schedule(1000.0, 2.0, "poisson", 0.0, 7)
    assert 1800 < len(poisson) < 2200 and poisson[-1] < 2.0 and np.all(np.diff(poisson) >= 0)
    shares = split(LoadStep(concurrency=5), 2, "constant", 0)
    assert [s.concurrency for s in shares] == [3, 2]
    assert [s.concurrency for s in split(LoadStep(concurrency=1), 4, "constant", 0)] == [1]
    rated = split(LoadStep(rate=100.0), 2, "constant", 0)
    assert [s.rate for s in rated] == [50.0, 50.0] and [s.phase for s in rated] == [0.0, 0.01]
    together = np.sort(np.concatenate([schedule(s.rate, 1.0, "constant", s.phase, 0) for s in rated]))
    assert np.allclose(np.diff(together), 0.01)  # staggered: the processes' sends interleave evenly


def _report(throughputs, p99s, repeat=0):
    steps = [StepResult(LoadStep(concurrency=c, duration_seconds=1, warmup_seconds=0), int(t), {}, float(t),
                        {"p50": p / 2, "p90": p * 0.8, "p95": p * 0.9, "p99": p, "max": p * 2, "mean": p / 2}, 0, True,
                        0.5) for c, t, p in zip((1, 2), throughputs, p99s)]
    return BenchReport(steps, 0, ["h:1"], "m", "serving_default", repeat=repeat)


def test_reports_round_trip_and_compare_with_noise():
    report = _report([100, 150], [2.0, 4.0])
    again = BenchReport.from_json(report.to_json())
    assert again.to_json() == report.to_json()
    result = compare_reports([_report([100, 150], [2.0, 4.0])], [_report([200, 150], [1.0, 4.0], 0),
                                                                  _report([180, 150], [1.0, 4.4], 1)])
    load, changes = result.steps[0]
    assert load == "concurrency 1" and changes["throughput"].ratio == pytest.approx(1.9)
    assert changes["throughput"].noise == pytest.approx(20 / 190) and changes["throughput"].beyond_noise
    assert changes["p99"].ratio == pytest.approx(0.5)
    second = result.steps[1][1]
    assert second["p99"].ratio == pytest.approx(1.05) and not second["p99"].beyond_noise  # within the repeats' 10%
    with pytest.raises(BenchError, match="no load in common"):
        compare_reports([_report([1, 1], [1, 1])], [BenchReport([], None, ["h:1"], "m", "s")])


def test_the_plot_is_svg_with_one_line_per_percentile_and_the_knee():
    svg = plot_svg(_report([100, 150], [2.0, 60.0]))
    root = ElementTree.fromstring(svg)
    assert len(root.findall("{http://www.w3.org/2000/svg}polyline")) == 4
    assert "knee: concurrency 1" in svg and "log scale" in svg  # p50 1 ms .. p99 60 ms: a log axis
