"""Predict, step by step as TF Serving does it (``predict_impl.cc``, ``predict_util.cc``).

The first failing step wins, with TF Serving's status code and message. Like TF Serving, no
shape validation is done against the SignatureDef; a dtype mismatch is reported the way
TensorFlow's session reports it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from tensorflow_serving.apis import model_pb2, predict_pb2

from tfsk._base.codec import (
    decode_plain,
    encode_as_fields,
    encode_tensor,
    tensor_bytes,
    tensor_pieces,
)
from tfsk._base.dtypes import DataType, tf_type_string
from tfsk._base.naming import DEFAULT_SIGNATURE
from tfsk._base.packed import length_delimited, map_entry_head
from tfsk._base.wire import InPlacePredictRequest

from ._limits import DEFAULT_MAX_REQUEST_TENSOR_BYTES, RequestBudget
from ._servable import Servable
from ._status import StatusError

__all__ = ["DEFAULT_SIGNATURE", "PREDICT_METHODS", "encode_outputs", "predict_outputs", "predict_response_bytes",
           "response_model_spec", "run_predict"]

PREDICT_METHODS = ("tensorflow/serving/predict", "tensorflow/serving/classify", "tensorflow/serving/regress")
_JOIN_BELOW = 1 << 16


def _braces(keys: Any) -> str:
    return "{" + ",".join(sorted(keys)) + "}"


def response_model_spec(name: str, signature_name: str, version: int) -> model_pb2.ModelSpec:
    """``MakeModelSpec``: the request's name, the signature (defaulted) and the resolved version."""
    spec = model_pb2.ModelSpec(name=name, signature_name=signature_name or DEFAULT_SIGNATURE)
    spec.version.value = version
    return spec


def encode_outputs(outputs: dict[str, np.ndarray], response: Any, as_tensor_content: bool) -> None:
    """Encode each output into ``response.outputs``, emptying ``outputs`` as it goes.

    Numeric tensors are written as bytes straight from their arrays and parsed into the response
    in one call; each array is let go once encoded, so the answer never holds every output twice over.
    """
    encode = encode_tensor if as_tensor_content else encode_as_fields
    entries: list[Any] = []
    for alias in list(outputs):
        value = outputs.pop(alias)
        data = tensor_bytes(value, typed=not as_tensor_content)
        if data is None:  # strings, empty tensors
            encode(value, response.outputs[alias])
            continue
        if len(data) >= _JOIN_BELOW:  # large: parsed where it is, not copied into a joined buffer first
            response.outputs[alias].MergeFromString(data)
            continue
        entries += [map_entry_head(1, alias, len(data)), data]  # PredictResponse.outputs = 1
        del value
    if entries:
        response.MergeFromString(b"".join(entries))


def _plain_inputs(request: Any, expected: Mapping[str, tuple[str, int]], budget: RequestBudget) -> dict[str, Any] | None:
    """The feeds of the common request, in one pass: exactly the signature's inputs
    (``expected``: alias -> (tensor name, dtype), see ``input_table``), each a numeric tensor of
    the signature's dtype holding exactly its values (nothing is expanded, so the budget only
    counts what was sent). None for anything else: ``_check_inputs`` then takes the request step
    by step and gives the same feeds or TF Serving's error."""
    if isinstance(request, InPlacePredictRequest):  # read in place: the arrays view the request's bytes
        if len(request.tensors) != len(expected):
            return None
        feeds = {}
        for alias, (dtype, array) in request.tensors.items():
            info = expected.get(alias)
            if info is None or dtype != info[1]:
                return None
            feeds[info[0]] = array
        budget.sent += sum(array.nbytes for array in feeds.values())
        return feeds
    inputs = request.inputs
    if len(inputs) != len(expected):
        return None
    feeds = {}
    sent = 0
    for alias in inputs:
        info = expected.get(alias)
        proto = inputs[alias]
        if info is None or proto.dtype != info[1] or proto.dtype == DataType.DT_STRING:
            return None
        plain = decode_plain(proto)
        if plain is None:
            return None
        feeds[info[0]] = plain[0]
        sent += plain[1]
    budget.sent += sent
    return feeds


