"""Batching tuning (``tfsk tune batching``): trials of TF Serving's batching parameters, each on a
server of its own at the user's load, under a latency bound.

- :mod:`._space` is the grid and the coordinate descent over it (deterministic given a seed);
- :mod:`._servers` starts a trial's server (the devserver, or the ``tensorflow/serving`` image);
- :mod:`._tune` runs the baseline and the trials (:func:`tune_batching`), measured by
  :func:`tfsk.deploy.bench.run_bench`; :mod:`._report` holds what they found (:class:`TuneReport`).

Writing the best into ``tfsk.toml`` is :func:`tfsk.serving_config.record_batching`.
"""

from ._report import MIN_GAIN, Trial, TuneReport, Verdict
from ._servers import TuneError, served_version
from ._space import AXES, Candidate, SearchSpace, coordinate_descent
from ._tune import ENGINES, tune_batching

__all__ = [
    "AXES",
    "ENGINES",
    "MIN_GAIN",
    "Candidate",
    "SearchSpace",
    "Trial",
    "TuneError",
    "TuneReport",
    "Verdict",
    "coordinate_descent",
    "served_version",
    "tune_batching",
]
