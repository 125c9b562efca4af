"""The base codec as the client offers it: the same functions, raising the client's own errors.

The codec lives in the base layer (the devserver uses it too), so its errors are not
``ClientError``s; these wrappers translate them, so ``except tfsk.client.ClientError`` catches
everything the client raises while ``except ValueError`` still does too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tfsk._base import codec

from ._errors import InputError, TensorDecodeError

__all__ = ["decode_tensor", "encode_as_fields", "encode_tensor"]


def decode_tensor(proto: Any, content: bytes | memoryview | None = None) -> np.ndarray:
    """The numpy array a TensorProto stands for; :class:`TensorDecodeError` where TF would refuse it.

    ``content`` stands in for ``proto.tensor_content`` when the caller holds it elsewhere.
    """
    try:
        return codec.decode_tensor(proto, content)
    except codec.TensorDecodeError as error:
        raise TensorDecodeError(str(error)) from None


def encode_tensor(value: Any, proto: Any) -> Any:
    """Fill ``proto`` (a TensorProto) from ``value``: numerics as ``tensor_content``, strings as ``string_val``."""
    try:
        return codec.encode_tensor(value, proto)
    except (TypeError, ValueError) as error:
        raise InputError(f"cannot be encoded as a tensor: {error}") from None


def encode_as_fields(value: Any, proto: Any) -> Any:
    """Fill ``proto`` with typed ``*_val`` fields, as TF Serving's default ``AsProtoField`` does."""
    try:
        return codec.encode_as_fields(value, proto)
    except (TypeError, ValueError) as error:
        raise InputError(f"cannot be encoded as a tensor: {error}") from None
