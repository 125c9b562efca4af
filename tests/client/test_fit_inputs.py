"""The rules inputs are fitted to a signature by, one case each (the server-side tests cover the wire)."""

import numpy as np
import pytest

from tfsk.client import InputError, ModelMetadata, Signature, TensorSpec
from tfsk.client._inputs import MISSING, SignatureCache, fit_inputs

METADATA = ModelMetadata("m", 3, {
    "serving_default": Signature({
        "ids": TensorSpec(np.dtype(np.int32), (None, 4)),
        "words": TensorSpec(np.dtype(object), (None,)),
        "x": TensorSpec(np.dtype(np.float32), (None, 1)),
        "flag": TensorSpec(np.dtype(np.bool_), None),
    }, {}, "tensorflow/serving/predict"),
})


def fit(**inputs):
    return fit_inputs(inputs, METADATA, None, "m")


def test_same_kind_conversions_and_what_is_left_alone():
    fitted, converted = fit(ids=[[1, 2, 3, 4]], x=np.ones((2, 1)))
    assert converted and fitted["ids"].dtype == np.int32 and fitted["x"].dtype == np.float32
    same = {"x": np.ones((2, 1), np.float32)}
    assert fit_inputs(same, METADATA, None, "m") == (same, False)  # nothing to do: the caller's mapping, no copy
    assert fit(words=["a", b"b"])[1] is False
    assert fit(x=np.ones(3))[0]["x"].shape == (3,)  # another rank goes to the server, as TF Serving runs what the graph takes
    assert fit(x=[])[0]["x"].dtype == np.float32
    assert fit(other=np.ones(2))[1] is False  # names the signature lacks: the server's message says what is wrong
    assert fit_inputs({"x": "anything"}, METADATA, "another_signature", "m") == ({"x": "anything"}, False)


@pytest.mark.parametrize(("inputs", "message"), [
    ({"ids": [[1.5, 2, 3, 4]]}, r"takes int32\[\?,4\]; sent float64\[1,4\]: numpy does not convert float64 to int32 safely"),
    ({"ids": [[2**40, 0, 0, 0]]}, r"values outside int32's range \[-2147483648, 2147483647\]"),
    ({"ids": [[1, 2, 3]]}, "dimension 1 is 3, the signature fixes it at 4"),
    ({"flag": [1, 0]}, "numpy does not convert int64 to bool safely"),
    ({"words": [1.0, 2.0]}, r"takes string\[\?\]; sent float64\[2\]: send strings"),
    ({"x": [["a"]]}, r"takes float32\[\?,1\]; sent string\[1,1\]: send numbers \(float32\)"),
])
def test_what_does_not_fit_is_refused_with_what_was_expected_and_sent(inputs, message):
    with pytest.raises(InputError, match=message) as caught:
        fit(**inputs)
    assert caught.value.input == next(iter(inputs))
    assert str(caught.value).startswith(f"input '{caught.value.input}' of model 'm' (signature 'serving_default') takes")


def test_the_cache_forgets_a_model_and_the_least_recently_used():
    cache = SignatureCache(size=2)
    cache.put(("a", None, None), METADATA)
    cache.put(("a", 3, None), METADATA)
    cache.get(("a", None, None))  # used: ("a", 3) is now the least recently used
    cache.put(("b", None, None), None)  # None: the server offers no metadata
    assert cache.get(("a", 3, None)) is MISSING
    assert cache.get(("a", None, None)) is METADATA and cache.get(("b", None, None)) is None
    cache.forget("a")
    assert cache.get(("a", None, None)) is MISSING and cache.get(("b", None, None)) is None


@pytest.mark.parametrize(("inputs", "message"), [
    ({"ids": [1, 2, 3, 4]}, r"takes int32\[\?,4\]; sent int64\[4\]: rank 1, the signature's is 2 \(one example is a "
                            r"list inside a list\)$"),
    ({"ids": np.ones((1, 1, 4), np.int32)}, r"sent int32\[1,1,4\]: rank 3, the signature's is 2$"),
    ({"x": [True, False]}, r"takes float32\[\?,1\]; sent bool\[2\]: send numbers \(float32\), not booleans"),
    ({"x": np.array([[True]])}, "not booleans"),
])
def test_a_rank_the_signature_excludes_and_booleans_for_numbers_are_refused(inputs, message):
    with pytest.raises(InputError, match=message) as caught:
        fit(**inputs)
    assert "\n" not in str(caught.value) and caught.value.input == next(iter(inputs))
