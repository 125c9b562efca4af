"""Classify, Regress and MultiInference on tf.Example inputs, as TF Serving runs them.

The request's examples become one DT_STRING tensor of serialized ``tf.Example``s (with a context,
each element is context + example, which protobuf reads as a merge) fed to the signature's
``inputs`` tensor; results are checked and shaped as ``classifier.cc`` / ``regressor.cc`` do.
Requests are read from their wire bytes and answers written as wire bytes (:mod:`._examples`),
so a million small examples cost about what they weigh, and what the feed takes is charged to
the request's budget (``--max_request_tensor_bytes``) before it is built. The message forms
(REST, warmup) go through the same code.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tensorflow_serving.apis import (
    classification_pb2,
    inference_pb2,
    regression_pb2,
)

from tfsk._base.dtypes import DataType

from ._examples import (
    ExampleSpans,
    ExamplesRequest,
    feed_costs,
    fixed_width_feed,
    object_feed,
    read_examples_request,
    regression_result_bytes,
    scores_result_bytes,
    small_feed_cost,
    wrap,
)
from ._limits import DEFAULT_MAX_REQUEST_TENSOR_BYTES, RequestBudget, answer_nbytes
from ._predict import DEFAULT_SIGNATURE, response_model_spec
from ._servable import Servable
from ._status import StatusError

__all__ = ["CLASSIFY_METHOD", "REGRESS_METHOD", "classify_bytes", "multi_inference_bytes", "regress_bytes",
           "run_classify", "run_multi_inference", "run_regress"]

CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
# One Class (label, score) entry of a ClassificationResult, as the protobuf runtime holds it.
_CLASS_ENTRY_BYTES = 48
_DT_NAMES = {v: k for k, v in vars(DataType).items() if k.startswith("DT_")}


def _shape_text(array: np.ndarray) -> str:
    return "[" + ",".join(str(d) for d in array.shape) + "]"


def serialized_examples(request: ExamplesRequest, budget: RequestBudget, *, objects: bool = False) -> np.ndarray:
    """The DT_STRING tensor TF Serving feeds; what it takes is checked against ``budget`` before it is built.

    Fixed-width bytes (``S``) where they can carry the examples and cost less than a bytes object
    each; bytes objects otherwise, and when ``objects`` (the batching session concatenates feeds of
    one dtype).
    """
    spans: ExampleSpans = request.examples
    if request.kind is None or not spans.count:
        raise StatusError.invalid_argument("Input is empty.")
    if spans.items is not None:  # a small request, parsed: its examples are bytes objects already
        sent = sum(map(len, spans.items)) - spans.count * len(spans.context) + len(spans.context)
        budget.examples(spans.count, len(spans.context), sent, small_feed_cost(spans.items))
        feed = np.empty(spans.count, dtype=object)
        feed[:] = spans.items
        return feed
    tensor, as_objects, fixed = feed_costs(spans)
    use_fixed = not objects and fixed is not None and fixed <= as_objects
    sent = int(spans.lengths().sum()) + len(spans.context)
    budget.examples(spans.count, len(spans.context), sent, tensor + (fixed if use_fixed and fixed is not None else as_objects))
    feed = fixed_width_feed(spans) if use_fixed else object_feed(spans)
    spans.clear()  # the offsets go before the model runs
    return feed


def _classify_checks(signature: Any, method_name_check: bool) -> None:
    if method_name_check and signature.method_name != CLASSIFY_METHOD:
        raise StatusError.invalid_argument(
            f"Expected classification signature method_name to be {CLASSIFY_METHOD}. Was: {signature.method_name}")
    if len(signature.inputs) != 1:
        raise StatusError.invalid_argument("Expected one input Tensor.")
    if len(signature.outputs) not in (1, 2):
        raise StatusError.invalid_argument(f"Expected one or two output Tensors, found {len(signature.outputs)}")
    if "inputs" not in signature.inputs:
        raise StatusError.invalid_argument(f"No classification inputs found in SignatureDef: {signature}")
    if "classes" not in signature.outputs and "scores" not in signature.outputs:
        raise StatusError.invalid_argument(
            'Expected classification signature outputs to contain at least one of "classes" or "scores". '
            f"Signature was: {signature}")


def _regress_checks(signature: Any, method_name_check: bool) -> None:
    if method_name_check and signature.method_name != REGRESS_METHOD:
        raise StatusError.invalid_argument(
            f"Expected regression signature method_name to be {REGRESS_METHOD}. Was: {signature.method_name}")
    if len(signature.inputs) != 1:
        raise StatusError.invalid_argument("Expected one input Tensor.")
    if len(signature.outputs) != 1:
        raise StatusError.invalid_argument("Expected one output Tensor.")
    if "inputs" not in signature.inputs:
        raise StatusError.invalid_argument(f"No regression inputs found in SignatureDef: {signature}")
    if "outputs" not in signature.outputs:
        raise StatusError.invalid_argument(f"No regression outputs found in SignatureDef: {signature}")


def classification_bytes(outputs: Any) -> int:
    """What a result of ``Class`` entries built from these outputs holds: a message per entry, and the labels."""
    outputs = [np.asarray(value) for value in outputs]
    entries = max((value.size for value in outputs), default=0)
    return entries * _CLASS_ENTRY_BYTES + answer_nbytes(value for value in outputs if value.dtype.kind in "OS")


def _check_classifications(count: int, classes: np.ndarray | None, scores: np.ndarray | None) -> None:
    for name, value, dtype in (("classes", classes, DataType.DT_STRING), ("scores", scores, DataType.DT_FLOAT)):
        if value is None:
            continue
        if value.ndim != 2:
            raise StatusError.invalid_argument(f"Expected Tensor shape: [batch_size num_classes] but got {_shape_text(value)}")
        actual = DataType.DT_STRING if value.dtype == object else {np.dtype(np.float32): DataType.DT_FLOAT}.get(value.dtype)
        if actual != dtype:
            got = _DT_NAMES.get(actual, str(value.dtype)) if actual is not None else f"DT_{str(value.dtype).upper()}"
            raise StatusError.invalid_argument(f"Expected {name} Tensor of {_DT_NAMES[dtype]}. Got: {got}")
        if value.shape[0] != count:
            raise StatusError.invalid_argument(f"Expected {name} output batch size of {count}. Got: {value.shape[0]}")
    if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
        raise StatusError.invalid_argument(
            f"Tensors class and score should match in dim_size(1). Got {classes.shape[1]} vs. {scores.shape[1]}")


def _classification_result(count: int, classes: np.ndarray | None, scores: np.ndarray | None) -> Any:
    """A ClassificationResult's bytes: written from the scores when there are no labels, else as messages."""
    _check_classifications(count, classes, scores)
    if classes is None and scores is not None:
        written = scores_result_bytes(scores)
        if written is not None:
            return written
    result = classification_pb2.ClassificationResult()
    width = (classes if classes is not None else scores).shape[1]  # type: ignore[union-attr]  # one of them is given
    for row in range(count):
        classification = result.classifications.add()
        for column in range(width):
            entry = classification.classes.add()
            if classes is not None:
                entry.label = bytes(classes[row, column]).decode("utf-8", errors="replace")
            if scores is not None:
                entry.score = float(scores[row, column])
    return result.SerializeToString()


