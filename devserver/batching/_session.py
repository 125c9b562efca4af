"""``--enable_batching``: TF Serving's ``BatchingSession`` around each loaded version's session.

Every session run of a batched version (Predict, Classify, Regress, MultiInference and warmup
alike) becomes a task in the queue of its *run signature* — the set of fed tensor names and the
set of fetched tensor names. The queues of one version are created at load, one per SignatureDef,
and on first use for any other combination (an ``output_filter``, MultiInference), as TF Serving's
default scheduler creator does. A batch thread of the server-wide :class:`SharedBatchScheduler`
concatenates the tasks' inputs along dimension 0 (padding them when asked), runs the session once
fetching every output of the run signature, and splits each output back by rows
(``batching_session.cc``, ``batching_util.cc``, ``bundle_factory_util.cc``).

A task that TensorFlow would run at once as a batch of its own (its queue empty, a slot free, no
timeout to wait for company, no padding) runs straight on its request's thread, with the same
checks, slot accounting and metrics: the common case when load is light or the model is small,
where building a batch to merge and split would cost more than the run.

Metrics: TF Serving records its batching metrics at the points marked ``self._sample_*``, under
the names bound in ``__init__``; the server passes a ``MetricsRecorder`` to receive them.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from tfsk import serving_config

from .._status import StatusError
from ._scheduler import Batch, QueueOptions, SharedBatchScheduler, Waiter

__all__ = ["PER_MODEL_FILE", "BatchingSession", "MetricsRecorder", "ServerBatching"]

logger = logging.getLogger(__name__)

#: The file TF Serving reads from a version folder with ``--enable_per_model_batching_parameters``.
PER_MODEL_FILE = serving_config.PER_MODEL_BATCHING_FILE
#: TF Serving's thread pool name when ``--enable_batching`` is given without a parameters file.
DEFAULT_SERVER_POOL = "model_server_batch_threads"
_PREFIX = "/tensorflow/serving/batching_session/"

#: ``recorder(metric_name, labels)``: the function that records samples of one of TF Serving's
#: batching metrics with those labels (bound once, so a sample costs one call).
MetricsRecorder = Callable[[str, Mapping[str, str]], Callable[[float], None]]
RunFunction = Callable[[Mapping[str, np.ndarray], Sequence[str]], list[np.ndarray]]
RunSignature = tuple[frozenset[str], frozenset[str]]


def _no_sample(_value: float) -> None:
    pass


def _no_recorder(_name: str, _labels: Mapping[str, str]) -> Callable[[float], None]:
    return _no_sample


class _RunTask:
    """One session run waiting in a queue (or a piece of one, after large-batch splitting)."""

    __slots__ = ("enqueue_time", "error", "fetches", "inputs", "outputs", "size", "waiter", "_on_done")

    def __init__(self, inputs: list[tuple[str, np.ndarray]], size: int, fetches: Sequence[str],
                 enqueue_time: float, on_done: Callable[[_RunTask], None] | None = None,
                 waiter: Waiter | None = None) -> None:
        self.inputs = inputs
        self.size = size
        self.fetches = fetches
        self.enqueue_time = enqueue_time
        self.outputs: list[np.ndarray] | None = None
        self.error: StatusError | None = None
        #: The request thread waiting for this run (a piece shares its whole's).
        self.waiter = waiter or Waiter()
        self._on_done = on_done

    def finish(self, outputs: list[np.ndarray] | None = None, error: StatusError | None = None) -> None:
        self.outputs, self.error = outputs, error
        if self._on_done is not None:
            self._on_done(self)  # a piece: the whole finishes (and wakes its thread) with its last piece
        else:
            self.waiter.wake()

    def _done(self) -> bool:
        return self.outputs is not None or self.error is not None

    def wait(self) -> list[np.ndarray]:
        self.waiter.wait(self._done)
        if self.error is not None:
            raise StatusError(self.error.code, self.error.message)
        assert self.outputs is not None
        return self.outputs

    def split(self, sizes: list[int]) -> list[_RunTask]:
        """``SplitInputTask``: pieces of ``sizes`` rows; the whole finishes when every piece has."""
        bounds = np.cumsum(sizes)[:-1]
        columns = [(name, np.split(value, bounds)) for name, value in self.inputs]
        pieces: list[_RunTask] = []
        lock, left = threading.Lock(), [len(sizes)]

        def piece_done(_piece: _RunTask) -> None:
            with lock:
                left[0] -= 1
                if left[0]:
                    return
            errors = [p.error for p in pieces if p.error is not None]
            if errors:
                self.finish(error=errors[0])
                return
            results = [p.outputs for p in pieces if p.outputs is not None]
            outputs = [np.concatenate([result[i] for result in results]) for i in range(len(self.fetches))]
            self.finish(outputs)

        for index, size in enumerate(sizes):
            pieces.append(_RunTask([(name, parts[index]) for name, parts in columns], size, self.fetches,
                                   self.enqueue_time, piece_done, self.waiter))
        return pieces


def _input_size(inputs: list[tuple[str, np.ndarray]], sample: Callable[[float], None]) -> int:
    """``ComputeTensorBatchSize``: every input's dimension 0, which must agree."""
    if not inputs:
        raise StatusError.invalid_argument("Batching Run() must have at least one input tensor")
    size: int | None = None
    for _, value in inputs:
        if value.ndim == 0:
            raise StatusError.invalid_argument("Batching Run() input tensors must have at least one dimension")
        if size is None:
            size = value.shape[0]
        elif value.shape[0] != size:
            raise StatusError.invalid_argument("Batching Run() input tensors must have equal 0th-dimension size")
    for _, value in inputs:
        sample(value.shape[0])
    assert size is not None
    return size


