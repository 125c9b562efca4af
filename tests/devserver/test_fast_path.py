"""Runs in the caller's thread (``--session_run_in_caller_thread``) answer exactly as runs in the
inter-op pool: same values, same errors, on real sessions of real SavedModels."""

import numpy as np
import pytest

from tfsk.devserver._flags import FlagError, parse_flags
from tfsk.devserver._servable import load_servable
from tfsk.devserver._status import StatusError

from .test_batching_session import build_variable_length


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    path = tmp_path_factory.mktemp("fast") / "1"
    build_variable_length(path)
    servables = {mode: load_servable("varlen", 1, path, ["serve"], caller_thread=mode) for mode in ("true", "false")}
    yield servables
    for servable in servables.values():
        servable.close()


def _outcome(servable, feeds):
    signature = servable.signature_defs["serving_default"]
    fetches = [signature.outputs[a].name for a in sorted(signature.outputs)]
    try:
        return "ok", [np.asarray(v) for v in servable.run(feeds, fetches)]
    except StatusError as error:
        return "error", (error.code, error.message)


def test_modes_are_chosen_as_asked(pair, half_plus):
    assert pair["true"].in_caller_thread and not pair["false"].in_caller_thread
    small = load_servable("default", 123, half_plus / "half_plus_two" / "00000123", ["serve"])
    try:
        assert small.in_caller_thread  # auto: a graph of a few nodes runs in the caller's thread
    finally:
        small.close()


def test_same_answers_and_errors_in_both_modes(pair):
    rng = np.random.default_rng(14)
    name = pair["true"].signature_defs["serving_default"].inputs["x"].name
    cases = [rng.standard_normal((int(rng.integers(1, 9)), int(rng.integers(1, 7)))).astype(np.float32) for _ in range(20)]
    cases += [np.zeros((2, 0), np.float32), np.zeros((2, 2), np.int32)]  # TF's errors
    kinds = set()
    for value in cases:
        fast, pooled = _outcome(pair["true"], {name: value}), _outcome(pair["false"], {name: value})
        assert fast[0] == pooled[0], value
        kinds.add(fast[0])
        if fast[0] == "ok":
            assert all(np.array_equal(a, b) for a, b in zip(fast[1], pooled[1]))
        else:
            assert fast[1] == pooled[1]
    assert kinds == {"ok", "error"}


def test_two_failing_ops_give_the_same_code(pair):
    """Both of the graph's ops refuse a vector; which one's message wins depends on the order ops
    run in, which the inter-op pool does not fix either (TF Serving's answer varies the same way)."""
    name = pair["true"].signature_defs["serving_default"].inputs["x"].name
    fast, pooled = (_outcome(pair[mode], {name: np.zeros((3,), np.float32)}) for mode in ("true", "false"))
    assert fast[0] == pooled[0] == "error" and fast[1][0] == pooled[1][0]
    assert "node row_max" in fast[1][1] or "node strided_slice" in fast[1][1]


def test_flag_values():
    assert parse_flags([]).session_run_in_caller_thread == "auto"
    assert parse_flags(["--session_run_in_caller_thread=false"]).session_run_in_caller_thread == "false"
    with pytest.raises(FlagError, match="auto, true or false"):
        parse_flags(["--session_run_in_caller_thread=sometimes"])
