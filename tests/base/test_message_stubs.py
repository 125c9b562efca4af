"""The checked-in static types of the run-time message classes match what the generator writes now."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from tfsk._base import messages

ROOT = Path(__file__).resolve().parents[2]


def _generator():
    spec = importlib.util.spec_from_file_location("message_stubs", ROOT / "tools" / "message_stubs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_checked_in_stub_is_what_the_generator_writes():
    generator = _generator()
    assert generator.STUB.read_text() == generator.render(), "stale: run python tools/message_stubs.py"


def test_every_message_the_stub_declares_exists_at_run_time_by_that_name():
    for name, cls in messages.MESSAGES.items():
        assert getattr(messages, name) is cls, name
