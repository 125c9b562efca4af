"""tf.Example inputs read from a request's wire bytes, and Classify/Regress answers written as wire bytes.

TF Serving feeds each Example's serialized bytes (``internal::SerializedInput`` reads them as
``repeated bytes``); they are already in the request. Parsing the request made a protobuf
message per Example, then a bytes object per Example, then TensorFlow's string tensor: 27 times
the request for a million small Examples. Here the request's fields are walked without parsing
the Examples: each one is a span (offset, length) of the request's bytes, checked for validity
a megabyte at a time by the protobuf runtime (so a request is refused exactly where parsing it
would fail), and the feed is built from the spans -- a fixed-width ``S`` array, a view of the
request when every Example has the same length -- which TensorFlow copies into its tensor.

Protobuf's rules for repeated and merged fields are kept: a repeated ``input`` or list merges,
a oneof switching kind drops what came before, contexts given twice merge (their bytes
concatenate), unknown fields are skipped. Examples are fed as they were sent, not re-serialized;
TensorFlow's example parsing reads both alike (the last of repeated keys wins either way).
"""

from __future__ import annotations

import array
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from google.protobuf.message import DecodeError
from tensorflow.core.example import example_pb2
from tensorflow_serving.apis import classification_pb2, inference_pb2, input_pb2, model_pb2, regression_pb2

__all__ = ["ExampleSpans", "ExamplesRequest", "read_examples_request", "regression_result_bytes",
           "scores_result_bytes", "spans_of_input", "wrap"]

_VARINT, _FIXED64, _LENGTH, _START_GROUP, _END_GROUP, _FIXED32 = 0, 1, 2, 3, 4, 5
#: Examples are checked by the protobuf runtime in pieces of about this many bytes.
_CHECK_PIECE = 1 << 20
_EXAMPLE_TAG = 0x0A  # field 1, length-delimited: ExampleList.examples and ExampleListWithContext.examples
#: Requests smaller than this are parsed by the protobuf runtime: up to a few dozen examples, its one
#: C call and a bytes object per example cost less than numpy's per-call overhead (measured).
PARSE_BELOW = 1 << 11


