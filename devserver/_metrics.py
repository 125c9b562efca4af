"""TF Serving's monitoring metrics, collected through prometheus-client and printed as TF Serving prints them.

TF Serving names a metric after its TensorFlow monitoring path with every character outside
``[a-zA-Z0-9_]`` turned into ``:`` (``/tensorflow/serving/request_count`` ->
``:tensorflow:serving:request_count``), writes no ``# HELP`` lines and no ``_total`` suffix, and
like TF's monitoring library keeps one set of metrics per process. Each metric is a
prometheus-client custom collector in one registry (the library's metric families and parser
read it); :func:`exposition` prints them in TF Serving's page format, which Prometheus and
``promtool`` parse.

Why custom collectors rather than prometheus-client's ``Counter``/``Histogram``: a request records
up to ten samples (request count and latency, runtime latency, and with batching the input,
queuing, batch and padding sizes), and a ``Histogram.observe`` costs about 3 µs (two locks and a
bucket scan) under the GIL that every request thread shares, which measurably cut batching's
throughput on small models. Here a sample is one bisect into TF's bucket bounds and one lock.

Counting follows TF Serving: gRPC Predict/Classify/Regress and every REST ``/v1`` request count
in ``request_count``; ``request_latency`` records only successful requests; each SavedModel load
attempt counts in ``load_attempt_count``. Other parts of the devserver (batching) record through
the functions here, never through the collectors.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

__all__ = [
    "batching_recorder",
    "exposition",
    "metric_value",
    "record_load_attempt",
    "record_request",
    "record_runtime_latency",
]


def _exponential(scale: float, growth: float, count: int) -> list[float]:
    """TF monitoring's ``Buckets::Exponential`` upper bounds (the +Inf bucket is added when printed)."""
    return [scale * growth**index for index in range(count)]


#: ``servables/tensorflow/util.cc``: request and runtime latencies in µs, 10·1.8^k, 33 buckets.
_LATENCY_BUCKETS = _exponential(10, 1.8, 33)
#: ``batching/batching_session.cc``: queuing latency in µs, 100·1.2^k, 52 buckets (~1 s).
_QUEUING_BUCKETS = _exponential(100, 1.2, 52)
#: Batch sizes: 1, 2, 4, ... as TF's batching metrics bucket them.
_BATCH_SIZE_BUCKETS = _exponential(1, 2, 14)


def tf_metric_name(path: str) -> str:
    """``/tensorflow/serving/request_count`` -> ``:tensorflow:serving:request_count`` (``prometheus_exporter.cc``)."""
    name = "".join(c if c.isascii() and (c.isalnum() or c == "_") else ":" for c in path)
    return "_" + name if name[:1].isdigit() else name


class _Series:
    """One label set's values: the sum (a counter's value), and for a histogram its bucket counts."""

    __slots__ = ("counts", "lock", "total")

    def __init__(self, buckets: int) -> None:
        self.lock = threading.Lock()
        self.total = 0.0
        self.counts = [0] * (buckets + 1)  # the last one is +Inf


