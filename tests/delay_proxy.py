"""A gRPC proxy in front of a server that holds back Predict calls asking for one label: a slow
canary without a slow model. Every method passes through as raw bytes (nothing is re-encoded), so
the client cannot tell it from the server behind it, apart from the delay."""

from __future__ import annotations

import time
from concurrent import futures

import grpc

from tfsk._base.messages import MESSAGES

_METHODS = {
    "tensorflow.serving.PredictionService": ("Predict", "GetModelMetadata", "Classify", "Regress", "MultiInference"),
    "tensorflow.serving.ModelService": ("GetModelStatus", "HandleReloadConfigRequest"),
}


class DelayProxy:
    """Listens on ``address`` (127.0.0.1, a free port); Predict calls for ``label`` wait ``seconds`` first,
    or fail with UNAVAILABLE when ``fail`` (a shadow that errors)."""

    def __init__(self, upstream: str, label: str, seconds: float, *, fail: bool = False, workers: int = 32) -> None:
        self.label, self.seconds, self.fail = label, seconds, fail
        self._channel = grpc.insecure_channel(upstream, options=[("grpc.max_receive_message_length", -1),
                                                                  ("grpc.max_send_message_length", -1)])
        self._server = grpc.server(futures.ThreadPoolExecutor(workers),
                                   options=[("grpc.max_receive_message_length", -1)])
        handlers = []
        for service, methods in _METHODS.items():
            table = {name: grpc.unary_unary_rpc_method_handler(self._forward(f"/{service}/{name}", name == "Predict"))
                     for name in methods}
            handlers.append(grpc.method_handlers_generic_handler(service, table))
        self._server.add_generic_rpc_handlers(handlers)
        self.address = f"127.0.0.1:{self._server.add_insecure_port('127.0.0.1:0')}"
        self._server.start()

    def _forward(self, path: str, predict: bool):  # type: ignore[no-untyped-def]
        upstream = self._channel.unary_unary(path)

        def handle(request: bytes, context: grpc.ServicerContext) -> bytes:
            if predict and MESSAGES["PredictRequest"].FromString(request).model_spec.version_label == self.label:
                if self.fail:
                    context.abort(grpc.StatusCode.UNAVAILABLE, f"the proxy fails every call for label {self.label}")
                time.sleep(self.seconds)
            try:
                return upstream(request, timeout=context.time_remaining())  # type: ignore[no-any-return]
            except grpc.RpcError as error:
                context.abort(error.code(), error.details())
                raise

        return handle

    def stop(self) -> None:
        self._server.stop(grace=None)
        self._channel.close()

    def __enter__(self) -> DelayProxy:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