def _varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise DecodeError("truncated or overlong varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _skip(data: bytes, pos: int, end: int, number: int, wire_type: int) -> int:
    """The position after the value of a field whose key was just read (groups skipped whole)."""
    if wire_type == _VARINT:
        return _varint(data, pos, end)[1]
    if wire_type == _LENGTH:
        length, pos = _varint(data, pos, end)
        pos += length
    elif wire_type == _FIXED64:
        pos += 8
    elif wire_type == _FIXED32:
        pos += 4
    elif wire_type == _START_GROUP:
        while True:
            key, pos = _varint(data, pos, end)
            if key & 7 == _END_GROUP:
                if key >> 3 != number:
                    raise DecodeError("mismatched end of group")
                return pos
            pos = _skip(data, pos, end, key >> 3, key & 7)
    else:
        raise DecodeError(f"invalid wire type {wire_type}")
    if pos > end:
        raise DecodeError("a field runs past the end")
    return pos


def _fields(data: bytes, pos: int, end: int) -> Any:
    """(number, wire type, start, end) of each field; start/end frame a length-delimited value."""
    while pos < end:
        key, pos = _varint(data, pos, end)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise DecodeError("field number 0")
        if wire_type == _LENGTH:
            length, start = _varint(data, pos, end)
            pos = start + length
            if pos > end:
                raise DecodeError("a field runs past the end")
            yield number, wire_type, start, pos
        else:
            after = _skip(data, pos, end, number, wire_type)
            yield number, wire_type, pos, after
            pos = after


@dataclass
class ExampleSpans:
    """Where each Example's bytes are in ``data``, in request order, and the context's bytes."""

    data: bytes
    context: bytes = b""
    #: One run of Examples of the same length back to back: (first payload offset, stride, length, count).
    uniform: tuple[int, int, int, int] | None = None
    _offsets: Any = field(default_factory=lambda: array.array("q"))
    _lengths: Any = field(default_factory=lambda: array.array("q"))
    #: Ranges of ``data`` holding Example fields (and only fields of an ExampleList[WithContext]), to check.
    pieces: list[tuple[int, int]] = field(default_factory=list)
    #: A small request's examples, parsed and serialized (context in front) as TF Serving feeds them.
    items: list[bytes] | None = None

    @property
    def count(self) -> int:
        if self.items is not None:
            return len(self.items)
        return self.uniform[3] if self.uniform else len(self._offsets)

    def offsets(self) -> np.ndarray:
        if self.uniform:
            first, stride, _, count = self.uniform
            return first + stride * np.arange(count, dtype=np.int64)
        return np.frombuffer(self._offsets, dtype=np.int64) if self._offsets else np.zeros(0, np.int64)

    def lengths(self) -> np.ndarray:
        if self.uniform:
            return np.broadcast_to(np.int64(self.uniform[2]), (self.uniform[3],))
        return np.frombuffer(self._lengths, dtype=np.int64) if self._lengths else np.zeros(0, np.int64)

    def check(self) -> None:
        """DecodeError where parsing the request would fail: every Example, and the context, are parsed."""
        for start, end in self.pieces:
            input_pb2.ExampleList.FromString(self.data[start:end])
        if self.context:  # fed re-serialized, as TF Serving does (a context given twice is merged)
            self.context = example_pb2.Example.FromString(self.context).SerializeToString()

    def _read_list(self, start: int, end: int, with_context: bool) -> None:
        """The fields of one ExampleList (or ExampleListWithContext) occurrence."""
        data = self.data
        pos = self._uniform_prefix(start, end)
        offsets, lengths = self._offsets, self._lengths
        piece = pos
        context: list[bytes] = [self.context] if with_context and self.context else []
        while pos < end:
            if pos - piece >= _CHECK_PIECE:
                self.pieces.append((piece, pos))
                piece = pos
            if data[pos] == _EXAMPLE_TAG:  # the common field, read inline
                length = data[pos + 1] if pos + 1 < end else 0x80
                if length < 0x80:
                    first = pos + 2
                else:
                    length, first = _varint(data, pos + 1, end)
                pos = first + length
                if pos > end:
                    raise DecodeError("an Example runs past the end")
                offsets.append(first)
                lengths.append(length)
                continue
            key, after = _varint(data, pos, end)
            number, wire_type = key >> 3, key & 7
            if number == 0:
                raise DecodeError("field number 0")
            if with_context and number == 2 and wire_type == _LENGTH:
                size, first = _varint(data, after, end)
                pos = first + size
                if pos > end:
                    raise DecodeError("the context runs past the end")
                context.append(data[first:pos])  # a context given again merges into the first
                continue
            pos = _skip(data, after, end, number, wire_type)
        if pos > piece:
            self.pieces.append((piece, pos))
        if with_context:
            self.context = b"".join(context)

    def _uniform_prefix(self, start: int, end: int) -> int:
        """Take the leading run of same-length Examples in one numpy step; the position after it."""
        if self._offsets or self.uniform or end - start < 2 or self.data[start] != _EXAMPLE_TAG:
            return start
        try:
            length, first = _varint(self.data, start + 1, end)
        except DecodeError:
            return start
        stride = first - start + length
        count = (end - start) // stride
        if count < 2:
            return start
        rows = np.frombuffer(self.data, np.uint8, count * stride, start).reshape(count, stride)
        head = rows[:, : first - start]
        mismatch = np.flatnonzero((head != head[0]).any(axis=1))
        if mismatch.size:
            count = int(mismatch[0])
        if count < 2:
            return start
        self.uniform = (first, stride, length, count)
        pos = start
        while pos < start + count * stride:  # pieces at Example boundaries, for the check
            step = max(1, _CHECK_PIECE // stride) * stride
            self.pieces.append((pos, min(pos + step, start + count * stride)))
            pos += step
        return start + count * stride

    def _finish_uniform(self) -> None:
        """Spell a leading uniform run out as offsets once other Examples follow it."""
        if self.uniform and self._offsets:
            tail_offsets, tail_lengths = self._offsets, self._lengths
            first, stride, length, count = self.uniform
            self.uniform = None
            self._offsets = array.array("q", (first + stride * np.arange(count, dtype=np.int64)).tobytes())
            self._offsets.extend(tail_offsets)
            self._lengths = array.array("q", np.full(count, length, np.int64).tobytes())
            self._lengths.extend(tail_lengths)

    def clear(self) -> None:
        self.uniform, self.context, self.pieces = None, b"", []
        self._offsets, self._lengths = array.array("q"), array.array("q")


def spans_of_input(data: bytes, pieces: list[tuple[int, int]]) -> tuple[str | None, ExampleSpans]:
    """The oneof's kind (None if unset) and the Examples of an ``Input`` given as the ranges of
    ``data`` its occurrences take (a message field given twice merges). DecodeError if malformed."""
    spans, kind = ExampleSpans(data), None
    for start, end in pieces:
        for number, wire_type, first, last in _fields(data, start, end):
            if wire_type != _LENGTH or number not in (1, 2):
                continue
            this = "example_list" if number == 1 else "example_list_with_context"
            if kind != this:  # a oneof switching kind drops what it held
                spans.clear()
                kind = this
            spans._read_list(first, last, with_context=number == 2)  # noqa: SLF001 - same module
    spans._finish_uniform()  # noqa: SLF001
    return kind, spans


@dataclass
class ExamplesRequest:
    """A Classification/Regression/MultiInference request read from its wire bytes."""

    model_spec: Any
    has_model_spec: bool
    kind: str | None
    examples: ExampleSpans
    tasks: list[Any]


def _parsed(data: bytes, multi: bool) -> ExamplesRequest:
    """A small request, parsed by the protobuf runtime (one C call, faster than walking its fields)."""
    if multi:
        message: Any = inference_pb2.MultiInferenceRequest.FromString(data)
        spec, has_spec, tasks = model_pb2.ModelSpec(), False, list(message.tasks)
    else:  # ClassificationRequest and RegressionRequest have the same fields
        message = classification_pb2.ClassificationRequest.FromString(data)
        spec, has_spec, tasks = message.model_spec, message.HasField("model_spec"), []
    kind = message.input.WhichOneof("kind")
    spans = ExampleSpans(data)
    if kind == "example_list":
        spans.items = [example.SerializeToString() for example in message.input.example_list.examples]
    elif kind == "example_list_with_context":
        holder = message.input.example_list_with_context
        spans.context = holder.context.SerializeToString()
        spans.items = [spans.context + example.SerializeToString() for example in holder.examples]
    else:
        spans.items = []
    return ExamplesRequest(spec, has_spec, kind, spans, tasks)


def read_examples_request(data: bytes, *, multi: bool = False) -> ExamplesRequest:
    """Read a ClassificationRequest / RegressionRequest (``model_spec`` = 1, ``input`` = 2) or a
    MultiInferenceRequest (``tasks`` = 1, ``input`` = 2); DecodeError where the runtime's parse fails.
    Below ``PARSE_BELOW`` bytes the runtime parses it; above, its fields are walked in place."""
    if len(data) < PARSE_BELOW:
        return _parsed(data, multi)
    specs: list[bytes] = []
    tasks: list[Any] = []
    inputs: list[tuple[int, int]] = []
    has_spec = False
    for number, wire_type, start, end in _fields(data, 0, len(data)):
        if wire_type != _LENGTH:
            continue
        if number == 1 and multi:
            tasks.append(inference_pb2.InferenceTask.FromString(data[start:end]))
        elif number == 1:
            has_spec = True
            specs.append(data[start:end])
        elif number == 2:
            inputs.append((start, end))
    spec = model_pb2.ModelSpec.FromString(b"".join(specs))  # a message given twice merges
    kind, spans = spans_of_input(data, inputs)
    spans.check()
    return ExamplesRequest(spec, has_spec, kind, spans, tasks)


# Answers ----------------------------------------------------------------------------------------

def _length_prefix(tag: int, size: int) -> bytes:
    if size < 0x80:
        return bytes((tag, size))
    out = bytearray((tag,))
    while size > 0x7F:
        out.append((size & 0x7F) | 0x80)
        size >>= 7
    out.append(size)
    return bytes(out)


def wrap(tag: int, payload: bytes | memoryview) -> list[bytes | memoryview]:
    """A length-delimited field (``tag`` = its key byte) holding ``payload``, as pieces to join."""
    return [_length_prefix(tag, len(payload)), payload]


def _float_entries(values: np.ndarray, head: bytes, key: int, zero_head: bytes) -> np.ndarray:
    """Per float32 value, ``head + [5, key] + value``: a message around one float field, as protobuf
    writes it -- or ``zero_head`` alone for 0.0, which proto3 leaves out. One uint8 array, back to back."""
    values = np.ascontiguousarray(values, np.float32).reshape(-1)
    count, size = values.shape[0], len(head)
    rows = np.empty((count, size + 6), np.uint8)
    rows[:, :size] = np.frombuffer(head, np.uint8)
    rows[:, size] = 5
    rows[:, size + 1] = key
    rows[:, size + 2 :] = values.astype("<f4").view(np.uint8).reshape(count, 4)
    zero = values.view(np.uint32) == 0
    if not zero.any():
        return rows.reshape(-1)
    rows[zero, : len(zero_head)] = np.frombuffer(zero_head, np.uint8)
    keep = np.ones(rows.shape, bool)
    keep[zero, len(zero_head) :] = False
    return rows[keep]


#: Below this many values, answers are built as messages (numpy's per-call cost is more than theirs).
_WRITE_FROM = 1024


def regression_result_bytes(values: np.ndarray) -> bytes | np.ndarray:
    """A RegressionResult's fields: ``regressions {value = 1 (fixed32)}`` per value."""
    if values.size < _WRITE_FROM:
        result = regression_pb2.RegressionResult()
        for value in values.reshape(-1).tolist():
            result.regressions.add().value = value
        return result.SerializeToString()
    return _float_entries(values, b"\x0a", 0x0D, b"\x0a\x00")


def scores_result_bytes(scores: np.ndarray) -> np.ndarray | None:
    """A ClassificationResult's fields for one score per example and no labels:
    ``classifications {classes {score = 2 (fixed32)}}``; None for other shapes (written as messages)."""
    if scores.ndim != 2 or scores.shape[1] != 1 or scores.shape[0] < _WRITE_FROM:
        return None
    return _float_entries(scores, b"\x0a\x07\x0a", 0x15, b"\x0a\x02\x0a\x00")


# The feed -----------------------------------------------------------------------------------------

#: TensorFlow's tstring: 24 bytes, holding up to 22 bytes inline; longer ones take a heap block.
_TSTRING, _TSTRING_INLINE = 24, 22
# A Python bytes object's header, and pymalloc's rounding (the object path's cost per Example).
_BYTES_HEADER, _ALIGN = 33, 16
#: Rows gathered per numpy step when Examples of different lengths are copied into one array.
_GATHER_BYTES = 1 << 22


def feed_costs(spans: ExampleSpans) -> tuple[int, int, int | None]:
    """(bytes of TensorFlow's string tensor, of a bytes object per Example, of the fixed-width
    array -- None when it cannot carry them: an Example ending in a zero byte, which numpy drops)."""
    count, context = spans.count, len(spans.context)
    sizes = spans.lengths() + context
    heap = sizes[sizes > _TSTRING_INLINE]
    tensor = count * _TSTRING + int(((heap + _ALIGN) // _ALIGN * _ALIGN).sum())
    objects = count * 8 + int(((sizes + _BYTES_HEADER + _ALIGN - 1) // _ALIGN * _ALIGN).sum())
    width = int(sizes.max()) if count else 0
    return tensor, objects, (None if _ends_in_zero(spans) else count * width)


def _ends_in_zero(spans: ExampleSpans) -> bool:
    buffer = np.frombuffer(spans.data, np.uint8)
    if spans.uniform:
        first, stride, length, count = spans.uniform
        if length == 0:
            return bool(spans.context) and spans.context[-1] == 0
        return bool((buffer[first + length - 1 :: stride][:count] == 0).any())
    lengths = spans.lengths()
    empty = lengths == 0
    if empty.any() and spans.context and spans.context[-1] == 0:
        return True  # an empty Example with a context is fed as the context's bytes
    return bool((buffer[(spans.offsets() + lengths - 1)[~empty]] == 0).any())


def fixed_width_feed(spans: ExampleSpans) -> np.ndarray:
    """The serialized Examples (context in front) as one ``S<width>`` array; a view of the request
    when they all have the same length and no context."""
    count, context = spans.count, spans.context
    if spans.uniform and not context:
        first, stride, length, count = spans.uniform
        return np.ndarray((count,), f"S{max(length, 1)}", spans.data, first, (stride,)) if length else \
            np.zeros(count, "S1")
    lengths, offsets = spans.lengths(), spans.offsets()
    width = max(int(lengths.max()) + len(context), 1)
    out = np.zeros((count, width), np.uint8)
    out[:, : len(context)] = np.frombuffer(context, np.uint8)
    buffer = np.frombuffer(spans.data, np.uint8)
    longest = int(lengths.max())
    columns = np.arange(longest, dtype=np.int64)
    step = max(1, _GATHER_BYTES // max(longest, 1))
    for row in range(0, count if longest else 0, step):
        chunk_lengths = lengths[row : row + step, None]
        index = np.minimum(offsets[row : row + step, None] + columns, len(buffer) - 1)
        values = buffer[index]
        values[columns >= chunk_lengths] = 0
        out[row : row + step, len(context) :] = values
    return out.view(f"S{width}").reshape(count)


def object_feed(spans: ExampleSpans) -> np.ndarray:
    """The serialized Examples (context in front) as bytes objects, as TF Serving's tensor holds them."""
    out = np.empty(spans.count, dtype=object)
    data, context = spans.data, spans.context
    offsets, lengths = spans.offsets(), spans.lengths()
    step = 1 << 16
    for row in range(0, spans.count, step):
        for index, (offset, length) in enumerate(zip(offsets[row : row + step].tolist(),
                                                     lengths[row : row + step].tolist()), row):
            out[index] = context + data[offset : offset + length]
    return out


def small_feed_cost(items: list[bytes]) -> int:
    """What a feed of these bytes objects takes: TensorFlow's strings, and the array's references."""
    heap = sum((size + _ALIGN) // _ALIGN * _ALIGN for size in map(len, items) if size > _TSTRING_INLINE)
    return len(items) * (_TSTRING + 8) + heap