def input_table(signature: Any) -> dict[str, tuple[str, int]]:
    """A signature's inputs as a plain dict: alias -> (tensor name, dtype)."""
    return {alias: (info.name, info.dtype) for alias, info in signature.inputs.items()}


@dataclass(frozen=True)
class _Plan:
    """What every Predict on one signature of a servable reads, derived once."""

    signature: Any
    inputs: dict[str, tuple[str, int]]
    outputs: list[str]  # aliases, sorted: the answer's order without output_filter
    fetches: list[str]  # their tensor names


def _plan(servable: Servable, signature_name: str) -> _Plan | None:
    key = ("predict", signature_name)
    plan = servable.derived.get(key)
    if plan is None:
        signature = servable.signature_defs.get(signature_name)
        if signature is None:
            return None
        outputs = sorted(signature.outputs)
        plan = _Plan(signature, input_table(signature), outputs, [signature.outputs[a].name for a in outputs])
        servable.derived[key] = plan
    return plan


def _check_inputs(request: predict_pb2.PredictRequest, signature: Any, budget: RequestBudget) -> dict[str, Any]:
    requested, expected = set(request.inputs), set(signature.inputs)
    defaults = dict(getattr(signature, "defaults", {}) or {})
    if len(requested) > len(expected) or (len(requested) < len(expected) and not defaults):
        raise StatusError.invalid_argument(
            f"input size does not match signature: {len(requested)}!={len(expected)} "
            f"len({_braces(requested)}) != len({_braces(expected)}). "
            f"Sent extra: {_braces(requested - expected)}. Missing but required: {_braces(expected - requested)}."
        )
    tensors = {}
    for alias in sorted(signature.inputs):
        info = signature.inputs[alias]
        if alias in request.inputs:
            proto = request.inputs[alias]
        elif alias in defaults:
            proto = defaults[alias]
        else:
            raise StatusError.invalid_argument(
                f"Signature input alias: {alias}(feed name: {info.name}) not found in request and no default "
                f"value provided. Inputs expected to be in the request {_braces(requested)}, or default input "
                f"alias set: {','.join(sorted(defaults))}"  # TensorFlow's GetInputValues: no braces here
            )
        tensors[info.name] = (proto.dtype, budget.decode(alias, proto))
    unused = requested - expected
    if unused:
        raise StatusError.invalid_argument(
            f"Inputs contains invalid name. Used request inputs: {','.join(sorted(requested & expected))}, "
            f"request input: {','.join(sorted(requested))}"
        )
    # TF's session orders feeds by tensor name; its dtype error names the position in that order.
    feeds = {}
    by_name = {info.name: info.dtype for info in signature.inputs.values()}
    for position, name in enumerate(sorted(tensors)):
        given, value = tensors[name]
        if given != by_name[name]:
            raise StatusError.invalid_argument(
                f"Expects arg[{position}] to be {tf_type_string(by_name[name])} but {tf_type_string(given)} is provided"
            )
        feeds[name] = value
    return feeds


def _output_aliases(request: predict_pb2.PredictRequest, signature: Any) -> list[str]:
    """The aliases of a request's ``output_filter``, checked as TF Serving checks them."""
    seen: set[str] = set()
    for alias in request.output_filter:
        if alias not in signature.outputs:
            raise StatusError.invalid_argument(
                f"output tensor alias not found in signature: {alias} Outputs expected to be in the set "
                f"{_braces(signature.outputs)}."
            )
        if alias in seen:
            raise StatusError.invalid_argument(f"duplicate output tensor alias: {alias}")
        seen.add(alias)
    return list(request.output_filter)


