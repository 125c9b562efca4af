"""Batching parameters (``--enable_batching --batching_parameters_file``): TF Serving's ``BatchingParameters``.

Every field is optional; an unset one takes the default of TensorFlow's batch scheduler, which
:meth:`BatchingSettings.effective` fills in.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, fields, replace
from typing import Any

from google.protobuf.message import Message

from tfsk._base.messages import BatchingParameters

from ._findings import FindingList, ValidationReport
from ._textproto import (
    one_line_fields,
    parse_text,
    read_text,
    with_header,
    write_atomic,
)

#: Defaults TensorFlow's SharedBatchScheduler applies to unset fields (num_batch_threads: CPUs).
DEFAULT_MAX_BATCH_SIZE = 1000
DEFAULT_BATCH_TIMEOUT_MICROS = 0
DEFAULT_MAX_ENQUEUED_BATCHES = 10
DEFAULT_THREAD_POOL_NAME = "batch_threads"
#: The per-model file TF Serving reads from a version folder (``--enable_per_model_batching_parameters``).
PER_MODEL_BATCHING_FILE = "batching_params.pbtxt"

_WRAPPED = ("max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads",
            "thread_pool_name", "enable_large_batch_splitting", "max_execution_batch_size")


@dataclass(frozen=True)
class BatchingSettings:
    """Typed ``BatchingParameters``; ``None`` leaves a field unset (the scheduler's default)."""

    max_batch_size: int | None = None
    batch_timeout_micros: int | None = None
    max_enqueued_batches: int | None = None
    num_batch_threads: int | None = None
    thread_pool_name: str | None = None
    enable_large_batch_splitting: bool | None = None
    max_execution_batch_size: int | None = None
    allowed_batch_sizes: tuple[int, ...] = ()
    pad_variable_length_inputs: bool = False

    def to_proto(self) -> Message:
        """A ``tensorflow.serving.BatchingParameters``; unset fields stay unset."""
        message = BatchingParameters()
        for name in _WRAPPED:
            value = getattr(self, name)
            if value is not None:
                getattr(message, name).value = value
        message.allowed_batch_sizes.extend(self.allowed_batch_sizes)
        message.pad_variable_length_inputs = self.pad_variable_length_inputs
        return message

    @classmethod
    def from_proto(cls, message: Message) -> BatchingSettings:
        """The settings of a ``BatchingParameters`` message."""
        fields_of: Any = message
        wrapped = {name: getattr(fields_of, name).value for name in _WRAPPED if fields_of.HasField(name)}
        return cls(**wrapped, allowed_batch_sizes=tuple(fields_of.allowed_batch_sizes),
                   pad_variable_length_inputs=fields_of.pad_variable_length_inputs)

    def effective(self) -> BatchingSettings:
        """Every scheduler field filled in the way TF Serving fills unset ones."""
        splitting = bool(self.enable_large_batch_splitting)
        execution = self.max_execution_batch_size
        if splitting and execution is None:
            execution = self.max_batch_size or 0  # TF Serving reads the unset wrapper as 0
        return replace(
            self,
            max_batch_size=self.max_batch_size if self.max_batch_size is not None else DEFAULT_MAX_BATCH_SIZE,
            batch_timeout_micros=(self.batch_timeout_micros if self.batch_timeout_micros is not None
                                  else DEFAULT_BATCH_TIMEOUT_MICROS),
            max_enqueued_batches=(self.max_enqueued_batches if self.max_enqueued_batches is not None
                                  else DEFAULT_MAX_ENQUEUED_BATCHES),
            num_batch_threads=self.num_batch_threads if self.num_batch_threads is not None else os.cpu_count() or 1,
            thread_pool_name=self.thread_pool_name if self.thread_pool_name is not None else DEFAULT_THREAD_POOL_NAME,
            enable_large_batch_splitting=splitting,
            max_execution_batch_size=execution,
        )

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["allowed_batch_sizes"] = list(self.allowed_batch_sizes)
        return data


def format_batching_parameters(settings: BatchingSettings, header: str | None = None) -> str:
    """One field a line: ``max_batch_size { value: 128 }``, as TF Serving's examples write it."""
    return with_header(header, one_line_fields(settings.to_proto()))


def parse_batching_parameters(text: str, source: str = "<string>") -> BatchingSettings:
    return BatchingSettings.from_proto(parse_text(text, BatchingParameters, source, what="batching parameters"))


def read_batching_parameters(path: str | os.PathLike[str]) -> BatchingSettings:
    return parse_batching_parameters(read_text(path, "batching parameters"), os.fspath(path))


def write_batching_parameters(settings: BatchingSettings, path: str | os.PathLike[str],
                              header: str | None = None) -> bool:
    return write_atomic(path, format_batching_parameters(settings, header))


def validate_batching_settings(settings: BatchingSettings, source: str = "<batching>", *,
                               per_model: bool = False, model: str | None = None) -> ValidationReport:
    """The checks TF Serving makes when it wraps a model for batching (a failure there fails every load).

    ``per_model``: the settings are a version folder's ``batching_params.pbtxt``, whose thread
    settings TF Serving ignores (the batch threads are the server's, from the common file).
    """
    found = FindingList(model)
    load_fails = ("the version fails to load" if per_model
                  else "every model load fails with batching enabled")
    for name, minimum in (("max_batch_size", 1), ("batch_timeout_micros", 0), ("max_enqueued_batches", 1),
                          ("num_batch_threads", 1), ("max_execution_batch_size", 1)):
        value = getattr(settings, name)
        if value is not None and value < minimum:
            found.error("batching-range", name, f"{name} is {value}; it must be >= {minimum}",
                        f"set {name} {{ value: N }} with N >= {minimum}, or leave it out for the default")
    sizes = list(settings.allowed_batch_sizes)
    if any(size < 1 for size in sizes):
        found.error("allowed-batch-sizes", "allowed_batch_sizes", f"allowed_batch_sizes {sizes} holds a size < 1",
                    "list positive sizes in increasing order")
    if any(b <= a for a, b in itertools.pairwise(sizes)):
        found.error("allowed-batch-sizes", "allowed_batch_sizes",
                    f"allowed_batch_sizes {sizes} is not strictly increasing: batches are padded to the first size "
                    f"that fits, so the order matters", "sort the sizes and remove repeats")
    effective = settings.effective()
    if sizes and sizes[-1] != effective.max_batch_size:
        unset = "" if settings.max_batch_size is not None else f" (unset: the default {DEFAULT_MAX_BATCH_SIZE})"
        found.error("allowed-batch-sizes", "allowed_batch_sizes",
                    f"the last allowed batch size is {sizes[-1]} but max_batch_size is "
                    f"{effective.max_batch_size}{unset}: {load_fails}",
                    f"end allowed_batch_sizes with {effective.max_batch_size}, or set max_batch_size to {sizes[-1]}",
                    f"Last entry in allowed_batch_sizes must match max_batch_size; last entry was {sizes[-1]}; "
                    f"expected {effective.max_batch_size}")
    if effective.enable_large_batch_splitting:
        if settings.max_execution_batch_size is None and settings.max_batch_size is None:
            found.error("batch-splitting", "max_execution_batch_size",
                        "enable_large_batch_splitting without max_batch_size or max_execution_batch_size: TF "
                        "Serving then takes the unset max_batch_size as 0 for the execution batch size",
                        "set max_batch_size (and max_execution_batch_size if batches should be smaller)")
        elif (effective.max_execution_batch_size or 0) > (effective.max_batch_size or 0):
            found.error("batch-splitting", "max_execution_batch_size",
                        f"max_execution_batch_size {effective.max_execution_batch_size} is larger than "
                        f"max_batch_size {effective.max_batch_size}",
                        "keep max_execution_batch_size <= max_batch_size")
    elif settings.max_execution_batch_size is not None:
        found.warning("batch-splitting", "max_execution_batch_size",
                      "max_execution_batch_size is ignored unless enable_large_batch_splitting is true",
                      "set enable_large_batch_splitting { value: true }, or drop max_execution_batch_size")
    if per_model:
        for name in ("num_batch_threads", "thread_pool_name"):
            if getattr(settings, name) is not None:
                found.warning("per-model-threads", name,
                              f"{name} is ignored in a model's {PER_MODEL_BATCHING_FILE}: every model shares the "
                              "server's batch threads", f"set {name} in the server's --batching_parameters_file ([batching] "
                              "in tfsk.toml) and drop it here")
    elif settings.thread_pool_name == "":
        found.warning("thread-pool-name", "thread_pool_name", "thread_pool_name is set to an empty name",
                      f"leave it out (default {DEFAULT_THREAD_POOL_NAME!r}) or give a name")
    return ValidationReport(source, "batching", tuple(found.items))


def is_per_model_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is named like the per-model file TF Serving reads from a version folder."""
    return os.path.basename(os.fspath(path)) == PER_MODEL_BATCHING_FILE
