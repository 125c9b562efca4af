"""``--rest_api_port``: TF Serving's REST API and its Prometheus page, on waitress.

REST is a transport only: every endpoint turns its URL and JSON into the request the gRPC
service would get and runs the same code (model resolution, Predict/Classify/Regress, status,
metadata), then prints the answer as TF Serving's REST handler does (``http_rest_api_handler.cc``,
``http_server.cc``). Errors are ``{"error": "<message>"}`` with TF Serving's HTTP status per code.

waitress, because TF Serving's REST server is a fixed pool of ``--rest_api_num_threads`` workers
behind an event loop that reads whole requests first: waitress is exactly that (one I/O thread
buffers each request, a pool of N threads runs the application), and the handlers block on
TensorFlow anyway, which an asyncio server would have to push onto threads again.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import re
import threading
import time
import urllib.parse
import zlib
from collections.abc import Callable, Iterable
from typing import Any

import grpc
import waitress
from google.protobuf import json_format
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    predict_pb2,
    regression_pb2,
)

from tfsk._base.codec import decode_tensor, encode_tensor

from .._core import ServerCore
from .._metrics import exposition, record_request
from .._predict import DEFAULT_SIGNATURE
from .._services import SIGNATURE_DEF_FIELD, model_metadata, model_status, run_inference
from .._status import StatusError
from ._examples import (
    classify_results_json,
    examples_from_json,
    regress_results_json,
)
from ._json import predict_inputs_from_json, predict_outputs_json
from ._json_values import json_value_text, parse_json

__all__ = ["HTTP_STATUS", "RestServer"]

logger = logging.getLogger(__name__)

#: ``http_server.cc`` ``ToHTTPStatusCode``.
HTTP_STATUS = {
    "OK": 200, "CANCELLED": 499, "UNKNOWN": 500, "INVALID_ARGUMENT": 400, "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404, "ALREADY_EXISTS": 409, "PERMISSION_DENIED": 403, "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400, "ABORTED": 409, "OUT_OF_RANGE": 400, "UNIMPLEMENTED": 501, "INTERNAL": 500,
    "UNAVAILABLE": 503, "DATA_LOSS": 500, "UNAUTHENTICATED": 401,
}
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            409: "Conflict", 429: "Too Many Requests", 499: "Client Closed Request", 500: "Internal Server Error",
            501: "Not Implemented", 503: "Service Unavailable", 504: "Gateway Timeout"}
_V1 = re.compile(r"/v1/.*", re.IGNORECASE | re.DOTALL)
_POST = re.compile(r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)",
                   re.IGNORECASE)
_GET = re.compile(r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?",
                  re.IGNORECASE)
_NOT_FOUND_PAGE = (b"<html><head><title>404 Not Found</title></head><body><h1>404 Not Found</h1>"
                   b"<p>The requested URL was not found on this server.</p></body></html>\n")
_CORS_HEADERS = [("Access-Control-Allow-Origin", "*"), ("Access-Control-Allow-Methods", "POST, GET"),
                 ("Access-Control-Allow-Headers", "Content-Type")]
#: Bodies (after gzip) are refused beyond this size, so a small compressed body cannot exhaust memory.
MAX_BODY_BYTES = 1 << 30
_MAX_VERSION = 2**63 - 1

Response = tuple[int, bytes]


def _error_body(message: str) -> bytes:
    return json.dumps({"error": message}, indent=4, ensure_ascii=False).encode("utf-8")


def _model_spec(name: str, version: str | None, label: str | None, signature_name: str = "") -> model_pb2.ModelSpec:
    spec = model_pb2.ModelSpec(name=name, signature_name=signature_name)
    if version is not None:
        spec.version.value = int(version)
    elif label is not None:
        spec.version_label = label
    return spec


def _signature_name(doc: Any) -> str:
    if not isinstance(doc, dict):
        raise StatusError.invalid_argument(f"JSON Value: {json_value_text(doc)} Is not object")
    name = doc.get("signature_name", "")
    if not isinstance(name, str):
        raise StatusError.invalid_argument(
            f"JSON Value: {json_value_text(doc)} not formatted correctly. 'signature_name' key must be a string value.")
    return name


def _gunzip(body: bytes) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, MAX_BODY_BYTES + 1)
    except zlib.error as error:
        raise StatusError.invalid_argument(f"Failed to decompress the gzip request body: {error}") from None
    if len(data) > MAX_BODY_BYTES:
        raise StatusError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                          f"The request body is larger than {MAX_BODY_BYTES} bytes once decompressed")
    return data


class _Api:
    """The ``/v1`` handlers: route, decode, run the shared handler, encode."""

    def __init__(self, core: ServerCore, *, method_name_check: bool, timeout_seconds: float, threads: int,
                 max_tensor_bytes: int) -> None:
        self._core = core
        self._method_name_check = method_name_check
        self._max_tensor_bytes = max_tensor_bytes  # --max_request_tensor_bytes, as for gRPC
        self._timeout = timeout_seconds
        self._runs = concurrent.futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="tfsk-rest-run")

    def close(self) -> None:
        self._runs.shutdown(wait=False, cancel_futures=True)

    def handle(self, method: str, uri: str, body: bytes) -> Response:
        """One ``/v1`` request; counted in request_count (and, when OK, request_latency) as TF Serving counts it."""
        start = time.perf_counter()
        model_name, api = "", ""
        try:
            if method == "POST" and (match := _POST.fullmatch(uri)) and match.group(4) in ("classify", "regress",
                                                                                            "predict"):
                name, version, label, api = match.groups()
                model_name = self._decode(name)
                spec = _model_spec(model_name, self._version(version),
                                   None if label is None else self._decode(label))
                result = self._with_timeout(lambda: self._infer(api, spec, body))
            elif method == "GET" and (match := _GET.fullmatch(uri)) and match.group(4) in (None, "metadata"):
                name, version, label, subresource = match.groups()
                if name is None:
                    raise StatusError.invalid_argument("Missing model name in request.")
                model_name = self._decode(name)
                spec = _model_spec(model_name, self._version(version),
                                   None if label is None else self._decode(label))
                result = self._metadata(spec) if subresource else self._status(spec)
            else:
                raise StatusError.invalid_argument(f"Malformed request: {method} {uri}")
            status = "OK"
        except StatusError as error:
            status, result = error.code.name, (HTTP_STATUS.get(error.code.name, 500), _error_body(error.message))
        except RecursionError:  # lists nested deeper than Python's stack: bad input, not a server fault
            status, result = "INVALID_ARGUMENT", (400, _error_body("JSON Value is nested too deeply to be a tensor"))
        except Exception as error:  # a bug of ours answers 500 and is logged; the server stays up
            logger.exception("unexpected failure in REST %s %s", method, uri)
            status, result = "INTERNAL", (500, _error_body(f"{type(error).__name__}: {error}"))
        record_request(model_name, status, api, "REST", time.perf_counter() - start)
        return result

    @staticmethod
    def _decode(text: str) -> str:
        # curl_easy_unescape: %XX decoded, '+' kept, malformed escapes left as they are.
        return urllib.parse.unquote(text, errors="surrogateescape")

    @staticmethod
    def _version(digits: str | None) -> str | None:
        if digits is not None and int(digits) > _MAX_VERSION:
            raise StatusError.invalid_argument(f"Failed to convert version: {digits} to numeric.")
        return digits

    def _with_timeout(self, run: Callable[[], Response]) -> Response:
        """``--rest_api_timeout_in_ms``: the answer is DEADLINE_EXCEEDED when the run takes longer."""
        future = self._runs.submit(run)
        try:
            return future.result(timeout=self._timeout)
        except concurrent.futures.TimeoutError:
            raise StatusError(grpc.StatusCode.DEADLINE_EXCEEDED, "Timed out waiting for notification") from None

    def _infer(self, api: str, spec: model_pb2.ModelSpec, body: bytes) -> Response:
        doc = parse_json(body)
        spec.signature_name = _signature_name(doc)
        if api == "predict":
            return 200, self._predict(spec, doc, may_hold_bools=b"true" in body or b"false" in body)
        request: Any = (classification_pb2.ClassificationRequest() if api == "classify"
                        else regression_pb2.RegressionRequest())
        request.model_spec.CopyFrom(spec)
        examples_from_json(doc, request.input)
        with self._core.resolve(spec) as servable:
            response = run_inference(servable, api.capitalize(), request, method_name_check=self._method_name_check,
                                     max_tensor_bytes=self._max_tensor_bytes)
        if api == "classify":
            return 200, classify_results_json(response.result)
        return 200, regress_results_json(response.result)

    def _predict(self, spec: model_pb2.ModelSpec, doc: dict[str, Any], may_hold_bools: bool) -> bytes:
        with self._core.resolve(spec) as servable:
            signature_name = spec.signature_name or DEFAULT_SIGNATURE
            signature = servable.signature_defs.get(signature_name)
            if signature is None:
                raise StatusError.invalid_argument(
                    f'Serving signature name: "{signature_name}" not found in signature def')
            if not signature.inputs:
                raise StatusError.invalid_argument(
                    f"Failed to get input map for signature: {spec.signature_name or 'DEFAULT'}")
            request_format, tensors = predict_inputs_from_json(
                doc, {alias: info.dtype for alias, info in signature.inputs.items()}, may_hold_bools=may_hold_bools)
            request = predict_pb2.PredictRequest(model_spec=spec)
            for alias, array in tensors.items():
                encode_tensor(array, request.inputs[alias])
            response = run_inference(servable, "Predict", request, tensor_content=True,
                                     method_name_check=self._method_name_check,
                                     max_tensor_bytes=self._max_tensor_bytes)
        outputs = {alias: decode_tensor(proto) for alias, proto in response.outputs.items()}
        return predict_outputs_json(outputs, request_format)

    def _status(self, spec: model_pb2.ModelSpec) -> Response:
        response = model_status(self._core, get_model_status_pb2.GetModelStatusRequest(model_spec=spec))
        return 200, json_format.MessageToJson(response, indent=1, always_print_fields_with_no_presence=True).encode()

    def _metadata(self, spec: model_pb2.ModelSpec) -> Response:
        request = get_model_metadata_pb2.GetModelMetadataRequest(model_spec=spec, metadata_field=[SIGNATURE_DEF_FIELD])
        response = model_metadata(self._core, request)
        signatures = get_model_metadata_pb2.SignatureDefMap()
        response.metadata[SIGNATURE_DEF_FIELD].Unpack(signatures)
        options: dict[str, Any] = {"preserving_proto_field_name": True, "always_print_fields_with_no_presence": True}
        document = {
            "model_spec": json_format.MessageToDict(response.model_spec, **options),
            "metadata": {SIGNATURE_DEF_FIELD: json_format.MessageToDict(signatures, **options)},
        }
        return 200, json.dumps(document, indent=4).encode()


class RestServer:
    """The REST port: ``/v1`` to the API, the Prometheus path (if enabled) to the metrics page, else 404."""

    def __init__(self, core: ServerCore, *, threads: int, timeout_ms: int, cors: bool, prometheus_path: str | None,
                 method_name_check: bool, max_tensor_bytes: int) -> None:
        self._threads = max(threads, 1)
        self._api = _Api(core, method_name_check=method_name_check, timeout_seconds=max(timeout_ms, 1) / 1000,
                         threads=self._threads, max_tensor_bytes=max_tensor_bytes)
        self._cors = cors
        self._prometheus_path = prometheus_path
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self, host: str, port: int) -> int:
        """Listen (OSError when the port is taken) and serve on a thread; returns the bound port."""
        self._server = waitress.create_server(
            self._app, host=host, port=port, threads=self._threads, ident="", max_request_body_size=MAX_BODY_BYTES,
            clear_untrusted_proxy_headers=True)
        self._thread = threading.Thread(target=self._server.run, name="tfsk-rest", daemon=True)
        self._thread.start()
        return int(self._server.effective_port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server.task_dispatcher.shutdown(timeout=2)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._api.close()

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        uri = environ.get("REQUEST_URI") or environ.get("PATH_INFO", "/")
        path = uri.split("?", 1)[0].split("#", 1)[0]
        if self._prometheus_path is not None and path == self._prometheus_path:
            if uri != self._prometheus_path:
                status, body = 400, f"Unexpected path: {uri}. Should be {self._prometheus_path}".encode()
            else:
                status, body = 200, exposition().encode()
            return self._send(start_response, status, body, "text/plain", [])
        if not _V1.fullmatch(uri):
            return self._send(start_response, 404, _NOT_FOUND_PAGE, "text/html", [])
        cors = list(_CORS_HEADERS) if self._cors else []
        if method == "OPTIONS":  # CORS preflight: fine when there is an Origin, else 400, empty body either way
            origin = environ.get("HTTP_ORIGIN", "")
            ok = "http://" in origin or "https://" in origin
            return self._send(start_response, 200 if ok else 400, b"", "application/json", cors)
        try:
            body = self._read_body(environ)
        except StatusError as error:
            return self._send(start_response, HTTP_STATUS[error.code.name], _error_body(error.message),
                              "application/json", cors)
        status, payload = self._api.handle(method, uri, body)
        return self._send(start_response, status, payload, "application/json", cors)

    @staticmethod
    def _read_body(environ: dict[str, Any]) -> bytes:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else environ["wsgi.input"].read()
        if "gzip" in environ.get("HTTP_CONTENT_ENCODING", ""):
            body = _gunzip(body)
        return body

    @staticmethod
    def _send(start_response: Callable[..., Any], status: int, body: bytes, content_type: str,
              headers: list[tuple[str, str]]) -> list[bytes]:
        start_response(f"{status} {_REASONS.get(status, 'Error')}",
                       [("Content-Type", content_type), ("Content-Length", str(len(body))), *headers])
        return [body]
