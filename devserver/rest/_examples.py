"""Classify and Regress over REST: JSON Examples in, ``results`` out (``util/json_tensor.cc``).

Each JSON value picks its feature list by its JSON kind, as rapidjson sees it: a string or
``{"b64": ...}`` is bytes, a number with a decimal point or exponent is a float, any other number
(and true/false) is an int64 -- so ``{"x": 2}`` reaches the model as an int64 feature.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tensorflow.core.example import example_pb2, feature_pb2

from tfsk._base.dtypes import DataType

from .._status import StatusError
from ._json import (
    b64_decode,
    checked_value,
    document,
    format_error,
    is_b64,
    json_text,
)
from ._json_values import float_texts, json_type

__all__ = ["classify_results_json", "examples_from_json", "regress_results_json"]


def _feature_error(name: str, value: Any) -> StatusError:
    return StatusError.invalid_argument(f"Feature: {name} has element with unexpected JSON type: {json_type(value)}")


def _add_to_feature(value: Any, name: str, feature: feature_pb2.Feature) -> None:
    """``AddValueToFeature``: the JSON kind picks the feature list; a feature holds one kind only."""
    if value is None or isinstance(value, list) or (isinstance(value, dict) and not is_b64(value)):
        raise _feature_error(name, value)
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        value = float(value)  # rapidjson reads an integer beyond 64 bits as a double
    if isinstance(value, int):
        kind = "int64_list"
    elif isinstance(value, float):
        kind = "float_list"
    else:
        kind = "bytes_list"
    current = feature.WhichOneof("kind")
    if current not in (None, kind):
        raise StatusError.invalid_argument(
            f"Unexpected element type in feature: {name} expecting type: {current.replace('_list', '')}")
    if kind == "bytes_list":
        data = b64_decode(value) if isinstance(value, dict) else value.encode("utf-8", errors="surrogateescape")
        feature.bytes_list.value.append(data)
    elif kind == "float_list":
        checked_value(value, DataType.DT_FLOAT)
        feature.float_list.value.append(value)
    else:
        if value > 2**63 - 1:
            raise StatusError.invalid_argument(f"Feature: {name} has uint64 element. Only int64 is supported.")
        feature.int64_list.value.append(int(value))


def _example(value: Any, example: example_pb2.Example) -> None:
    if not isinstance(value, dict):
        raise StatusError.invalid_argument(f"Example must be JSON object but got JSON {json_type(value)}")
    for name, content in value.items():
        feature = feature_pb2.Feature()
        for item in content if isinstance(content, list) else [content]:
            _add_to_feature(item, name, feature)
        example.features.feature[name].CopyFrom(feature)


def examples_from_json(doc: dict[str, Any], request_input: Any) -> None:
    """``FillClassifyRegressRequestFromJson`` after the signature: ``context`` and ``examples`` into an Input."""
    has_context = "context" in doc
    if has_context:
        _example(doc["context"], request_input.example_list_with_context.context)
    if "examples" not in doc:
        raise format_error(doc, "When method is classify, key 'examples' is expected and was not found")
    examples = doc["examples"]
    if not isinstance(examples, list):
        raise format_error(doc, "Expecting 'examples' value to be an list/array")
    if not examples:
        raise format_error(doc, "'examples' value is an empty array")
    target = request_input.example_list_with_context.examples if has_context else request_input.example_list.examples
    for value in examples:
        _example(value, target.add())


def classify_results_json(result: Any) -> bytes:
    """``MakeJsonFromClassificationResult``: ``[[[label, score], ...], ...]`` per example."""
    if not result.classifications:
        raise StatusError.invalid_argument("Cannot convert empty ClassificationResults to JSON")
    scores = float_texts(np.array([c.score for k in result.classifications for c in k.classes], dtype=np.float32))
    position = 0
    rows = []
    for classification in result.classifications:
        pairs = []
        for entry in classification.classes:
            pairs.append(f"[{json_text(entry.label)}, {scores[position]}]")
            position += 1
        rows.append("[" + ", ".join(pairs) + "]")
    return document("results", "[" + ", ".join(rows) + "]")


def regress_results_json(result: Any) -> bytes:
    """``MakeJsonFromRegressionResult``: ``[value, ...]`` per example."""
    if not result.regressions:
        raise StatusError.invalid_argument("Cannot convert empty RegressionResults to JSON")
    values = float_texts(np.array([r.value for r in result.regressions], dtype=np.float32))
    return document("results", "[" + ", ".join(values) + "]")
