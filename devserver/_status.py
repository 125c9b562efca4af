"""Errors as TF Serving reports them: a gRPC status code and TF Serving's exact message."""

from __future__ import annotations

import grpc

from tfsk._base.errors import TfskError

__all__ = ["MAX_MESSAGE_BYTES", "StatusError", "grpc_message"]

#: TF Serving cuts gRPC error messages to this many bytes and appends "...TRUNCATED".
MAX_MESSAGE_BYTES = 1024


class StatusError(TfskError):
    """A TF Serving status raised inside the server: a request or config it would refuse, with its code.

    Named apart from :class:`tfsk.client.ServingError`, which is what a client sees of it.
    """

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:  # the form TF's Status::ToString() takes, e.g. in start-up errors
        return f"{self.code.name}: {self.message}"

    @classmethod
    def invalid_argument(cls, message: str) -> StatusError:
        return cls(grpc.StatusCode.INVALID_ARGUMENT, message)

    @classmethod
    def not_found(cls, message: str) -> StatusError:
        return cls(grpc.StatusCode.NOT_FOUND, message)

    @classmethod
    def failed_precondition(cls, message: str) -> StatusError:
        return cls(grpc.StatusCode.FAILED_PRECONDITION, message)

    @classmethod
    def unimplemented(cls, message: str) -> StatusError:
        return cls(grpc.StatusCode.UNIMPLEMENTED, message)

    @classmethod
    def unknown(cls, message: str) -> StatusError:
        return cls(grpc.StatusCode.UNKNOWN, message)

    @classmethod
    def internal(cls, message: str) -> StatusError:
        return cls(grpc.StatusCode.INTERNAL, message)

    @classmethod
    def from_code_number(cls, number: int, message: str) -> StatusError:
        """From a TensorFlow error code number (TF and gRPC share the numbering)."""
        for code in grpc.StatusCode:
            if code.value[0] == number:
                return cls(code, message)
        return cls(grpc.StatusCode.UNKNOWN, message)


def grpc_message(message: str) -> str:
    """TF Serving's truncation of long error messages (``grpc_status_util.cc``)."""
    encoded = message.encode("utf-8")
    if len(encoded) <= MAX_MESSAGE_BYTES:
        return message
    return encoded[:MAX_MESSAGE_BYTES].decode("utf-8", errors="ignore") + "...TRUNCATED"