def _regression_result(count: int, values: np.ndarray) -> Any:
    """A RegressionResult's bytes, one Regression per example."""
    if not (values.ndim == 1 or (values.ndim == 2 and values.shape[1] == 1)):
        raise StatusError.invalid_argument(
            f"Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got {_shape_text(values)}")
    if values.shape[0] != count:
        raise StatusError.invalid_argument(f"Input batch size did not match output batch size: {count} vs. {values.shape[0]}")
    if values.dtype != np.float32:
        got = f"DT_{'DOUBLE' if values.dtype == np.float64 else str(values.dtype).upper()}"
        raise StatusError.invalid_argument(f"Expected output Tensor of DT_FLOAT.  Got: {got}")
    return regression_result_bytes(values)


def _spec(name: str, signature_name: str, version: int) -> bytes:
    return response_model_spec(name, signature_name, version).SerializeToString()


def _message(*fields: tuple[int, Any]) -> bytes:
    """Length-delimited fields (key byte, payload) joined: a message's bytes."""
    pieces: list[Any] = []
    for tag, payload in fields:
        pieces += wrap(tag, payload)
    return b"".join(pieces)


def _signature(servable: Servable, name: str, not_found: str) -> Any:
    signature = servable.signature_defs.get(name or DEFAULT_SIGNATURE)
    if signature is None:
        raise StatusError.invalid_argument(not_found + (name or DEFAULT_SIGNATURE))
    return signature


def classify_bytes(servable: Servable, request: ExamplesRequest, *, method_name_check: bool = False,
                   max_tensor_bytes: int = DEFAULT_MAX_REQUEST_TENSOR_BYTES) -> bytes:
    """Classify: the serialized ClassificationResponse (result = 1, model_spec = 2)."""
    name = request.model_spec.signature_name
    signature = _signature(servable, name, "No signature was found with the name: ")
    _classify_checks(signature, method_name_check)
    budget = RequestBudget(max_tensor_bytes)
    examples = serialized_examples(request, budget, objects=servable.batching is not None)
    count = len(examples)
    aliases = [a for a in ("classes", "scores") if a in signature.outputs]
    values = dict(zip(aliases, servable.run({signature.inputs["inputs"].name: examples},
                                            [signature.outputs[a].name for a in aliases])))
    del examples
    budget.answer_bytes(classification_bytes(values.values()))
    result = _classification_result(count, values.get("classes"), values.get("scores"))
    return _message((0x0A, result), (0x12, _spec(request.model_spec.name, name, servable.version)))