class _Metric(Collector):
    """A counter (``bounds`` None) or histogram with labels; its series appear at their first sample."""

    def __init__(self, path: str, documentation: str, labels: Iterable[str], bounds: list[float] | None = None,
                 registry: CollectorRegistry | None = None) -> None:
        self.name = tf_metric_name(path)
        self._documentation = documentation
        self._labels = tuple(labels)
        self._bounds = bounds
        self._series: dict[tuple[str, ...], _Series] = {}
        #: One recording function per label values, made with its series and kept as long as it.
        self._recorders: dict[tuple[str, ...], Callable[[float], None]] = {}
        self._lock = threading.Lock()
        if not self._labels:
            self.recorder(())  # printed from the start, as 0
        (registry or _registry).register(self)

    def recorder(self, values: tuple[str, ...] = ()) -> Callable[[float], None]:
        """The function that records one sample (a counter's increment, a histogram's observation)."""
        found = self._recorders.get(values)
        if found is None:
            with self._lock:
                found = self._recorders.get(values)
                if found is None:
                    series = self._series[values] = _Series(0 if self._bounds is None else len(self._bounds))
                    found = self._recorders[values] = self._recording(series)
        return found

    def _recording(self, series: _Series) -> Callable[[float], None]:
        lock, counts, bounds = series.lock, series.counts, self._bounds
        if bounds is None:
            def increment(amount: float) -> None:
                with lock:
                    series.total += amount
            return increment

        def observe(value: float) -> None:
            index = bisect_left(bounds, value)  # the first bucket whose upper bound is >= value
            with lock:
                counts[index] += 1
                series.total += value
        return observe

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            items = list(self._series.items())
        if self._bounds is None:
            counter = CounterMetricFamily(self.name, self._documentation, labels=self._labels)
            for values, series in items:
                counter.add_metric(values, series.total)
            yield counter
            return
        histogram = HistogramMetricFamily(self.name, self._documentation, labels=self._labels)
        uppers = [floatToGoString(bound) for bound in self._bounds] + ["+Inf"]
        for values, series in items:
            with series.lock:
                counts, total = list(series.counts), series.total
            cumulative, buckets = 0, []
            for upper, count in zip(uppers, counts, strict=True):
                cumulative += count
                buckets.append((upper, cumulative))
            histogram.add_metric(values, buckets, total)
        yield histogram


_registry = CollectorRegistry(auto_describe=True)
_lock = threading.Lock()  # guards the lazily created batching collectors

_request_count = _Metric("/tensorflow/serving/request_count", "The total number of requests.",
                         ("model_name", "status"))
_request_latency = _Metric("/tensorflow/serving/request_latency",
                           "Distribution of wall time (in microseconds) for Tensorflow Serving request.",
                           ("model_name", "API", "entrypoint"), _LATENCY_BUCKETS)
_runtime_latency = _Metric("/tensorflow/serving/runtime_latency",
                           "Distribution of wall time (in microseconds) for Tensorflow runtime.",
                           ("model_name", "API", "runtime"), _LATENCY_BUCKETS)
_load_attempt_count = _Metric("/tensorflow/cc/saved_model/load_attempt_count",
                              "The number of times a SavedModel was successfully loaded.", ("model_path", "status"))
_load_latency = _Metric("/tensorflow/cc/saved_model/load_latency",
                        "Latency in microseconds for SavedModels that were successfully loaded.", ("model_path",))
_batching: dict[str, _Metric] = {}


#: TF Serving's batching_session metrics (``batching/batching_session.cc``): kind, buckets, labels.
_BATCHING_METRICS: dict[str, tuple[str, list[float] | None, tuple[str, ...]]] = {
    "queuing_latency": ("Distribution of wall time spent (in microseconds) in queuing", _QUEUING_BUCKETS,
                        ("thread_pool_name",)),
    "wrapped_run_count": ("Total count of run calls on the wrapped session", None, ()),
    "input_batch_size": ("Tracks the batch size distribution on the inputs.", _BATCH_SIZE_BUCKETS, ()),
    "processed_batch_size": ("Tracks the batch size distribution on processing.", _BATCH_SIZE_BUCKETS, ()),
    "padding_size": ("Tracks the padding size distribution on batches.", _BATCH_SIZE_BUCKETS,
                     ("execution_batch_size",)),
}
_BATCHING_PREFIX = "/tensorflow/serving/batching_session/"


def _batching_metric(path: str) -> _Metric:
    """The batching metrics exist from the first batch on, as TF Serving's function-level statics do."""
    with _lock:
        if not _batching:
            for short, (documentation, buckets, labels) in _BATCHING_METRICS.items():
                full = _BATCHING_PREFIX + short
                _batching[full] = _Metric(full, documentation, labels, buckets)
        return _batching[path]