def _round_to_allowed(allowed: Sequence[int], size: int) -> int:
    for candidate in allowed:
        if candidate >= size:
            return candidate
    return size


def _max_dims(tasks: Sequence[_RunTask]) -> dict[str, list[int]]:
    """``CalculateMaxDimSizes``: per input name, the largest size of each dimension across the batch."""
    dims: dict[str, list[int]] = {}
    for task in tasks:
        for name, value in task.inputs:
            current = dims.setdefault(name, [0] * value.ndim)
            for axis, extent in enumerate(value.shape[:len(current)]):
                current[axis] = max(current[axis], extent)
    return dims


def _pad(value: np.ndarray, max_dims: Sequence[int]) -> np.ndarray:
    """``AddPadding``: grow every dimension but the 0th to ``max_dims`` with the tensor's first element."""
    if not 1 <= value.ndim <= 6:
        raise StatusError.invalid_argument("Only tensors with rank from 1 to 6 can be padded.")
    shape = (value.shape[0],) + tuple(max(d, m) for d, m in zip(value.shape[1:], max_dims[1:], strict=False))
    if math.prod(shape) == value.size:
        return value.reshape(shape)
    if value.size < 1:
        raise StatusError.invalid_argument("Got empty tensor in batch of non-empty tensors.")
    padded = np.full(shape, value.flat[0], dtype=value.dtype)
    padded[tuple(slice(0, d) for d in value.shape)] = value
    return padded


def _check_batched_outputs(outputs: Sequence[np.ndarray], size: int) -> None:
    """``SplitOutputTensors``' checks: every output has the batch's rows along dimension 0."""
    for value in outputs:
        if value.ndim == 0:
            raise StatusError.failed_precondition("Batched output tensor has 0 dimensions")
        if value.shape[0] != size:
            raise StatusError.failed_precondition(
                "Batched output tensor's 0th dimension does not equal the sum of the 0th dimension sizes of the "
                "input tensors")