def predict_outputs(servable: Servable, request: Any, *, method_name_check: bool = False,
                    max_tensor_bytes: int = DEFAULT_MAX_REQUEST_TENSOR_BYTES) -> tuple[str, dict[str, np.ndarray]]:
    """Run a Predict request (a PredictRequest, or one read in place) on a resolved servable:
    the signature's name and the outputs by alias; raise StatusError as TF Serving would.

    ``max_tensor_bytes`` bounds what the request may make the server create beyond what it sent
    (``--max_request_tensor_bytes``; see ``_limits``).
    """
    signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
    plan = _plan(servable, signature_name)
    if plan is None:
        raise StatusError.failed_precondition(f'Serving signature key "{signature_name}" not found.')
    signature = plan.signature
    if method_name_check and signature.method_name not in PREDICT_METHODS:
        raise StatusError.internal(
            "Expected prediction signature method_name to be one of {" + ", ".join(PREDICT_METHODS)
            + "}. Was: " + signature.method_name
        )
    budget = RequestBudget(max_tensor_bytes)
    feeds = _plain_inputs(request, plan.inputs, budget)
    if feeds is None:
        if isinstance(request, InPlacePredictRequest):  # not its plain form: the message, step by step
            request = predict_pb2.PredictRequest.FromString(request.data)
        feeds = _check_inputs(request, signature, budget)
    if request.output_filter:
        aliases = _output_aliases(request, signature)
        fetches = [signature.outputs[a].name for a in aliases]
    else:
        aliases, fetches = plan.outputs, plan.fetches
    outputs = dict(zip(aliases, servable.run(feeds, fetches)))
    del feeds  # the inputs' memory goes back before the answer is built
    budget.answer(outputs.values())
    return signature_name, outputs


def run_predict(servable: Servable, request: predict_pb2.PredictRequest, *, tensor_content: bool = False,
                method_name_check: bool = False,
                max_tensor_bytes: int = DEFAULT_MAX_REQUEST_TENSOR_BYTES) -> predict_pb2.PredictResponse:
    """Run a Predict request on a resolved servable into a PredictResponse (see predict_outputs)."""
    signature_name, outputs = predict_outputs(servable, request, method_name_check=method_name_check,
                                              max_tensor_bytes=max_tensor_bytes)
    response = predict_pb2.PredictResponse()
    encode_outputs(outputs, response, tensor_content)
    response.model_spec.CopyFrom(response_model_spec(request.model_spec.name, signature_name, servable.version))
    return response


@functools.lru_cache(maxsize=1024)
def _model_spec_field(name: str, signature_name: str, version: int) -> bytes:
    return length_delimited(2, response_model_spec(name, signature_name, version).SerializeToString())  # model_spec = 2


def predict_response_bytes(outputs: dict[str, np.ndarray], model_name: str, signature_name: str, version: int,
                           as_tensor_content: bool) -> bytes:
    """The serialized PredictResponse, written once: each numeric output's values go from its
    array's buffer straight into the answer (the bytes gRPC sends), with no message built and
    serialized on the way. The same bytes as ``run_predict``'s response serialized."""
    pieces: list[Any] = []
    for alias in list(outputs):
        value = outputs.pop(alias)
        found = tensor_pieces(value, typed=not as_tensor_content)
        if found is None:  # strings, empty tensors: through a TensorProto
            encode = encode_tensor if as_tensor_content else encode_as_fields
            tensor: tuple[Any, ...] = (encode(value, predict_pb2.PredictResponse().outputs[alias]).SerializeToString(),)
            size = len(tensor[0])
        else:
            tensor, size = (found[0], found[1].data), len(found[0]) + found[1].nbytes
        pieces += [map_entry_head(1, alias, size), *tensor]  # PredictResponse.outputs = 1
    pieces.append(_model_spec_field(model_name, signature_name, version))
    return b"".join(pieces)
