"""The client: Predict, metadata, status and config reloads against TF Serving or the devserver."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

import grpc
import numpy as np

from ._channel import TLS, make_channel
from ._wire import decode_predict_response, encode_predict_request
from ._dtypes import numpy_dtype
from ._errors import ClientError, FailedPreconditionError, InvalidArgumentError, NotFoundError, ServingError, error_from_rpc
from ._protos import MESSAGES
from ._types import ConsistencyReport, ModelMetadata, PartInfo, Prediction, Signature, TensorSpec, VersionStatus

__all__ = ["Client", "DEFAULT_TARGET"]

DEFAULT_TARGET = "localhost:8500"
_SIGNATURE_DEF_MAP = "type.googleapis.com/tensorflow.serving.SignatureDefMap"
_METHODS = {
    "Predict": ("/tensorflow.serving.PredictionService/Predict", "PredictRequest", "PredictResponse"),
    "Classify": ("/tensorflow.serving.PredictionService/Classify", "ClassificationRequest", "ClassificationResponse"),
    "Regress": ("/tensorflow.serving.PredictionService/Regress", "RegressionRequest", "RegressionResponse"),
    "GetModelMetadata": ("/tensorflow.serving.PredictionService/GetModelMetadata", "GetModelMetadataRequest",
                         "GetModelMetadataResponse"),
    "GetModelStatus": ("/tensorflow.serving.ModelService/GetModelStatus", "GetModelStatusRequest", "GetModelStatusResponse"),
    "HandleReloadConfigRequest": ("/tensorflow.serving.ModelService/HandleReloadConfigRequest", "ReloadConfigRequest",
                                  "ReloadConfigResponse"),
}
_STATE_NAMES = {v.number: v.name for v in MESSAGES["ModelVersionStatus"].DESCRIPTOR.enum_types_by_name["State"].values}
_CODE_NAMES = {v.number: v.name for v in MESSAGES["StatusProto"].DESCRIPTOR.fields_by_name["error_code"].enum_type.values}
LINEAGE_SIGNATURE = "tfsk_lineage"


def _spec(info: Any) -> TensorSpec:
    try:
        dtype = np.dtype(numpy_dtype(info.dtype))
    except KeyError:
        dtype = np.dtype(object)
    shape = None if info.tensor_shape.unknown_rank else tuple(None if d.size < 0 else d.size for d in info.tensor_shape.dim)
    return TensorSpec(dtype, shape, info.name)


class Client:
    """A connection to one TF Serving (or devserver) deployment.

    ``target`` is ``host:port``, ``unix:/path``, ``dns:///host:port`` or a list of ``host:port``s
    (requests are spread round-robin). Calls have a deadline (``timeout`` seconds, per call
    overridable), are retried on UNAVAILABLE with backoff, and accept messages of any size.
    """

    def __init__(
        self,
        target: str | Sequence[str] = DEFAULT_TARGET,
        *,
        timeout: float | None = 30.0,
        retries: int = 3,
        tls: TLS | None = None,
        keepalive_seconds: float | None = 30.0,
        max_message_bytes: int = -1,
        channel_options: Sequence[tuple[str, object]] = (),
    ) -> None:
        self.target = target
        self.timeout = timeout
        self._channel = make_channel(target, tls=tls, retries=retries, keepalive_seconds=keepalive_seconds,
                                     max_message_bytes=max_message_bytes, options=channel_options)
        self._stubs = {
            name: self._channel.unary_unary(path, request_serializer=MESSAGES[request].SerializeToString,
                                            response_deserializer=MESSAGES[response].FromString)
            for name, (path, request, response) in _METHODS.items()
        }
        # Predict carries the big tensors: it sends and receives wire bytes built without extra copies.
        self._stubs["Predict"] = self._channel.unary_unary(_METHODS["Predict"][0])

    # -- plumbing ---------------------------------------------------------------------------
    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _call(self, method: str, request: Any, timeout: float | None) -> Any:
        try:
            return self._stubs[method](request, timeout=self.timeout if timeout is None else timeout)
        except grpc.RpcError as error:
            raise error_from_rpc(error) from None

    @staticmethod
    def _model_spec(target: Any, model: str, version: int | None, label: str | None, signature: str | None) -> None:
        if version is not None and label is not None:
            raise ClientError("give a version or a label, not both")
        target.name = model
        if version is not None:
            target.version.value = version
        if label is not None:
            target.version_label = label
        if signature:
            target.signature_name = signature

    # -- calls ------------------------------------------------------------------------------
    def predict(
        self,
        model: str,
        inputs: Mapping[str, Any],
        *,
        version: int | None = None,
        label: str | None = None,
        signature: str | None = None,
        output_filter: Sequence[str] | None = None,
        timeout: float | None = None,
    ) -> Prediction:
        """Run a signature (default ``serving_default``) on named inputs; return named numpy outputs.

        Outputs the server sent as ``tensor_content`` are read-only views of the response (no
        copy); ``.copy()`` one to change it.
        """
        spec = MESSAGES["ModelSpec"]()
        self._model_spec(spec, model, version, label, signature)
        try:
            request = encode_predict_request(spec, inputs, output_filter or ())
        except (TypeError, ValueError) as error:
            raise ClientError(f"inputs cannot be sent as tensors: {error}") from None
        try:
            response = self._call("Predict", request, timeout)
        except (InvalidArgumentError, FailedPreconditionError, NotFoundError) as error:
            raise self._with_hint(error, model, version, label, signature) from None
        outputs, spec = decode_predict_response(response)
        return Prediction(outputs, model=spec.name or model, version=spec.version.value,
                          signature=spec.signature_name or signature or "serving_default")

    def _with_hint(self, error: ServingError, model: str, version: int | None, label: str | None,
                   signature: str | None) -> ServingError:
        """Add what the server knows (real input names, signatures, versions) to an error."""
        try:
            if isinstance(error, NotFoundError):
                served = [s.version for s in self.status(model) if s.state == "AVAILABLE"]
                hint = f"model '{model}' has AVAILABLE versions {served}" if served else None
            else:
                metadata = self.metadata(model, version=version, label=label)
                name = signature or "serving_default"
                if isinstance(error, FailedPreconditionError) or name not in metadata.signatures:
                    hint = f"model '{model}' has signatures {sorted(metadata.signatures)}"
                else:
                    wanted = metadata.signatures[name].inputs
                    hint = f"signature '{name}' takes " + ", ".join(f"{k} {v.describe()}" for k, v in wanted.items())
        except ServingError:
            hint = None
        return type(error)(error.details, hint=hint, code=error.code)

    def metadata(self, model: str, *, version: int | None = None, label: str | None = None,
                 timeout: float | None = None) -> ModelMetadata:
        """The model's signatures (TF's internal ``__saved_model_init_op`` left out)."""
        request = MESSAGES["GetModelMetadataRequest"]()
        self._model_spec(request.model_spec, model, version, label, None)
        request.metadata_field.append("signature_def")
        response = self._call("GetModelMetadata", request, timeout)
        packed = response.metadata["signature_def"]
        if packed.type_url != _SIGNATURE_DEF_MAP:
            raise ClientError(f"unexpected metadata type {packed.type_url!r}")
        signature_map = MESSAGES["SignatureDefMap"].FromString(packed.value)
        signatures = {
            name: Signature({k: _spec(v) for k, v in sorted(s.inputs.items())},
                            {k: _spec(v) for k, v in sorted(s.outputs.items())}, s.method_name)
            for name, s in sorted(signature_map.signature_def.items()) if not name.startswith("__")
        }
        return ModelMetadata(response.model_spec.name or model, response.model_spec.version.value, signatures)

    def status(self, model: str, *, version: int | None = None, timeout: float | None = None) -> list[VersionStatus]:
        """Every version the server has seen, newest first (or only ``version``)."""
        request = MESSAGES["GetModelStatusRequest"]()
        self._model_spec(request.model_spec, model, version, None, None)
        response = self._call("GetModelStatus", request, timeout)
        return [
            VersionStatus(s.version, _STATE_NAMES.get(s.state, str(s.state)),
                          _CODE_NAMES.get(s.status.error_code, str(s.status.error_code)), s.status.error_message)
            for s in response.model_version_status
        ]

    def reload_config(self, config: Any, *, timeout: float | None = None) -> None:
        """Replace the server's model config (a ``ModelServerConfig`` or its text). Models left out unload."""
        if isinstance(config, str):
            from google.protobuf import text_format
            from tensorflow_serving.config import model_server_config_pb2  # TF-free module

            config = text_format.Parse(config, model_server_config_pb2.ModelServerConfig())
        request = MESSAGES["ReloadConfigRequest"](config=config.SerializeToString())
        self._call("HandleReloadConfigRequest", request, timeout)

    def wait_until_available(self, model: str, version: int | None = None, timeout: float = 60.0,
                             poll_interval: float = 0.2) -> int:
        """Block until ``version`` (or any version) of ``model`` is AVAILABLE; return that version.

        A version that ends with an error raises at once; other failures are retried until ``timeout``.
        """
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                for entry in self.status(model, version=version, timeout=min(5.0, max(deadline - time.monotonic(), 0.1))):
                    if entry.state == "AVAILABLE":
                        return entry.version
                    if version is not None and entry.state == "END" and entry.error_code != "OK":
                        raise FailedPreconditionError(f"version {version} of {model} failed to load: "
                                                      f"{entry.error_code}: {entry.error_message}")
            except (NotFoundError, ServingError) as error:
                if isinstance(error, FailedPreconditionError):
                    raise
                last = error
            time.sleep(poll_interval)
        wanted = f"version {version} of {model}" if version is not None else f"a version of {model}"
        raise TimeoutError(f"{wanted} was not AVAILABLE within {timeout}s" + (f" (last answer: {last})" if last else ""))

    # -- composed models --------------------------------------------------------------------
    def lineage(self, model: str, *, version: int | None = None, label: str | None = None) -> dict[str, Any] | None:
        """What the exporter recorded about this version (``None`` for models not exported by tfsk)."""
        try:
            result = self.predict(model, {}, version=version, label=label, signature=LINEAGE_SIGNATURE)
        except (FailedPreconditionError, InvalidArgumentError):
            return None
        return json.loads(bytes(result["lineage"].item() if result["lineage"].shape == () else result["lineage"][0]))

    def parts(self, model: str, *, version: int | None = None, label: str | None = None) -> list[PartInfo]:
        from ._composed import list_parts

        return list_parts(self, model, version=version, label=label)

    def check_consistency(self, model: str, inputs: Mapping[str, Any] | None = None, *, version: int | None = None,
                          atol: float = 1e-5) -> ConsistencyReport:
        from ._composed import check_consistency

        return check_consistency(self, model, inputs, version=version, atol=atol)
