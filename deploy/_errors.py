"""The one exception of the workflows layer."""

from __future__ import annotations

from tfsk._base.errors import TfskError

__all__ = ["StackError"]


class StackError(TfskError):
    """The stack cannot be read, started, reached or stopped; the message says what to do.

    ``log_tail`` holds the last lines the server printed, when it exited or never became healthy.
    """

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.log_tail = log_tail
