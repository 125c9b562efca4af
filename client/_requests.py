"""Requests built and responses read the same way by the blocking and the asyncio client."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from google.protobuf.message import DecodeError, Message

from tfsk._base import codec
from tfsk._base.dtypes import numpy_dtype
from tfsk._base.messages import MESSAGES, POOL
from tfsk._base.naming import DEFAULT_SIGNATURE
from tfsk._base.wire import LENGTH, fields

from ._errors import ClientError, FailedPreconditionError, InputError, TensorDecodeError
from ._types import ModelMetadata, Prediction, Signature, TensorSpec, VersionStatus
from ._wire import decode_predict_response, encode_predict_request

__all__ = [
    "METHODS", "answered_version", "available_version", "metadata_from", "metadata_request", "model_spec", "predict_request",
    "prediction_from", "reload_request", "status_request", "statuses_from", "stubs",
]

#: method -> (gRPC path, request message, response message); Predict travels as raw wire bytes.
METHODS: dict[str, tuple[str, type[Message] | None, type[Message] | None]] = {
    "Predict": ("/tensorflow.serving.PredictionService/Predict", None, None),
    "GetModelMetadata": ("/tensorflow.serving.PredictionService/GetModelMetadata", MESSAGES["GetModelMetadataRequest"],
                         MESSAGES["GetModelMetadataResponse"]),
    "GetModelStatus": ("/tensorflow.serving.ModelService/GetModelStatus", MESSAGES["GetModelStatusRequest"],
                       MESSAGES["GetModelStatusResponse"]),
    "HandleReloadConfigRequest": ("/tensorflow.serving.ModelService/HandleReloadConfigRequest",
                                  MESSAGES["ReloadConfigRequest"], MESSAGES["ReloadConfigResponse"]),
}
_SIGNATURE_DEF_MAP = "type.googleapis.com/tensorflow.serving.SignatureDefMap"
_STATE_NAMES = {v.number: v.name for v in MESSAGES["ModelVersionStatus"].DESCRIPTOR.enum_types_by_name["State"].values}
_CODE_NAMES = {v.number: v.name for v in POOL.FindEnumTypeByName("tensorflow.error.Code").values}


def model_spec(model: str, version: int | None = None, label: str | None = None, signature: str | None = None) -> Any:
    if version is not None and label is not None:
        raise ClientError("give a version or a label, not both")
    spec = MESSAGES["ModelSpec"](name=model)
    if version is not None:
        spec.version.value = version
    if label is not None:
        spec.version_label = label
    if signature:
        spec.signature_name = signature
    return spec


def predict_request(model: str, inputs: Mapping[str, Any], version: int | None, label: str | None,
                    signature: str | None, output_filter: Sequence[str] | None) -> bytes:
    spec = model_spec(model, version, label, signature)
    try:
        return encode_predict_request(spec, inputs, output_filter or ())
    except (TypeError, ValueError) as error:
        raise InputError(f"inputs cannot be sent as tensors: {error}") from None


def prediction_from(response: bytes, model: str, signature: str | None) -> Prediction:
    try:
        outputs, spec = decode_predict_response(response)
    except (codec.TensorDecodeError, DecodeError, UnicodeDecodeError) as error:
        raise TensorDecodeError(f"the answer of {model} cannot be read: {error}") from None
    return Prediction(outputs, model=spec.name or model, version=spec.version.value,
                      signature=spec.signature_name or signature or DEFAULT_SIGNATURE)


def answered_version(response: bytes) -> int | None:
    """The version in a serialized PredictResponse's ModelSpec, read without decoding its tensors."""
    try:
        for number, wire_type, value in fields(memoryview(response)):
            if number == 2 and wire_type == LENGTH:  # PredictResponse.model_spec
                spec = MESSAGES["ModelSpec"].FromString(bytes(value))
                return spec.version.value if spec.HasField("version") else None
    except (codec.TensorDecodeError, DecodeError):
        return None
    return None


def metadata_request(model: str, version: int | None, label: str | None) -> Any:
    return MESSAGES["GetModelMetadataRequest"](model_spec=model_spec(model, version, label), metadata_field=["signature_def"])


def _tensor_spec(info: Any) -> TensorSpec:
    try:
        dtype = np.dtype(numpy_dtype(info.dtype))
    except KeyError:
        dtype = np.dtype(object)
    shape = None if info.tensor_shape.unknown_rank else tuple(None if d.size < 0 else d.size for d in info.tensor_shape.dim)
    return TensorSpec(dtype, shape, info.name)


def metadata_from(response: Any, model: str) -> ModelMetadata:
    """The signatures of a GetModelMetadata answer (TF's internal ``__saved_model_init_op`` left out)."""
    packed = response.metadata["signature_def"]
    if packed.type_url != _SIGNATURE_DEF_MAP:
        raise ClientError(f"unexpected metadata type {packed.type_url!r}")
    signature_map = MESSAGES["SignatureDefMap"].FromString(packed.value)
    signatures = {
        name: Signature({k: _tensor_spec(v) for k, v in sorted(s.inputs.items())},
                        {k: _tensor_spec(v) for k, v in sorted(s.outputs.items())}, s.method_name)
        for name, s in sorted(signature_map.signature_def.items()) if not name.startswith("__")
    }
    return ModelMetadata(response.model_spec.name or model, response.model_spec.version.value, signatures)


def status_request(model: str, version: int | None) -> Any:
    return MESSAGES["GetModelStatusRequest"](model_spec=model_spec(model, version))


def statuses_from(response: Any) -> list[VersionStatus]:
    return [
        VersionStatus(s.version, _STATE_NAMES.get(s.state, str(s.state)),
                      _CODE_NAMES.get(s.status.error_code, str(s.status.error_code)), s.status.error_message)
        for s in response.model_version_status
    ]


def reload_request(config: Any) -> Any:
    """A ReloadConfigRequest for a ``ModelServerConfig`` (ours, TF Serving's generated one) or its text."""
    request = MESSAGES["ReloadConfigRequest"]()
    if isinstance(config, str):
        from google.protobuf import text_format

        text_format.Parse(config, request.config)
    else:  # any ModelServerConfig class: the bytes are the same in every descriptor pool
        request.config.ParseFromString(config.SerializeToString())
    return request


def stubs(channel: Any) -> dict[str, Any]:
    """One callable per method on ``channel`` (a blocking or an asyncio channel)."""
    found = {}
    for name, (path, request, response) in METHODS.items():
        if request is None or response is None:
            found[name] = channel.unary_unary(path)  # bytes in, bytes out
        else:
            found[name] = channel.unary_unary(path, request_serializer=request.SerializeToString,
                                              response_deserializer=response.FromString)
    return found


def available_version(entries: Sequence[VersionStatus], model: str, version: int | None) -> int | None:
    """The AVAILABLE version among GetModelStatus ``entries``; raise if the awaited version failed to load."""
    for entry in entries:
        if entry.state == "AVAILABLE":
            return entry.version
        if version is not None and entry.state == "END" and entry.error_code != "OK":
            raise FailedPreconditionError(f"version {version} of {model} failed to load: "
                                          f"{entry.error_code}: {entry.error_message}")
    return None
