"""Runs in the caller's thread (``--session_run_in_caller_thread``) answer exactly as runs in the
inter-op pool: same values, same errors, on real sessions of real SavedModels."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


def _two_input_signature():
    from tensorflow.core.protobuf import meta_graph_pb2

    signature = meta_graph_pb2.SignatureDef(method_name="tensorflow/serving/predict")
    signature.inputs["a"].name, signature.inputs["a"].dtype = "a:0", 1  # DT_FLOAT
    signature.inputs["b"].name, signature.inputs["b"].dtype = "b:0", 9  # DT_INT64
    return signature


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 4), st.integers(1, 3), st.sampled_from(
    ["none", "drop_b", "extra", "b_as_float", "short_field", "long_content", "negative_dim", "string", "typed",
     "a_as_float_val", "versioned"]),
    st.sampled_from([0, 1, 1 << 30]))
def test_the_one_pass_decoding_gives_the_step_by_step_feeds(rows, width, mutation, limit):
    """The common request decoded in one pass, from the message or read in place from its bytes:
    same feeds and same counted bytes as the checks step by step; every other request steps
    aside to those checks (and so gets their errors)."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    from tfsk._base.wire import read_predict_request
    from tfsk.devserver._limits import RequestBudget
    from tfsk.devserver._predict import _check_inputs, _plain_inputs, input_table

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "m"
    a = np.arange(rows * width, dtype=np.float32).reshape(rows, width)
    request.inputs["a"].CopyFrom(tf.make_tensor_proto(a))
    request.inputs["b"].CopyFrom(tf.make_tensor_proto(np.arange(rows, dtype=np.int64)))
    b = request.inputs["b"]
    if mutation == "drop_b":
        del request.inputs["b"]
    elif mutation == "extra":
        request.inputs["c"].CopyFrom(b)
    elif mutation == "b_as_float":
        b.CopyFrom(tf.make_tensor_proto(np.zeros(rows, np.float32)))
    elif mutation == "short_field":
        b.ClearField("tensor_content")
        b.ClearField("int64_val")
        b.int64_val.extend([1])
    elif mutation == "long_content":
        b.tensor_content += b"\0" * 8
    elif mutation == "negative_dim":
        b.tensor_shape.dim[0].size = -rows
    elif mutation == "string":
        b.CopyFrom(tf.make_tensor_proto(np.array([b"x"] * rows, dtype=object)))
    elif mutation == "typed":
        b.ClearField("tensor_content")
        b.ClearField("int64_val")
        b.int64_val.extend(range(rows))
    elif mutation == "a_as_float_val":  # packed float_val: read in place too
        request.inputs["a"].ClearField("tensor_content")
        request.inputs["a"].float_val.extend(a.reshape(-1))
    elif mutation == "versioned":
        b.version_number = 3
    signature = _two_input_signature()
    fast_budget, slow_budget = RequestBudget(limit), RequestBudget(limit)
    fast = _plain_inputs(request, input_table(signature), fast_budget)
    in_place = read_predict_request(request.SerializeToString())
    readable = mutation in ("none", "drop_b", "extra", "b_as_float", "a_as_float_val") and all(
        t.tensor_content or t.float_val or t.double_val for t in request.inputs.values())
    assert (in_place is not None) == readable
    if in_place is not None:
        in_place_budget = RequestBudget(limit)
        read = _plain_inputs(in_place, input_table(signature), in_place_budget)
        assert (read is None) == (fast is None) and in_place_budget.sent == fast_budget.sent
        for name in read or {}:
            assert read[name].dtype == fast[name].dtype and np.array_equal(read[name], fast[name])
    try:
        slow = _check_inputs(request, signature, slow_budget)
    except StatusError:
        assert fast is None
        return
    if fast is None:
        assert mutation not in ("none", "typed")
        return
    assert sorted(fast) == sorted(slow) and fast_budget.sent == slow_budget.sent and fast_budget.made == slow_budget.made
    for name in fast:
        assert fast[name].dtype == slow[name].dtype and np.array_equal(fast[name], slow[name])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(["float32", "float64", "int32", "int64", "uint8", "bool", "complex64", "float16", "object"]),
                min_size=1, max_size=4), st.integers(0, 3), st.booleans(), st.booleans())
def test_answers_written_as_bytes_equal_the_message_built_ones(kinds, rows, as_content, large):
    """encode_outputs (bytes straight from the arrays, one parse) and predict_response_bytes (the
    answer written once, no message) give the response that filling each output message by
    message gives, in both answer forms."""
    from tensorflow_serving.apis import predict_pb2

    from tfsk._base.codec import encode_as_fields, encode_tensor
    from tfsk.devserver._predict import (
        encode_outputs,
        predict_response_bytes,
        response_model_spec,
    )

    rng = np.random.default_rng(rows)
    width = 20_000 if large else 3  # large outputs are merged on their own, small ones joined
    arrays = {}
    for index, kind in enumerate(kinds):
        if kind == "object":
            arrays[f"out{index}"] = np.array([b"v%d" % i for i in range(rows * 2)], dtype=object).reshape(rows, 2)
        else:
            arrays[f"out{index}"] = (rng.standard_normal((rows, width)) * 100).astype(kind)
    expected = predict_pb2.PredictResponse()
    encode = encode_tensor if as_content else encode_as_fields
    for alias, array in arrays.items():
        encode(array, expected.outputs[alias])
    response = predict_pb2.PredictResponse()
    encode_outputs(dict(arrays), response, as_content)
    assert response == expected
    written = predict_pb2.PredictResponse.FromString(predict_response_bytes(dict(arrays), "m", "", 7, as_content))
    expected.model_spec.CopyFrom(response_model_spec("m", "", 7))
    assert written == expected
