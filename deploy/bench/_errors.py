"""The bench's one error: what it cannot measure, and what to do instead."""

from __future__ import annotations

from .._errors import StackError

__all__ = ["BenchError"]


class BenchError(StackError):
    """A load test that cannot run as asked (a bad step, an unknown model, a target that does not answer)."""