class BatchingSession:
    """The batching wrapper of one model version's session."""

    def __init__(self, scheduler: SharedBatchScheduler, settings: serving_config.BatchingSettings,
                 run: RunFunction, signature_defs: Mapping[str, Any], record: MetricsRecorder | None = None) -> None:
        effective = settings.effective()
        assert effective.max_batch_size is not None
        allowed = tuple(settings.allowed_batch_sizes)
        if allowed and allowed[-1] != effective.max_batch_size:
            raise StatusError.invalid_argument(
                f"Last entry in allowed_batch_sizes must match max_batch_size; last entry was {allowed[-1]}; "
                f"expected {effective.max_batch_size}")
        self._options = QueueOptions(
            input_batch_size_limit=effective.max_batch_size,
            batch_timeout_micros=effective.batch_timeout_micros or 0,
            max_enqueued_batches=effective.max_enqueued_batches or 0,
            enable_large_batch_splitting=bool(effective.enable_large_batch_splitting),
            max_execution_batch_size=effective.max_execution_batch_size or 0,
        )
        self._allowed = allowed
        self._pad_inputs = settings.pad_variable_length_inputs
        self._scheduler = scheduler
        self._run = run
        bind = record or _no_recorder
        self._sample_input_size = bind(_PREFIX + "input_batch_size", {})
        self._sample_queuing = bind(_PREFIX + "queuing_latency", {"thread_pool_name": ""})
        self._count_wrapped_run = bind(_PREFIX + "wrapped_run_count", {})
        self._sample_processed = bind(_PREFIX + "processed_batch_size", {})
        self._bind = bind
        self._padding_samplers: dict[int, Callable[[float], None]] = {}  # by execution batch size
        self._queues: dict[RunSignature, Any] = {}
        self._lock = threading.Lock()
        self._closed = False
        try:
            for signature in signature_defs.values():
                self._queue({info.name for info in signature.inputs.values()},
                            {info.name for info in signature.outputs.values()})
        except StatusError:
            self.close()
            raise

    def _queue(self, inputs: set[str] | frozenset[str], outputs: set[str] | frozenset[str]) -> Any:
        key = (frozenset(inputs), frozenset(outputs))
        queue = self._queues.get(key)
        if queue is None:
            with self._lock:
                queue = self._queues.get(key)
                if queue is None:
                    input_names, output_names = sorted(key[0]), sorted(key[1])
                    queue = self._scheduler.add_queue(
                        self._options, lambda batch: self._process(input_names, output_names, batch))
                    self._queues[key] = queue
        return queue

    def run(self, feeds: Mapping[str, np.ndarray], fetches: Sequence[str]) -> list[np.ndarray]:
        """Run through the queue of this run signature; block until the batch holding it has run."""
        enqueued = time.monotonic()
        wanted = frozenset(fetches)
        queue = self._queue(frozenset(feeds), wanted)
        inputs = sorted(feeds.items())
        size = _input_size(inputs, self._sample_input_size)
        if (len(wanted) == len(fetches) and _round_to_allowed(self._allowed, size) == size
                and queue.claim_alone(size)):
            return self._run_alone(queue, feeds, fetches, size, enqueued)
        task = _RunTask(inputs, size, list(fetches), enqueued)
        queue.schedule(task)
        return task.wait()

    def _sample_padding(self, padding: int, execution_size: int) -> None:
        sample = self._padding_samplers.get(execution_size)
        if sample is None:
            sample = self._bind(_PREFIX + "padding_size", {"execution_batch_size": str(execution_size)})
            self._padding_samplers[execution_size] = sample
        sample(padding)

    def _run_alone(self, queue: Any, feeds: Mapping[str, np.ndarray], fetches: Sequence[str], size: int,
                   enqueued: float) -> list[np.ndarray]:
        """A batch of one task, its slot claimed: ``ProcessBatch`` with nothing to merge or split."""
        try:
            self._sample_queuing((time.monotonic() - enqueued) * 1e6)
            self._sample_padding(0, size)
            self._sample_processed(size)
            try:
                outputs = self._run(feeds, fetches)
            finally:
                self._count_wrapped_run(1)
            _check_batched_outputs(outputs, size)
            return outputs
        except StatusError:
            raise
        except Exception as error:  # noqa: BLE001 - as a batch's failure is reported to its tasks
            logger.exception("batch failed")
            raise StatusError.internal(f"Batch processing failed: {error}") from None
        finally:
            queue.release_alone()

    def _process(self, input_names: list[str], output_names: list[str], batch: Batch) -> None:
        """``ProcessBatch``: merge, one run, split; every task of the batch gets the run's status."""
        tasks: list[_RunTask] = batch.tasks
        dequeued = time.monotonic()
        for task in tasks:
            self._sample_queuing((dequeued - task.enqueue_time) * 1e6)
        try:
            padded_size = _round_to_allowed(self._allowed, batch.size)
            merged = self._merge(input_names, tasks, padded_size - batch.size)
            try:
                combined = self._run(merged, output_names)
            finally:
                self._count_wrapped_run(1)
            self._split(output_names, combined, tasks, batch.size, padded_size)
        except StatusError as error:
            for task in tasks:
                task.finish(error=error)
        except Exception as error:  # noqa: BLE001 - never leave a caller waiting forever
            logger.exception("batch failed")
            for task in tasks:
                task.finish(error=StatusError.internal(f"Batch processing failed: {error}"))

    def _merge(self, input_names: list[str], tasks: list[_RunTask], padding: int) -> dict[str, np.ndarray]:
        """``MergeInputTensors``: per input name, the tasks' tensors (padded if asked) concatenated."""
        padded_size = padding + sum(t.size for t in tasks)
        self._sample_padding(padding, padded_size)
        self._sample_processed(padded_size)
        max_dims = _max_dims(tasks) if self._pad_inputs else {}
        to_merge: dict[str, list[np.ndarray]] = {}
        for index, task in enumerate(tasks):
            for name, value in task.inputs:
                values = to_merge.setdefault(name, [])
                if self._pad_inputs:
                    value = _pad(value, max_dims[name])
                elif index > 0 and (value.ndim != values[0].ndim or value.shape[1:] != values[0].shape[1:]):
                    raise StatusError.failed_precondition(
                        f"Tensors with name '{name}' from different tasks have different shapes and padding is "
                        "turned off. Set pad_variable_length_inputs to true, or ensure that all tensors with the same "
                        "name have equal dimensions starting with the first dim.")
                values.append(value)
                if index == len(tasks) - 1 and padding > 0:
                    # TF Serving pads the batch with copies of the last task's first row.
                    values.extend([value[:1]] * padding)
        if sorted(to_merge) != input_names:
            raise StatusError.internal("One or more tasks does not conform to batch signature")
        merged = {}
        for name in input_names:
            values = to_merge[name]
            if len(values) == 1:
                merged[name] = values[0]
                continue
            if any(v.dtype != values[0].dtype for v in values):
                raise StatusError.internal(f"Tensor concat operation failed: mixed dtypes for '{name}'")
            try:
                merged[name] = np.concatenate(values)
            except ValueError as error:
                raise StatusError.internal(f"Tensor concat operation failed: {error}") from None
        return merged

    @staticmethod
    def _split(output_names: list[str], combined: list[np.ndarray], tasks: list[_RunTask], size: int,
               padded_size: int) -> None:
        """``SplitOutputTensors``: each output's rows back to the task they came from."""
        if len(combined) != len(output_names):
            raise StatusError.internal("Wrong number of batched output tensors")
        _check_batched_outputs(combined, padded_size)
        if len(tasks) == 1 and padded_size == size:  # nothing to split (a lone task, no padding)
            by_name = dict(zip(output_names, combined, strict=True))
            tasks[0].finish([by_name[name] for name in tasks[0].fetches])
            return
        bounds = np.cumsum([task.size for task in tasks])[:-1]
        pieces = {name: np.split(value[:size], bounds) for name, value in zip(output_names, combined, strict=True)}
        for index, task in enumerate(tasks):
            task.finish([pieces[name][index] for name in task.fetches])

    def close(self) -> None:
        """Wait for every queued run, then drop the queues (the version is unloading)."""
        with self._lock:
            queues, self._queues = list(self._queues.values()), {}
        for queue in queues:
            queue.close_and_wait()


