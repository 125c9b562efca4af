"""Load measurement of a TF Serving endpoint (``tfsk bench``), TF-free.

:func:`run_bench` sends pre-serialized Predict requests (gRPC, or TF Serving's REST API) to
every replica of a target in steps (:class:`LoadStep`): a closed loop with a fixed number of
requests in flight, or an open loop at a fixed rate whose latencies count from each send's
*scheduled* time; a step the generator could not keep says so (:attr:`StepResult.sustained`).
The load spreads over several generator processes whose samples are merged before percentiles
are taken. :func:`compare_reports` sets two runs side by side; :func:`plot_svg` draws one.

- :mod:`._steps` load steps and their spellings; :mod:`._payloads` inputs and request bodies;
  :mod:`._load` (gRPC) and :mod:`._rest` one process's load; :mod:`._workers` the processes;
  :mod:`._stats` percentiles and the knee; :mod:`._report` results as JSON, CSV and text;
  :mod:`._compare` two runs; :mod:`._svg` the plot.
"""

from ._bench import PROTOCOLS, run_bench
from ._compare import METRICS, Comparison, MetricChange, compare_reports
from ._errors import BenchError
from ._payloads import signature_inputs, synthesize
from ._report import BenchReport, StepResult, report_from_json
from ._sources import requests_from_records
from ._steps import ARRIVALS, LoadStep, parse_counts, parse_duration, parse_rates, steps_for
from ._svg import plot_svg
from ._workers import default_processes

__all__ = [
    "ARRIVALS",
    "METRICS",
    "PROTOCOLS",
    "BenchError",
    "BenchReport",
    "Comparison",
    "LoadStep",
    "MetricChange",
    "StepResult",
    "compare_reports",
    "default_processes",
    "parse_counts",
    "parse_duration",
    "parse_rates",
    "plot_svg",
    "report_from_json",
    "requests_from_records",
    "run_bench",
    "signature_inputs",
    "steps_for",
    "synthesize",
]
