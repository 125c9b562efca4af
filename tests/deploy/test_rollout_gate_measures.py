"""The gate's figures on numbers whose answers are known (numpy only, no server)."""

from __future__ import annotations

import numpy as np
import pytest

from tfsk import serving_config as sc
from tfsk.deploy.rollout._gate_report import judge
from tfsk.deploy.rollout._measures import compare_outputs, describe_latency, ks_statistic, psi, spearman


def test_rank_agreement_is_spearman_with_ties_averaged():
    a = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert spearman(a, a * 10 + 3) == pytest.approx(1.0)
    assert spearman(a, -a) == pytest.approx(-1.0)
    # by hand: ranks (1, 2.5, 2.5, 4) against (1, 2, 3, 4): Pearson of the ranks
    tied = spearman(np.array([1.0, 2.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0, 4.0]))
    assert tied == pytest.approx(np.corrcoef([1, 2.5, 2.5, 4], [1, 2, 3, 4])[0, 1])
    assert spearman(np.ones(4), a[:4]) is None  # a constant output has no ranking


def test_drift_measures_see_a_shift_and_not_a_copy():
    values = np.random.default_rng(0).standard_normal(5000)
    assert psi(values, values) == 0.0 and ks_statistic(values, values) == 0.0
    shifted = values + 0.5
    assert psi(values, shifted) > 0.2 and ks_statistic(values, shifted) == pytest.approx(0.197, abs=0.02)
    assert psi(np.zeros(10), np.zeros(10)) == 0.0 and psi(np.zeros(10), np.ones(10)) == float("inf")


def test_scores_get_flips_at_the_threshold_and_other_outputs_do_not():
    stable = [np.array([[0.1], [0.45], [0.55], [0.9]])]
    canary = [np.array([[0.1], [0.55], [0.55], [0.9]])]
    figures = compare_outputs(stable, canary, threshold=0.5)
    assert figures["score"] and figures["flip_rate"] == 0.25
    assert figures["max_abs_difference"] == pytest.approx(0.1) and figures["mean_abs_difference"] == pytest.approx(0.025)
    embedding = compare_outputs([np.array([3.0, -1.0])], [np.array([3.5, -1.0])], threshold=0.5)
    assert not embedding["score"] and "flip_rate" not in embedding
    assert "problem" in compare_outputs([np.zeros(3)], [np.zeros(4)], threshold=0.5)  # the shape changed


def test_latency_percentiles_in_milliseconds():
    figures = describe_latency([i / 1000 for i in range(1, 101)])  # 1..100 ms
    # nearest rank: measured latencies, never a value between two samples
    assert figures["p50_ms"] == pytest.approx(50.0) and figures["p99_ms"] == pytest.approx(99.0)
    assert describe_latency([])["p99_ms"] is None


def test_the_verdict_names_each_failed_check_and_skips_what_it_cannot_judge():
    labels = {"stable": {"p99_ms": 10.0, "error_rate": 0.0, "errors": {}},
              "canary": {"p99_ms": 40.0, "error_rate": 0.05, "errors": {"INVALID_ARGUMENT": 5}}}
    outputs = {"prediction": {"part": None, "values": 12, "max_abs_difference": 0.3, "mean_abs_difference": 0.01,
                              "psi": 3.0, "score": True, "rank_agreement": 0.2, "flip_rate": 0.0},
               "tower_a__embedding": {"part": "tower_a", "values": 12, "max_abs_difference": 2.0,
                                      "mean_abs_difference": 1.0, "psi": 0.0, "score": False},
               "tower_b__embedding": {"part": "tower_b", "values": 12, "max_abs_difference": 0.0,
                                      "mean_abs_difference": 0.0, "psi": 0.0, "score": False}}
    verdict = judge(labels, outputs, sc.GateSettings())
    assert verdict["verdict"] == "fail" and verdict["moved_parts"] == ["tower_a"]
    assert verdict["failed"] == ["latency_p99", "error_rate", "max_abs_difference:prediction"]
    skipped = {c["name"] for c in verdict["checks"] if c.get("skipped")}
    assert skipped == {"psi:prediction", "rank_agreement:prediction"}  # 12 values: too few to judge
    assert verdict["moved"] == "moved: tower_a (max |diff| 2)"
    everything = judge(labels, outputs, sc.GateSettings(outputs="all", latency_p99_ratio=4.0, error_rate_increase=0.1))
    assert everything["failed"] == ["max_abs_difference:prediction", "max_abs_difference:tower_a__embedding",
                                    "mean_abs_difference:tower_a__embedding"]
