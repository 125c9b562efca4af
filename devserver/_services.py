"""The gRPC services: PredictionService and ModelService, over ServerCore.

Each handler checks the request in TF Serving's order and answers with its status codes and
messages; an unexpected failure is logged and reported as INTERNAL rather than taking the
server down.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import DecodeError
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from tfsk._base.messages import ModelServerConfig
from tfsk._base.wire import IN_PLACE_FROM, InPlacePredictRequest, read_predict_request

from ._core import ServerCore
from ._examples import ExamplesRequest, read_examples_request
from ._flags import DEFAULT_MAX_REQUEST_TENSOR_BYTES
from ._inference import classify_bytes, multi_inference_bytes, regress_bytes, run_classify, run_regress
from ._metrics import metric_value, record_request, record_runtime_latency
from ._predict import predict_outputs, predict_response_bytes, run_predict
from ._status import StatusError, grpc_message

__all__ = ["ModelService", "PredictionService", "model_metadata", "model_status", "run_inference"]

logger = logging.getLogger(__name__)
Handler = TypeVar("Handler", bound=Callable[..., Any])
SIGNATURE_DEF_FIELD = "signature_def"
#: The gRPC methods TF Serving counts in request_count / request_latency, by the API label it gives them.
_COUNTED = {"Predict": "Predict", "Classify": "Classify", "Regress": "Regress"}
_RUNNERS: dict[str, Callable[..., Any]] = {"Predict": run_predict, "Classify": run_classify, "Regress": run_regress}


def _reports_errors(method: Handler) -> Handler:
    @functools.wraps(method)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        start, status = time.perf_counter(), "OK"
        try:
            return method(self, request, context)
        except StatusError as error:
            status = error.code.name
            context.abort(error.code, grpc_message(error.message))
        except Exception as error:  # a bug of ours must not look like a bad request, nor kill the server
            status = "INTERNAL"
            logger.exception("unexpected failure in %s", method.__name__)
            context.abort(grpc.StatusCode.INTERNAL, grpc_message(f"{type(error).__name__}: {error}"))
        finally:
            if method.__name__ in _COUNTED:
                record_request(request.model_spec.name, status, _COUNTED[method.__name__], "GRPC",
                               time.perf_counter() - start)

    return wrapper  # type: ignore[return-value]


def _require_model_spec(request: Any) -> None:
    if isinstance(request, InPlacePredictRequest):  # read in place only with one
        return
    present = request.has_model_spec if isinstance(request, ExamplesRequest) else request.HasField("model_spec")
    if not present:
        raise StatusError.invalid_argument("Missing ModelSpec")


def run_inference(servable: Any, api: str, request: Any, *, run: Callable[..., Any] | None = None,
                  **options: Any) -> Any:
    """Run a resolved Predict/Classify/Regress (gRPC and REST alike), timing the model run.

    ``run`` stands in for the API's own runner (gRPC's Predict takes the outputs, to write them as bytes).
    """
    start = time.perf_counter()
    response = (run or _RUNNERS[api])(servable, request, **options)
    record_runtime_latency(request.model_spec.name, api, time.perf_counter() - start)
    return response


def model_metadata(core: ServerCore, request: Any) -> Any:
    """GetModelMetadata (gRPC and REST alike)."""
    _require_model_spec(request)
    if not request.metadata_field:
        raise StatusError.invalid_argument("GetModelMetadataRequest must specify at least one metadata_field")
    for field in request.metadata_field:
        if field != SIGNATURE_DEF_FIELD:
            raise StatusError.invalid_argument(f"Metadata field {field} is not supported")
    with core.resolve(request.model_spec) as servable:
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = servable.version
        signatures = get_model_metadata_pb2.SignatureDefMap()
        for name, signature in servable.signature_defs.items():
            signatures.signature_def[name].CopyFrom(signature)
        packed = any_pb2.Any()
        packed.Pack(signatures)
        response.metadata[SIGNATURE_DEF_FIELD].CopyFrom(packed)
        return response


def model_status(core: ServerCore, request: Any) -> Any:
    """GetModelStatus (gRPC and REST alike)."""
    _require_model_spec(request)
    name = request.model_spec.name
    statuses = core.manager.status(name)
    if request.model_spec.WhichOneof("version_choice") == "version":
        version = request.model_spec.version.value
        if version not in statuses:
            raise StatusError.not_found(f"Could not find version {version} of model {name}")
        chosen = {version: statuses[version]}
    else:  # labels are ignored here, as in TF Serving
        if not statuses:
            raise StatusError.not_found(f"Could not find any versions of model {name}")
        chosen = statuses
    response = get_model_status_pb2.GetModelStatusResponse()
    for version in sorted(chosen, reverse=True):
        status = chosen[version]
        entry = response.model_version_status.add(version=version, state=int(status.state))
        entry.status.error_code = status.error.code.value[0] if status.error else 0
        if status.error:
            entry.status.error_message = status.error.message
    return response


def read_predict_request_bytes(data: bytes) -> Any:
    """A PredictRequest's wire bytes: read in place when large and plain (its tensors stay views of
    ``data``), else parsed by the protobuf runtime; DecodeError where they are not a PredictRequest."""
    if len(data) >= IN_PLACE_FROM:
        request = read_predict_request(data)
        if request is not None:
            return request
    return predict_pb2.PredictRequest.FromString(data)


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """TF Serving's PredictionService. Register it with ``add_to_server``: Predict, Classify, Regress
    and MultiInference take and give wire bytes (requests read in place, answers written once)."""

    def __init__(self, core: ServerCore, *, tensor_content: bool, method_name_check: bool,
                 max_tensor_bytes: int = DEFAULT_MAX_REQUEST_TENSOR_BYTES) -> None:
        self._core = core
        self._tensor_content = tensor_content
        self._method_name_check = method_name_check
        self._max_tensor_bytes = max_tensor_bytes  # --max_request_tensor_bytes

    def add_to_server(self, server: grpc.Server) -> None:
        # Generic handlers are asked in the order they were added: the wire-bytes handlers first,
        # the generated handler (protobuf messages) for every other method.
        wire = {name: grpc.unary_unary_rpc_method_handler(handler) for name, handler in (
            ("Predict", self.predict_wire_bytes), ("Classify", self.classify_wire_bytes),
            ("Regress", self.regress_wire_bytes), ("MultiInference", self.multi_inference_wire_bytes))}
        server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
            "tensorflow.serving.PredictionService", wire)])
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(self, server)

    def predict_wire_bytes(self, data: bytes, context: grpc.ServicerContext) -> bytes:
        try:
            request = read_predict_request_bytes(data)
        except DecodeError:  # what gRPC itself answers for unparsable bytes (TF Serving's C++ gRPC: INTERNAL too)
            context.abort(grpc.StatusCode.INTERNAL, "Exception deserializing request!")
        return self.Predict(request, context)

    def _examples_wire_bytes(self, data: bytes, context: grpc.ServicerContext, method: Callable[..., Any],
                             multi: bool = False) -> bytes:
        try:
            request = read_examples_request(data, multi=multi)
        except DecodeError:  # as gRPC answers bytes its deserializer refuses (see predict_wire_bytes)
            context.abort(grpc.StatusCode.INTERNAL, "Exception deserializing request!")
        return method(request, context)  # type: ignore[no-any-return]

    def classify_wire_bytes(self, data: bytes, context: grpc.ServicerContext) -> bytes:
        return self._examples_wire_bytes(data, context, self.Classify)

    def regress_wire_bytes(self, data: bytes, context: grpc.ServicerContext) -> bytes:
        return self._examples_wire_bytes(data, context, self.Regress)

    def multi_inference_wire_bytes(self, data: bytes, context: grpc.ServicerContext) -> bytes:
        return self._examples_wire_bytes(data, context, self.MultiInference, multi=True)

    @_reports_errors
    def Predict(self, request: Any, context: grpc.ServicerContext) -> bytes:
        """A parsed PredictRequest (or one read in place) -> the serialized PredictResponse."""
        _require_model_spec(request)
        with self._core.resolve(request.model_spec) as servable:
            signature_name, outputs = run_inference(servable, "Predict", request, run=predict_outputs,
                                                    method_name_check=self._method_name_check,
                                                    max_tensor_bytes=self._max_tensor_bytes)
            return predict_response_bytes(outputs, request.model_spec.name, signature_name, servable.version,
                                          self._tensor_content)

    @_reports_errors
    def Classify(self, request: Any, context: grpc.ServicerContext) -> Any:
        _require_model_spec(request)
        with self._core.resolve(request.model_spec) as servable:
            return run_inference(servable, "Classify", request, run=classify_bytes,
                                 method_name_check=self._method_name_check, max_tensor_bytes=self._max_tensor_bytes)

    @_reports_errors
    def Regress(self, request: Any, context: grpc.ServicerContext) -> Any:
        _require_model_spec(request)
        with self._core.resolve(request.model_spec) as servable:
            return run_inference(servable, "Regress", request, run=regress_bytes,
                                 method_name_check=self._method_name_check, max_tensor_bytes=self._max_tensor_bytes)

    @_reports_errors
    def MultiInference(self, request: Any, context: grpc.ServicerContext) -> Any:
        spec = request.tasks[0].model_spec if request.tasks else model_pb2.ModelSpec()
        with self._core.resolve(spec) as servable:
            return multi_inference_bytes(servable, request, max_tensor_bytes=self._max_tensor_bytes)

    @_reports_errors
    def GetModelMetadata(self, request: Any, context: grpc.ServicerContext) -> Any:
        return model_metadata(self._core, request)


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, core: ServerCore) -> None:
        self._core = core

    @_reports_errors
    def GetModelStatus(self, request: Any, context: grpc.ServicerContext) -> Any:
        return model_status(self._core, request)

    @_reports_errors
    def HandleReloadConfigRequest(self, request: Any, context: grpc.ServicerContext) -> Any:
        if request.config.WhichOneof("config") != "model_config_list":
            raise StatusError.invalid_argument(
                "ServerModelConfig type not supported by HandleReloadConfigRequest. Only ModelConfigList is "
                "currently supported")
        before = {name: metric_value(name) for name in request.metric_names}
        # The generated request carries TF Serving's class; the core works on the TF-free one (same bytes).
        # The caller's deadline and cancellation end the wait for new models, so no thread stays pinned.
        remaining = context.time_remaining()
        deadline = time.monotonic() + remaining if remaining is not None and remaining < 1e9 else None
        self._core.reload_config(ModelServerConfig.FromString(request.config.SerializeToString()),
                                 origin="HandleReloadConfigRequest", cancelled=lambda: not context.is_active(),
                                 deadline=deadline)
        response = model_management_pb2.ReloadConfigResponse()
        response.status.error_code = 0
        for name in request.metric_names:
            response.metric.add(name=name, int64_value_increase=metric_value(name) - before[name])
        return response