# -- recording --------------------------------------------------------------------------------
# Requests record several samples each: each metric keeps one recorder per label values, so a
# sample costs a dict lookup and its bisect. Series live as long as their metric.


def record_request(model_name: str, status: str, api: str, entrypoint: str, latency_seconds: float) -> None:
    """One request: ``request_count`` always, ``request_latency`` (µs) only when it succeeded.

    ``status`` is the TF code name (``OK``, ``NOT_FOUND``, ...); ``api`` is ``Predict|Classify|Regress``
    for gRPC and the URL's verb (empty for status and metadata) for REST; ``entrypoint`` is
    ``GRPC`` or ``REST``.
    """
    _request_count.recorder((model_name, status))(1)
    if status == "OK":
        _request_latency.recorder((model_name, api, entrypoint))(latency_seconds * 1e6)


def record_runtime_latency(model_name: str, api: str, latency_seconds: float) -> None:
    """Time spent running the model for one request (runtime ``TF1``, as TF Serving labels SavedModel sessions)."""
    _runtime_latency.recorder((model_name, api, "TF1"))(latency_seconds * 1e6)


def record_load_attempt(model_path: str, succeeded: bool, latency_seconds: float) -> None:
    """One SavedModel load attempt (each retry counts); ``status`` is ``success`` or ``fail`` as in TF."""
    _load_attempt_count.recorder((model_path, "success" if succeeded else "fail"))(1)
    if succeeded:
        _load_latency.recorder((model_path,))(int(latency_seconds * 1e6))


class _BatchingSampler:
    """Records samples of one batching_session metric with fixed labels; the metric is made at the
    first sample, as TF Serving's function-level statics are made at the first batch."""

    __slots__ = ("_path", "_record", "_values")

    def __init__(self, path: str, values: tuple[str, ...]) -> None:
        self._path, self._values = path, values
        self._record: Callable[[float], None] | None = None

    def __call__(self, value: float) -> None:
        record = self._record
        if record is None:
            record = self._record = _batching_metric(self._path).recorder(self._values)
        record(value)


def batching_recorder(path: str, labels: Mapping[str, str]) -> Callable[[float], None]:
    """The recorder of a batching_session metric with these labels (the batching's ``MetricsRecorder``)."""
    return _BatchingSampler(path, tuple(labels.values()))  # positional: each has at most one label


# -- reading ----------------------------------------------------------------------------------
def metric_value(path: str) -> int:
    """The first point of a metric, by TF monitoring path (``HandleReloadConfigRequest``'s ``metric_names``).

    TF's first point is the first label combination in label-value order. 0 when the metric is
    unknown or has no point yet; for a histogram, its sample count.
    """
    name = tf_metric_name(path)
    for family in _registry.collect():
        if family.name == name:
            points = [s for s in family.samples if s.name in (name, name + "_total", name + "_count")]
            if points:
                return int(min(points, key=lambda s: tuple(s.labels.values())).value)
    return 0


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _bound(text: str) -> str:
    """A bucket's upper bound as TF prints it (``absl::StrCat(double)``: ``10``, ``32.4``, ``1.27482e+06``)."""
    return text if text == "+Inf" else "%g" % float(text)


def exposition() -> str:
    """The Prometheus page as TF Serving writes it: ``# TYPE`` lines, no ``# HELP``, no ``_total``/``_created``."""
    lines: list[str] = []
    for family in _registry.collect():
        lines.append(f"# TYPE {family.name} {family.type}")
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            name = family.name if sample.name == family.name + "_total" else sample.name
            labels = ",".join(f'{key}="{_escape(_bound(value) if key == "le" else value)}"'
                              for key, value in sample.labels.items())
            value = int(sample.value) if family.type == "counter" or sample.name.endswith(("_bucket", "_count")) \
                else floatToGoString(sample.value)
            lines.append(f"{name}{{{labels}}} {value}")
    return "\n".join(lines) + "\n"
