"""What the bench sends: inputs (given, or made up from the signature), serialized once, up front,
into gRPC PredictRequest bytes or TF Serving REST JSON bodies."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tfsk._base.codec import encode_tensor
from tfsk._base.dtypes import DataType, numpy_dtype
from tfsk._base.messages import MESSAGES
from tfsk.client import Client, ClientError, NotFoundError, ServingError, TensorSpec

from ._errors import BenchError

__all__ = ["grpc_body", "rest_body", "rest_path", "signature_inputs", "synthesize"]


def rest_path(model: str, version: int | None, label: str | None) -> str:
    """TF Serving's REST predict URL path for a model, a version or a label."""
    where = f"/versions/{version}" if version is not None else f"/labels/{label}" if label is not None else ""
    return f"/v1/models/{model}{where}:predict"


def _grpc_specs(target: str, model: str, signature: str, version: int | None,
                label: str | None) -> dict[str, TensorSpec]:
    try:
        with Client(target, timeout=10, retries=0, models_config=None) as client:
            found = client.metadata(model, version=version, label=label)
    except NotFoundError as error:
        raise BenchError(f"unknown model: {error}") from None
    except ServingError as error:
        raise BenchError(f"cannot read the signature of {model} from {target}: {error}") from None
    if signature not in found.signatures:
        raise BenchError(f"{model} has no signature {signature!r}; its signatures: {', '.join(sorted(found.signatures))}")
    return found.signatures[signature].inputs


def _rest_specs(target: str, model: str, signature: str, version: int | None,
                label: str | None) -> dict[str, TensorSpec]:
    url = f"http://{target}{rest_path(model, version, label).removesuffix(':predict')}/metadata"
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            answer = json.loads(reply.read())
    except urllib.error.HTTPError as error:
        from ._rest import error_text

        message = error_text(error.read())
        if error.code == 404:
            raise BenchError(f"unknown model: {model} ({message})") from None
        raise BenchError(f"cannot read the signature of {model} from {url}: HTTP {error.code} {message}") from None
    except (OSError, ValueError) as error:
        raise BenchError(f"cannot reach {target} over REST ({url}): {error}; is it the REST port (--rest_api_port)?") from None
    signatures = answer.get("metadata", {}).get("signature_def", {}).get("signature_def", {})
    if signature not in signatures:
        names = ", ".join(sorted(n for n in signatures if not n.startswith("__")))
        raise BenchError(f"{model} has no signature {signature!r}; its signatures: {names}")
    specs = {}
    for name, info in signatures[signature].get("inputs", {}).items():
        try:
            dtype = np.dtype(numpy_dtype(getattr(DataType, info.get("dtype", ""), -1)))
        except KeyError:
            dtype = np.dtype(object)
        shape_info = info.get("tensor_shape", {})
        shape = None if shape_info.get("unknown_rank") else tuple(
            None if int(d.get("size", -1)) < 0 else int(d["size"]) for d in shape_info.get("dim", []))
        specs[name] = TensorSpec(dtype, shape, info.get("name", ""))
    return specs


def signature_inputs(target: str, model: str, signature: str, *, version: int | None = None,
                     label: str | None = None, protocol: str = "grpc") -> dict[str, TensorSpec]:
    """The signature's inputs, as the server (GetModelMetadata, or REST's ``/metadata``) describes them."""
    reader = _rest_specs if protocol == "rest" else _grpc_specs
    try:
        return reader(target, model, signature, version, label)
    except ClientError as error:
        raise BenchError(f"cannot read the signature of {model} from {target}: {error}") from None


def synthesize(specs: Mapping[str, TensorSpec], batch_size: int = 1, seed: int = 0) -> dict[str, np.ndarray]:
    """Made-up inputs of the signature's dtypes and shapes: ``batch_size`` for each unknown dimension
    (the batch), random values (numbers small enough for any id lookup, short strings)."""
    rng = np.random.default_rng(seed)
    inputs = {}
    for name, spec in specs.items():
        shape = (batch_size,) if spec.shape is None else tuple(batch_size if d is None else d for d in spec.shape)
        kind = spec.dtype.kind
        if kind == "f" or kind == "c":
            inputs[name] = rng.standard_normal(shape).astype(spec.dtype)
        elif kind in "iu":
            inputs[name] = rng.integers(0, 2, shape).astype(spec.dtype)
        elif kind == "b":
            inputs[name] = np.zeros(shape, dtype=bool)
        else:
            inputs[name] = np.full(shape, b"tfsk", dtype=object)
    return inputs


def grpc_body(model: str, inputs: Mapping[str, np.ndarray], signature: str, version: int | None,
              label: str | None) -> bytes:
    """A serialized PredictRequest."""
    request = MESSAGES["PredictRequest"]()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    if label is not None:
        request.model_spec.version_label = label
    for name, value in inputs.items():
        encode_tensor(np.asarray(value), request.inputs[name])
    return bytes(request.SerializeToString())


def _jsonable(array: np.ndarray) -> Any:
    if array.dtype.kind in "OSU":
        def text(item: Any) -> Any:
            if isinstance(item, str):
                return item
            try:
                return bytes(item).decode("utf-8")
            except UnicodeDecodeError:
                return {"b64": base64.b64encode(bytes(item)).decode("ascii")}  # TF Serving's REST binary form
        return np.vectorize(text, otypes=[object])(array).tolist() if array.size else array.tolist()
    return array.tolist()


def rest_body(inputs: Mapping[str, np.ndarray], signature: str) -> bytes:
    """A REST predict body in the columnar form (``inputs``), which takes any batch and any dtype."""
    return json.dumps({"signature_name": signature,
                       "inputs": {name: _jsonable(np.asarray(value)) for name, value in inputs.items()}}).encode()


def bodies_for(batches: Sequence[Mapping[str, np.ndarray]], protocol: str, model: str, signature: str,
               version: int | None, label: str | None) -> tuple[bytes, ...]:
    if protocol == "rest":
        return tuple(rest_body(batch, signature) for batch in batches)
    return tuple(grpc_body(model, batch, signature, version, label) for batch in batches)
