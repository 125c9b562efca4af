"""TF Serving's monitoring metrics, kept in prometheus-client collectors and printed as TF Serving prints them.

TF Serving names a metric after its TensorFlow monitoring path with every character outside
``[a-zA-Z0-9_]`` turned into ``:`` (``/tensorflow/serving/request_count`` ->
``:tensorflow:serving:request_count``), writes no ``# HELP`` lines and no ``_total`` suffix, and
like TF's monitoring library keeps one set of metrics per process. The values live in
prometheus-client's ``Counter``/``Histogram`` (thread-safe, one registry); :func:`exposition`
prints them in TF Serving's page format, which Prometheus and ``promtool`` parse.

Counting follows TF Serving: gRPC Predict/Classify/Regress and every REST ``/v1`` request count
in ``request_count``; ``request_latency`` records only successful requests; each SavedModel load
attempt counts in ``load_attempt_count``. Other parts of the devserver (batching) record through
the functions here, never through the collectors.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.utils import floatToGoString

__all__ = [
    "exposition",
    "metric_value",
    "record_batching_sample",
    "record_load_attempt",
    "record_request",
    "record_runtime_latency",
]

def _exponential(scale: float, growth: float, count: int) -> list[float]:
    """TF monitoring's ``Buckets::Exponential`` upper bounds (the +Inf bucket is added by the collector)."""
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


_registry = CollectorRegistry(auto_describe=True)
_lock = threading.Lock()  # guards the lazily created batching collectors


def _counter(path: str, documentation: str, labels: Iterable[str]) -> Counter:
    return Counter(tf_metric_name(path), documentation, list(labels), registry=_registry)


def _histogram(path: str, documentation: str, labels: Iterable[str], buckets: list[float]) -> Histogram:
    return Histogram(tf_metric_name(path), documentation, list(labels), buckets=buckets, registry=_registry)


_request_count = _counter("/tensorflow/serving/request_count",
                          "The total number of requests.", ("model_name", "status"))
_request_latency = _histogram("/tensorflow/serving/request_latency",
                              "Distribution of wall time (in microseconds) for Tensorflow Serving request.",
                              ("model_name", "API", "entrypoint"), _LATENCY_BUCKETS)
_runtime_latency = _histogram("/tensorflow/serving/runtime_latency",
                              "Distribution of wall time (in microseconds) for Tensorflow runtime.",
                              ("model_name", "API", "runtime"), _LATENCY_BUCKETS)
_load_attempt_count = _counter("/tensorflow/cc/saved_model/load_attempt_count",
                               "The number of times a SavedModel was successfully loaded.", ("model_path", "status"))
_load_latency = _counter("/tensorflow/cc/saved_model/load_latency",
                         "Latency in microseconds for SavedModels that were successfully loaded.", ("model_path",))
_batching: dict[str, Counter | Histogram] = {}


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


def _batching_metric(path: str) -> Counter | Histogram:
    """The batching metrics exist from the first batch on, as TF Serving's function-level statics do."""
    with _lock:
        if not _batching:
            for short, (documentation, buckets, labels) in _BATCHING_METRICS.items():
                full = _BATCHING_PREFIX + short
                _batching[full] = (_counter(full, documentation, labels) if buckets is None
                                   else _histogram(full, documentation, labels, buckets))
        return _batching[path]


# -- recording --------------------------------------------------------------------------------
# Requests record several samples each: the collectors' children are looked up once per label
# values and kept, so a sample costs its inc/observe only (labels() takes a lock and checks the
# names on every call). Children live as long as their collector; nothing here removes one.
_recorders: dict[tuple[str, tuple[str, ...]], Callable[[float], None]] = {}


def _recorder(metric: Counter | Histogram, key: str, values: tuple[str, ...]) -> Callable[[float], None]:
    found = _recorders.get((key, values))
    if found is None:
        child = metric.labels(*values) if values else metric
        found = _recorders.setdefault((key, values), child.inc if isinstance(metric, Counter) else child.observe)
    return found


def record_request(model_name: str, status: str, api: str, entrypoint: str, latency_seconds: float) -> None:
    """One request: ``request_count`` always, ``request_latency`` (µs) only when it succeeded.

    ``status`` is the TF code name (``OK``, ``NOT_FOUND``, ...); ``api`` is ``Predict|Classify|Regress``
    for gRPC and the URL's verb (empty for status and metadata) for REST; ``entrypoint`` is
    ``GRPC`` or ``REST``.
    """
    _recorder(_request_count, "request_count", (model_name, status))(1)
    if status == "OK":
        _recorder(_request_latency, "request_latency", (model_name, api, entrypoint))(latency_seconds * 1e6)


def record_runtime_latency(model_name: str, api: str, latency_seconds: float) -> None:
    """Time spent running the model for one request (runtime ``TF1``, as TF Serving labels SavedModel sessions)."""
    _recorder(_runtime_latency, "runtime_latency", (model_name, api, "TF1"))(latency_seconds * 1e6)


def record_load_attempt(model_path: str, succeeded: bool, latency_seconds: float) -> None:
    """One SavedModel load attempt (each retry counts); ``status`` is ``success`` or ``fail`` as in TF."""
    _load_attempt_count.labels(model_path, "success" if succeeded else "fail").inc()
    if succeeded:
        _load_latency.labels(model_path).inc(int(latency_seconds * 1e6))


def record_batching_sample(path: str, value: float, labels: Mapping[str, str]) -> None:
    """One sample of a batching_session metric, as the devserver's batching reports it (``MetricsRecorder``)."""
    values = tuple(labels.values())  # positional: each batching metric has at most one label
    record = _recorders.get((path, values)) or _recorder(_batching_metric(path), path, values)
    record(value)


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