def regress_bytes(servable: Servable, request: ExamplesRequest, *, method_name_check: bool = False,
                  max_tensor_bytes: int = DEFAULT_MAX_REQUEST_TENSOR_BYTES) -> bytes:
    """Regress: the serialized RegressionResponse (result = 1, model_spec = 2)."""
    name = request.model_spec.signature_name
    signature = _signature(servable, name, "No signature was found with the name: ")
    _regress_checks(signature, method_name_check)
    budget = RequestBudget(max_tensor_bytes)
    examples = serialized_examples(request, budget, objects=servable.batching is not None)
    count = len(examples)
    (values,) = servable.run({signature.inputs["inputs"].name: examples}, [signature.outputs["outputs"].name])
    del examples
    budget.answer([values])
    result = _regression_result(count, values)
    return _message((0x0A, result), (0x12, _spec(request.model_spec.name, name, servable.version)))


def multi_inference_bytes(servable: Servable, request: ExamplesRequest, *,
                          max_tensor_bytes: int = DEFAULT_MAX_REQUEST_TENSOR_BYTES) -> bytes:
    """MultiInference: the serialized MultiInferenceResponse (results = 1, in task order)."""
    model_name = request.tasks[0].model_spec.name
    seen: set[str] = set()
    plans = []
    for task in request.tasks:
        if not task.model_spec.name:
            raise StatusError.invalid_argument("Found ModelSpec with an empty model name.")
        if task.model_spec.name != model_name:
            raise StatusError.invalid_argument("All ModelSpecs in a MultiInferenceRequest must access the same model name.")
        name = task.model_spec.signature_name or DEFAULT_SIGNATURE
        if name in seen:
            raise StatusError.invalid_argument(f"Duplicate evaluation of signature: {name}")
        seen.add(name)
        signature = _signature(servable, name, "Requested signature not found in model graph: ")
        if task.method_name == CLASSIFY_METHOD:
            _classify_checks(signature, False)
            aliases = [a for a in ("classes", "scores") if a in signature.outputs]
        elif task.method_name == REGRESS_METHOD:
            _regress_checks(signature, False)
            aliases = ["outputs"]
        else:
            raise StatusError.unimplemented(f"Unsupported signature method_name: {task.method_name}")
        plans.append((task, name, signature, aliases))
    input_names = {signature.inputs["inputs"].name for _, _, signature, _ in plans}
    if len(input_names) != 1:
        raise StatusError.invalid_argument("Input tensor must be the same for all Signatures.")
    budget = RequestBudget(max_tensor_bytes)
    examples = serialized_examples(request, budget, objects=servable.batching is not None)
    count = len(examples)
    fetches = sorted({signature.outputs[a].name for _, _, signature, aliases in plans for a in aliases})
    values = dict(zip(fetches, servable.run({input_names.pop(): examples}, fetches)))
    del examples
    budget.answer_bytes(classification_bytes(values.values()))
    results = []
    for task, name, signature, aliases in plans:
        outputs = {a: values[signature.outputs[a].name] for a in aliases}
        spec = (0x0A, _spec(task.model_spec.name, name, servable.version))
        if task.method_name == CLASSIFY_METHOD:  # InferenceResult: classification_result = 2, regression_result = 3
            result = (0x12, _classification_result(count, outputs.get("classes"), outputs.get("scores")))
        else:
            result = (0x1A, _regression_result(count, outputs["outputs"]))
        results.append((0x0A, _message(spec, result)))
    return _message(*results)


def _read(request: Any, multi: bool = False) -> ExamplesRequest:
    return read_examples_request(request.SerializeToString(), multi=multi)


def run_classify(servable: Servable, request: classification_pb2.ClassificationRequest,
                 **options: Any) -> classification_pb2.ClassificationResponse:
    """Classify on a request message (REST, warmup): the same path as the wire bytes."""
    return classification_pb2.ClassificationResponse.FromString(classify_bytes(servable, _read(request), **options))


def run_regress(servable: Servable, request: regression_pb2.RegressionRequest,
                **options: Any) -> regression_pb2.RegressionResponse:
    return regression_pb2.RegressionResponse.FromString(regress_bytes(servable, _read(request), **options))


def run_multi_inference(servable: Servable, request: inference_pb2.MultiInferenceRequest,
                        **options: Any) -> inference_pb2.MultiInferenceResponse:
    return inference_pb2.MultiInferenceResponse.FromString(
        multi_inference_bytes(servable, _read(request, multi=True), **options))
