"""The REST JSON layer on its own: TF Serving's number printing and nesting, checked value by value."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tfsk.devserver._status import StatusError
from tfsk.devserver.rest._json import RequestFormat, predict_inputs_from_json, predict_outputs_json
from tfsk.devserver.rest._json_values import float_texts, json_value_text, nest, parse_json


def write_decimal(value, dtype):
    """TF Serving's ``WriteDecimal``, one value at a time: %g, 9/17 digits when 6 do not read back, ".0"."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    text = "%.6g" % value
    if dtype.type(float(text)) != dtype.type(value):
        text = ("%.9g" if dtype == np.float32 else "%.17g") % value
    return text if "." in text or "e" in text else text + ".0"


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(st.sampled_from([np.float32, np.float64]), st.integers(0, 50)))
def test_float_texts_match_write_decimal(array):
    assert float_texts(array) == [write_decimal(v, array.dtype) for v in array.tolist()]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_texts_across_magnitudes(dtype):
    """Every decade a dtype holds, with 1-to-9-digit mantissas: the per-array check agrees with the per-value rule."""
    info = np.finfo(dtype)
    rng = np.random.default_rng(5)
    exponents = rng.integers(int(np.log10(info.smallest_subnormal)), int(np.log10(info.max)), 20_000)
    digits = rng.integers(1, 10, 20_000)
    mantissas = np.array([round(m, d) for m, d in zip(rng.uniform(-10, 10, 20_000).tolist(), digits.tolist())])
    with np.errstate(over="ignore", under="ignore"):
        scaled = (mantissas * 10.0 ** exponents.astype(np.float64)).astype(dtype)
    array = np.concatenate([scaled,
                            np.array([1e39 if dtype == np.float64 else 1e38, 5e-324, 2.1, 1 / 3], dtype=dtype)])
    array = array[np.isfinite(array)]
    assert float_texts(array) == [write_decimal(v, array.dtype) for v in array.tolist()]


@pytest.mark.parametrize(("value", "text"), [
    (3.0, "3.0"), (9000000.0, "9e+06"), (0.00003, "3e-05"), (1 / 3, "0.333333343"), (-0.0, "-0.0"),
    (123456789.0, "123456792.0"),
])
def test_tf_serving_examples(value, text):
    assert float_texts(np.array([value], dtype=np.float32)) == [text]


def test_nest_builds_rows_and_empty_shapes():
    texts = [str(i) for i in range(6)]
    assert nest(texts, (2, 3)) == ["[[0, 1, 2], [3, 4, 5]]"]
    assert nest(texts, (3,), 2) == ["[0, 1, 2]", "[3, 4, 5]"]
    assert nest([], (2, 0)) == ["[[], []]"]
    assert nest([], (0,), 3) == ["[]", "[]", "[]"]


def test_parse_takes_what_rapidjson_takes():
    assert parse_json(b'{"a": [NaN, -Infinity]} trailing')["a"][1] == float("-inf")
    with pytest.raises(StatusError, match="The document is empty"):
        parse_json(b" \n")
    assert json_value_text({"k": [1, 2.5, "s", None]}) == '{\n    "k": [1, 2.5, "s", null]\n}'
    assert json_value_text(list(range(1000))).endswith("...")  # quoted values are cut short


def test_fast_and_exact_paths_agree():
    """A numeric body takes numpy's one-step path; forcing the value-by-value walk gives the same tensors."""
    doc = {"inputs": {"a": [[1, 2.5], [3, 4]], "b": [[True], [False]], "c": [7, -8]}}
    dtypes = {"a": 1, "b": 10, "c": 3}  # float, bool, int32
    fast = predict_inputs_from_json(doc, dtypes, may_hold_bools=False)[1]
    exact = predict_inputs_from_json(doc, dtypes, may_hold_bools=True)[1]
    for name in dtypes:
        assert fast[name].dtype == exact[name].dtype and np.array_equal(fast[name], exact[name])
    assert fast["a"].dtype == np.float32 and fast["c"].dtype == np.int32


def test_row_outputs_are_objects_per_row_and_need_one_batch_size():
    outputs = {"b": np.array([[1], [2]], dtype=np.int64), "a": np.array([0.5, 1.5], dtype=np.float32)}
    text = predict_outputs_json(outputs, RequestFormat.ROW).decode()
    assert text.replace("\n", "").replace(" ", "") == '{"predictions":[{"a":0.5,"b":[1]},{"a":1.5,"b":[2]}]}'
    with pytest.raises(StatusError, match="has inconsistent batch size: 3 expecting: 2"):
        predict_outputs_json({**outputs, "c": np.zeros(3, np.float32)}, RequestFormat.ROW)
    with pytest.raises(StatusError, match="Tensor name: s has no shape information "):
        predict_outputs_json({"s": np.float32(1.0).reshape(())}, RequestFormat.ROW)


def test_narrow_integers_wrap_as_in_tf_serving():
    """int8/int16/uint8 values are range-checked as int32 only, then narrowed (TF Serving's ``int_val``)."""
    doc = {"inputs": [300, -1]}
    for bools in (False, True):  # the numpy path and the value-by-value walk
        (tensor,) = predict_inputs_from_json(doc, {"x": 6}, may_hold_bools=bools)[1].values()  # DT_INT8
        assert tensor.dtype == np.int8 and tensor.tolist() == [44, -1]
    with pytest.raises(StatusError, match="is not of expected type: int8"):
        predict_inputs_from_json({"inputs": [2**31]}, {"x": 6})


_leaves = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True, width=64),
                    st.text(max_size=4), st.fixed_dictionaries({"b64": st.text(max_size=8)}))
_values = st.recursive(_leaves, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.sampled_from(["a", "b", "b64", "x"]), inner, max_size=2), max_leaves=10)
_docs = st.dictionaries(st.sampled_from(["inputs", "instances", "examples", "context", "signature_name"]), _values,
                        max_size=3)


@settings(max_examples=400, deadline=None)
@given(doc=_docs, dtypes=st.dictionaries(st.sampled_from(["a", "b", "x"]),
                                         st.sampled_from([1, 2, 3, 4, 5, 6, 7, 9, 10, 19, 22, 23]), min_size=1,
                                         max_size=2), bools=st.booleans())
def test_any_json_gives_tensors_or_a_status_error(doc, dtypes, bools):
    """Whatever the body, reading it ends in tensors of the signature's dtypes or in a StatusError."""
    from tensorflow_serving.apis import regression_pb2

    from tfsk.devserver.rest._examples import examples_from_json

    try:
        _, tensors = predict_inputs_from_json(doc, dtypes, may_hold_bools=bools)
        assert set(tensors) <= set(dtypes)
    except StatusError:
        pass
    try:
        examples_from_json(doc, regression_pb2.RegressionRequest().input)
    except StatusError:
        pass
