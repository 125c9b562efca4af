"""One definition of a latency percentile: the client's route statistics, the rollout gate and
tfsk bench report the same figures for the same samples."""

import numpy as np

from tfsk._base.latency import latency_percentiles
from tfsk.client._traffic import percentiles
from tfsk.deploy.bench._stats import latency_summary
from tfsk.deploy.rollout._measures import describe_latency


def test_every_report_takes_the_same_nearest_rank_percentiles():
    seconds = list(np.random.default_rng(3).lognormal(-6, 1, size=997))
    p50, p90, p99 = latency_percentiles(seconds)
    assert {p50, p90, p99} <= set(seconds)  # measured values, not interpolations
    assert percentiles(seconds) == {"p50": p50, "p90": p90, "p99": p99}
    gate = describe_latency(seconds)
    assert (gate["p50_ms"], gate["p90_ms"], gate["p99_ms"]) == tuple(round(v * 1000, 3) for v in (p50, p90, p99))
    bench = latency_summary(np.asarray(seconds))
    assert np.allclose([bench["p50"], bench["p90"], bench["p99"]], [p50 * 1e3, p90 * 1e3, p99 * 1e3])


def test_no_sample_has_no_percentile():
    assert latency_percentiles([]) is None
    assert percentiles([]) == {"p50": None, "p90": None, "p99": None}
    assert describe_latency([])["p99_ms"] is None
    assert np.isnan(latency_summary(np.asarray([], dtype=np.float64))["p99"])
