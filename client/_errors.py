"""One exception hierarchy for everything the client raises: what servers answer (mapped from gRPC
status codes) and what the client finds wrong before or after a call.

Where callers may already catch a built-in exception, the client's error keeps it as a second
base: ``InputError`` and ``TargetError`` are ``ValueError``s, ``WaitTimeoutError`` is a
``TimeoutError``, ``TensorDecodeError`` is the codec's (a ``ValueError``).
"""

from __future__ import annotations

import grpc

from tfsk._base import codec
from tfsk._base.errors import TfskError

__all__ = [
    "AbortedError", "AlreadyExistsError", "CancelledError", "ClientError", "DataLossError", "DeadlineExceededError",
    "FailedPreconditionError", "InputError", "InternalError", "InvalidArgumentError", "NotFoundError",
    "OutOfRangeError", "PermissionDeniedError", "ResourceExhaustedError", "ServingError", "TargetError",
    "TensorDecodeError", "UnauthenticatedError", "UnavailableError", "UnimplementedError", "UnknownError",
    "WaitTimeoutError", "error_from_rpc",
]


class ClientError(TfskError):
    """Base class of everything the client raises."""


class InputError(ClientError, ValueError):
    """Inputs that cannot be sent as they are: not tensors, or not what the signature takes.

    Raised before anything is sent. ``input`` names the input, ``expected`` and ``sent`` describe
    the signature's tensor and the caller's (``float32[?,10]``), when known.
    """

    def __init__(self, message: str, *, input: str | None = None, expected: str | None = None,
                 sent: str | None = None) -> None:
        super().__init__(message)
        self.input, self.expected, self.sent = input, expected, sent


class TargetError(ClientError, ValueError):
    """A server address the client cannot use (malformed, or a name that does not resolve)."""


class WaitTimeoutError(ClientError, TimeoutError):
    """A model version did not become AVAILABLE in the time given."""


class TensorDecodeError(ClientError, codec.TensorDecodeError):
    """A tensor (or an answer holding one) that TensorFlow itself would refuse to read."""


class ServingError(ClientError):
    """The server (or the connection to it) answered with a non-OK gRPC status.

    ``code`` is the ``grpc.StatusCode``, ``details`` the server's message, ``hint`` what to try.
    """

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, details: str, *, hint: str | None = None, code: grpc.StatusCode | None = None) -> None:
        self.details = details
        self.hint = hint
        if code is not None:
            self.code = code
        super().__init__(f"{self.code.name}: {details}" + (f" (hint: {hint})" if hint else ""))

    def with_hint(self, hint: str | None) -> ServingError:
        """The same error with ``hint`` (itself when there is none)."""
        return self if not hint else type(self)(self.details, hint=hint, code=self.code)


class CancelledError(ServingError):
    code = grpc.StatusCode.CANCELLED


class UnknownError(ServingError):
    code = grpc.StatusCode.UNKNOWN


class InvalidArgumentError(ServingError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class DeadlineExceededError(ServingError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class NotFoundError(ServingError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExistsError(ServingError):
    code = grpc.StatusCode.ALREADY_EXISTS


class PermissionDeniedError(ServingError):
    code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhaustedError(ServingError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class FailedPreconditionError(ServingError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class AbortedError(ServingError):
    code = grpc.StatusCode.ABORTED


class OutOfRangeError(ServingError):
    code = grpc.StatusCode.OUT_OF_RANGE


class UnimplementedError(ServingError):
    code = grpc.StatusCode.UNIMPLEMENTED


class InternalError(ServingError):
    code = grpc.StatusCode.INTERNAL


class UnavailableError(ServingError):
    code = grpc.StatusCode.UNAVAILABLE


class DataLossError(ServingError):
    code = grpc.StatusCode.DATA_LOSS


class UnauthenticatedError(ServingError):
    code = grpc.StatusCode.UNAUTHENTICATED


_BY_CODE = {cls.code: cls for cls in ServingError.__subclasses__()}


def error_from_rpc(error: grpc.RpcError, hint: str | None = None) -> ServingError:
    """The exception of this hierarchy for a failed call."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    details = (error.details() if hasattr(error, "details") else None) or str(error)
    return _BY_CODE.get(code, ServingError)(details, hint=hint, code=code)
