"""Classify, Regress and MultiInference on tf.Example inputs, as TF Serving runs them.

The request's examples become one DT_STRING tensor of serialized ``tf.Example``s (with a context,
each element is context + example, which protobuf reads as a merge) fed to the signature's
``inputs`` tensor; results are checked and shaped as ``classifier.cc`` / ``regressor.cc`` do.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tensorflow_serving.apis import (
    classification_pb2,
    inference_pb2,
    input_pb2,
    regression_pb2,
)

from tfsk._base.dtypes import DataType

from ._limits import DEFAULT_MAX_REQUEST_TENSOR_BYTES, RequestBudget, answer_nbytes
from ._predict import DEFAULT_SIGNATURE, response_model_spec
from ._servable import Servable
from ._status import StatusError

__all__ = ["CLASSIFY_METHOD", "REGRESS_METHOD", "run_classify", "run_multi_inference", "run_regress"]

CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
# One Class (label, score) entry of a ClassificationResult, as the protobuf runtime holds it.
_CLASS_ENTRY_BYTES = 48
_DT_NAMES = {v: k for k, v in vars(DataType).items() if k.startswith("DT_")}


def _shape_text(array: np.ndarray) -> str:
    return "[" + ",".join(str(d) for d in array.shape) + "]"


def serialized_examples(request_input: input_pb2.Input, budget: RequestBudget) -> np.ndarray:
    """The DT_STRING tensor TF Serving feeds; its size is checked against ``budget`` before it is built."""
    kind = request_input.WhichOneof("kind")
    context = b""
    if kind == "example_list":
        examples = request_input.example_list.examples
    elif kind == "example_list_with_context":
        examples = request_input.example_list_with_context.examples
        context = request_input.example_list_with_context.context.SerializeToString()
    else:
        examples = []
    if not examples:
        raise StatusError.invalid_argument("Input is empty.")
    budget.examples(len(examples), len(context))
    array = np.empty(len(examples), dtype=object)
    sent = len(context)
    for index, example in enumerate(examples):
        serialized = example.SerializeToString()
        sent += len(serialized)
        array[index] = context + serialized
    budget.sent += sent
    return array


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


def _classifications(count: int, classes: np.ndarray | None, scores: np.ndarray | None,
                     result: classification_pb2.ClassificationResult) -> None:
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
    width = (classes if classes is not None else scores).shape[1]
    for row in range(count):
        classification = result.classifications.add()
        for column in range(width):
            entry = classification.classes.add()
            if classes is not None:
                entry.label = bytes(classes[row, column]).decode("utf-8", errors="replace")
            if scores is not None:
                entry.score = float(scores[row, column])


def _regressions(count: int, values: np.ndarray, result: regression_pb2.RegressionResult) -> None:
    if not (values.ndim == 1 or (values.ndim == 2 and values.shape[1] == 1)):
        raise StatusError.invalid_argument(
            f"Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got {_shape_text(values)}")
    if values.shape[0] != count:
        raise StatusError.invalid_argument(f"Input batch size did not match output batch size: {count} vs. {values.shape[0]}")
    if values.dtype != np.float32:
        got = f"DT_{'DOUBLE' if values.dtype == np.float64 else str(values.dtype).upper()}"
        raise StatusError.invalid_argument(f"Expected output Tensor of DT_FLOAT.  Got: {got}")
    for value in values.reshape(count):
        result.regressions.add().value = float(value)


def _signature(servable: Servable, name: str, not_found: str) -> Any:
    signature = servable.signature_defs.get(name or DEFAULT_SIGNATURE)
    if signature is None:
        raise StatusError.invalid_argument(not_found + (name or DEFAULT_SIGNATURE))
    return signature


def run_classify(servable: Servable, request: classification_pb2.ClassificationRequest, *,
                 method_name_check: bool = False,
                 max_tensor_bytes: int = DEFAULT_MAX_REQUEST_TENSOR_BYTES) -> classification_pb2.ClassificationResponse:
    name = request.model_spec.signature_name
    signature = _signature(servable, name, "No signature was found with the name: ")
    _classify_checks(signature, method_name_check)
    budget = RequestBudget(max_tensor_bytes)
    examples = serialized_examples(request.input, budget)
    aliases = [a for a in ("classes", "scores") if a in signature.outputs]
    values = dict(zip(aliases, servable.run({signature.inputs["inputs"].name: examples},
                                            [signature.outputs[a].name for a in aliases])))
    budget.answer_bytes(classification_bytes(values.values()))
    response = classification_pb2.ClassificationResponse()
    _classifications(len(examples), values.get("classes"), values.get("scores"), response.result)
    response.model_spec.CopyFrom(response_model_spec(request.model_spec.name, name, servable.version))
    return response


def run_regress(servable: Servable, request: regression_pb2.RegressionRequest, *,
                method_name_check: bool = False,
                max_tensor_bytes: int = DEFAULT_MAX_REQUEST_TENSOR_BYTES) -> regression_pb2.RegressionResponse:
    name = request.model_spec.signature_name
    signature = _signature(servable, name, "No signature was found with the name: ")
    _regress_checks(signature, method_name_check)
    budget = RequestBudget(max_tensor_bytes)
    examples = serialized_examples(request.input, budget)
    (values,) = servable.run({signature.inputs["inputs"].name: examples}, [signature.outputs["outputs"].name])
    budget.answer([values])
    response = regression_pb2.RegressionResponse()
    _regressions(len(examples), values, response.result)
    response.model_spec.CopyFrom(response_model_spec(request.model_spec.name, name, servable.version))
    return response


def run_multi_inference(servable: Servable, request: inference_pb2.MultiInferenceRequest, *,
                        max_tensor_bytes: int = DEFAULT_MAX_REQUEST_TENSOR_BYTES) -> inference_pb2.MultiInferenceResponse:
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
    examples = serialized_examples(request.input, budget)
    fetches = sorted({signature.outputs[a].name for _, _, signature, aliases in plans for a in aliases})
    values = dict(zip(fetches, servable.run({input_names.pop(): examples}, fetches)))
    budget.answer_bytes(classification_bytes(values.values()))
    response = inference_pb2.MultiInferenceResponse()
    for task, name, signature, aliases in plans:
        result = response.results.add()
        result.model_spec.CopyFrom(response_model_spec(task.model_spec.name, name, servable.version))
        outputs = {a: values[signature.outputs[a].name] for a in aliases}
        if task.method_name == CLASSIFY_METHOD:
            _classifications(len(examples), outputs.get("classes"), outputs.get("scores"), result.classification_result)
        else:
            _regressions(len(examples), outputs["outputs"], result.regression_result)
    return response
