"""The devserver's own error for a server that does not start (TensorFlow-free)."""

from __future__ import annotations

from tfsk._base.errors import TfskError

__all__ = ["StartupError"]


class StartupError(TfskError):
    """The server could not start; ``str()`` is the status TF Serving prints (in process), or what
    the process did instead of answering (:func:`tfsk.devserver.start_process`)."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