class ServerBatching:
    """The server's batching set-up: the shared scheduler and the parameters a version is wrapped with."""

    def __init__(self, common: serving_config.BatchingSettings, per_model: bool,
                 record: MetricsRecorder | None = None) -> None:
        self.common = common
        self.per_model = per_model
        self.record = record
        effective = common.effective()
        assert effective.num_batch_threads is not None and effective.thread_pool_name is not None
        self.scheduler = SharedBatchScheduler(effective.num_batch_threads, effective.thread_pool_name)

    @classmethod
    def from_flags(cls, enable_batching: bool, parameters_file: str, per_model: bool,
                   record: MetricsRecorder | None = None) -> ServerBatching | None:
        """What ``server.cc`` does with the batching flags; StatusError is a start-up failure."""
        if not enable_batching:
            if parameters_file:
                raise StatusError.invalid_argument(
                    "server_options.batching_parameters_file is set without setting "
                    "server_options.enable_batching to true.")
            return None
        if parameters_file:
            common = read_parameters(Path(parameters_file))
        else:
            common = serving_config.BatchingSettings(thread_pool_name=DEFAULT_SERVER_POOL)
        return cls(common, per_model, record)

    def parameters_for(self, version_path: Path) -> serving_config.BatchingSettings | None:
        """``GetPerModelBatchingParams``: the version's own file when per-model, else the common ones.

        With per-model parameters a version without the file is not batched at all; its file's
        thread settings are ignored (the batch threads are the server's).
        """
        if not self.per_model:
            return self.common
        path = version_path / PER_MODEL_FILE
        return read_parameters(path) if path.is_file() else None

    def wrap(self, servable: Any) -> None:
        """Route ``servable.run`` through a BatchingSession, before warmup runs (TF Serving's order)."""
        settings = self.parameters_for(servable.path)
        if settings is None:
            return
        logger.info("Wrapping session to perform batch processing")
        servable.batching = BatchingSession(self.scheduler, settings, servable.run_unbatched,
                                            servable.signature_defs, self.record)

    def stop(self) -> None:
        self.scheduler.stop()


def read_parameters(path: Path) -> serving_config.BatchingSettings:
    """``ParseProtoTextFile<BatchingParameters>`` with TF Serving's errors."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise StatusError.not_found(f"{path}; {error.strerror}") from None
    except UnicodeDecodeError:
        raise StatusError.invalid_argument(f"Invalid protobuf file: '{path}'") from None
    try:
        return serving_config.parse_batching_parameters(text, source=str(path))
    except serving_config.ConfigParseError as error:
        logger.error("Error parsing text-format tensorflow.serving.BatchingParameters: %s:%s: %s",
                     error.line, error.column, error.reason)
        raise StatusError(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid protobuf file: '{path}'") from None
