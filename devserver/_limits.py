"""What one request may make the devserver allocate (``--max_request_tensor_bytes``).

TF Serving has no such bound: a 40-byte Predict naming shape ``[100000000, 7]`` and no values is a
2.8 GB tensor of zeros by TensorFlow's decoding rules, and TF Serving tries to allocate it. The
devserver bounds the bytes a request makes it create *beyond what the request sent*: inputs
expanded from short typed fields (or examples given a shared context), and, separately, the
tensors of the answer. Beyond the limit, inputs are refused with TF Serving's
``tensor parsing error`` (what it says when it cannot allocate a tensor) and answers with
RESOURCE_EXHAUSTED (what gRPC says of a message over its size limit), before anything is built.
Tensors that cannot exist at all get TF Serving's own refusal.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np

from tfsk._base.codec import TensorDecodeError, decode_tensor, measure_tensor

from ._flags import DEFAULT_MAX_REQUEST_TENSOR_BYTES
from ._status import StatusError

__all__ = ["DEFAULT_MAX_REQUEST_TENSOR_BYTES", "RequestBudget", "answer_nbytes"]

logger = logging.getLogger(__name__)
FLAG = "--max_request_tensor_bytes"


def answer_nbytes(arrays: Iterable[np.ndarray]) -> int:
    """Bytes the answer's tensors hold: numeric data, or for strings a reference plus the bytes."""
    total = 0
    for value in arrays:
        # TF's session hands a scalar string back as plain bytes, not an array.
        array = value if isinstance(value, np.ndarray) else np.asarray(value, dtype=object)
        if array.dtype == object:
            total += array.size * 8 + sum(len(item) for item in array.reshape(-1) if isinstance(item, (bytes, str)))
        else:
            total += array.nbytes
    return total


@dataclass
class RequestBudget:
    """Counts what one request sent and what decoding it made; refuses past ``limit`` (<= 0: no limit)."""

    limit: int = DEFAULT_MAX_REQUEST_TENSOR_BYTES
    #: Bytes of tensor values (or serialized examples) the request carried.
    sent: int = 0
    #: Bytes the server created beyond them.
    made: int = 0

    def _over(self, extra: int) -> bool:
        return self.limit > 0 and self.made + extra > self.limit

    def decode(self, alias: str, proto: Any) -> np.ndarray:
        """An input tensor, or TF Serving's ``tensor parsing error: <alias>`` (INVALID_ARGUMENT)."""
        content = proto.tensor_content
        try:
            size = measure_tensor(proto, content)
        except TensorDecodeError as error:
            if getattr(error, "tensorflow_refuses", True):
                logger.info("input %s refused as TensorFlow would: %s", alias, error)
                raise StatusError.invalid_argument(f"tensor parsing error: {alias}") from None
            raise StatusError.invalid_argument(
                f"tensor parsing error: {alias}: {error} (TF Serving would take it; the devserver holds tensors in numpy)"
            ) from None
        if self._over(size.made):
            others = f" (with the other inputs, {self.made + size.made})" if self.made else ""
            raise StatusError.invalid_argument(
                f"tensor parsing error: {alias}: its {size.describe()} takes {size.nbytes} bytes, {size.made} more than "
                f"the request sent for it{others}; a request may make the devserver create at most {self.limit} bytes "
                f"of tensors beyond what it sent ({FLAG}={self.limit}). Send every value (tensor_content), fewer rows "
                f"per request, or raise {FLAG}"
            )
        self.sent += size.sent
        self.made += size.made
        try:
            return decode_tensor(proto, content)
        except TensorDecodeError as error:
            logger.info("input %s refused as TensorFlow would: %s", alias, error)
            raise StatusError.invalid_argument(f"tensor parsing error: {alias}") from None

    def examples(self, count: int, context_bytes: int, sent: int, cost: int) -> None:
        """Before the tensor of ``count`` serialized examples is built: ``sent`` bytes of them came in the
        request, a ``context_bytes`` context goes in front of each, and building the feed takes ``cost`` bytes."""
        extra = count * context_bytes  # made from nothing the request sent: refused as an expansion
        if context_bytes and self._over(extra):
            raise StatusError.invalid_argument(
                f"the request's {count} examples, each with the {context_bytes}-byte context in front as TF Serving "
                f"feeds them, would take {extra} bytes beyond what it sent; a request may make the devserver create at "
                f"most {self.limit} bytes beyond what it sent ({FLAG}={self.limit}). Send fewer examples per request "
                f"(or a smaller context), or raise {FLAG}"
            )
        if self._over(cost):  # holding what was sent, as TensorFlow's strings: refused like an answer too large
            raise StatusError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"the request's {count} examples would take {cost} bytes as the tensor of serialized tf.Examples fed to "
                f"the model, more than the limit of {self.limit} ({FLAG}={self.limit}); send fewer examples per "
                f"request, or raise {FLAG}",
            )
        self.sent += sent
        self.made += cost

    def answer(self, arrays: Iterable[np.ndarray]) -> None:
        """Before encoding: the answer's tensors may take at most what the request sent plus the limit."""
        if self.limit > 0:
            self.answer_bytes(answer_nbytes(arrays))

    def answer_bytes(self, nbytes: int) -> None:
        if self.limit > 0 and nbytes > self.sent + self.limit:
            raise StatusError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"the answer's tensors would take {nbytes} bytes, more than the {self.sent} bytes the request sent plus "
                f"the limit of {self.limit} ({FLAG}={self.limit}); ask for fewer rows or outputs per request, or raise "
                f"{FLAG}",
            )
