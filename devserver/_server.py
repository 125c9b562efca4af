"""The devserver process: TF Serving's start-up sequence, then gRPC until told to stop."""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
from tensorflow_serving.apis import model_service_pb2_grpc

from tfsk import serving_config
from tfsk._base.messages import ModelServerConfig
from tfsk._base.ports import why_port_is_taken

from ._core import ServerCore
from ._errors import StartupError
from ._flags import ServerOptions
from ._health import add_health_service
from ._manager import VersionManager
from ._metrics import batching_recorder, record_load_attempt
from ._servable import Servable, load_servable
from ._services import ModelService, PredictionService
from ._ssl import server_credentials
from ._status import StatusError
from ._warmup import run_warmup
from .batching import ServerBatching
from .rest import RestServer

__all__ = ["DevServer", "StartupError", "read_model_config"]

logger = logging.getLogger(__name__)

#: TF Serving's gRPC server takes messages up to INT32_MAX bytes both ways.
MAX_MESSAGE_BYTES = 2**31 - 1


def read_model_config(path: str) -> ModelServerConfig:
    """Parse a models.config through serving_config; errors read (and are logged) like TF Serving's."""
    try:
        text = Path(path).read_text()
    except OSError as error:
        raise StatusError.not_found(f"{path}; {error.strerror}") from None
    try:
        return serving_config.parse_model_server_config(text, source=path)
    except serving_config.ConfigParseError as error:
        logger.error("Error parsing text-format tensorflow.serving.ModelServerConfig: %s:%s: %s",
                     error.line, error.column, error.reason)
        raise StatusError.invalid_argument(f"Invalid protobuf file: '{path}'") from None


def log_config_advice(config: ModelServerConfig, allow_unavailable_labels: bool) -> None:
    """Say what serving_config's validator sees (a base path with no versions waits forever, ...).

    Advice only: what the server accepts or refuses is decided by TF Serving's own rules in ServerCore.
    """
    report = serving_config.validate_model_server_config(
        config, allow_version_labels_for_unavailable_models=allow_unavailable_labels)
    for finding in report.findings:
        logger.warning("config check: %s", finding)


def check_port_free(host: str, port: int) -> None:
    """Refuse a taken port before any model loads (TF Serving only finds out after loading them all)."""
    try:
        taken = why_port_is_taken(host, port)
    except socket.gaierror as error:
        raise StartupError(f"INVALID_ARGUMENT: cannot listen on {host}:{port}: {error.strerror}") from None
    if taken:
        raise StartupError(f"UNAVAILABLE: could not listen on {host}:{port}: {taken}; another "
                           "process holds the port: stop it, or choose another --port")


def read_prometheus_path(path: str) -> str | None:
    """``--monitoring_config_file``: the Prometheus page's path, or None when monitoring is off."""
    if not path:
        return None
    try:
        settings = serving_config.read_monitoring_config(path)
    except serving_config.ConfigError as error:
        raise StartupError(f"INVALID_ARGUMENT: Invalid protobuf file: '{path}' ({error})") from None
    return settings.prometheus_path if settings.prometheus_enabled else None


def single_model_config(options: ServerOptions) -> ModelServerConfig:
    config = ModelServerConfig()
    model = config.model_config_list.config.add()
    model.name, model.base_path, model.model_platform = options.model_name, options.model_base_path, "tensorflow"
    return config


class DevServer:
    """An embedded TF-Serving-compatible gRPC server (``start`` blocks until models are loaded)."""

    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        self.manager = VersionManager(
            self._load, max_load_retries=options.max_num_load_retries,
            retry_interval_seconds=options.load_retry_interval_micros / 1e6,
        )
        self.core = ServerCore(
            self.manager, allow_labels_for_unavailable=options.allow_version_labels_for_unavailable_models,
            file_system_poll_seconds=options.file_system_poll_wait_seconds,
        )
        self._grpc: grpc.Server | None = None
        self._rest: RestServer | None = None
        self._health: Any = None
        self.bound_port: int | None = None
        self.rest_port: int | None = None
        self.batching: ServerBatching | None = None  # set in start() from the batching flags

    def _load(self, name: str, version: int, path: Path) -> Servable:
        start = time.perf_counter()
        try:
            servable = load_servable(
                name, version, path, [t for t in self.options.saved_model_tags.split(",") if t],
                self.options.tensorflow_intra_op_parallelism, self.options.tensorflow_inter_op_parallelism,
                self.options.session_run_in_caller_thread,
            )
        except BaseException:
            record_load_attempt(str(path), False, time.perf_counter() - start)
            raise
        record_load_attempt(str(path), True, time.perf_counter() - start)
        try:
            if self.batching is not None:
                self.batching.wrap(servable)  # before warmup: warmup runs through the batching session
            if self.options.enable_model_warmup:
                run_warmup(servable, self.options.num_request_iterations_for_warmup)
        except StatusError:
            servable.close()
            raise
        return servable

    def _check_options(self) -> ModelServerConfig:
        options = self.options
        if options.port == 0 and not options.grpc_socket_path:
            raise StartupError("INVALID_ARGUMENT: At least one of server_options.grpc_port or "
                               "server_options.grpc_socket_path must be set.")
        if options.model_config_file:
            try:
                return read_model_config(options.model_config_file)
            except StatusError as error:
                raise StartupError(str(error)) from None
        if not options.model_base_path:
            raise StartupError("INVALID_ARGUMENT: Both server_options.model_base_path and "
                               "server_options.model_config_file are empty!")
        return single_model_config(options)

    def _reload_from_file(self) -> None:
        try:
            config = read_model_config(self.options.model_config_file)
        except StatusError as error:
            logger.error("Failed to read ModelServerConfig file: %s", error)
            return
        if config == self.core.config:
            return  # TF Serving re-applies an unchanged file; nothing would change, so say nothing
        log_config_advice(config, self.options.allow_version_labels_for_unavailable_models)
        try:
            self.core.reload_config(config)
        except StatusError as error:
            logger.error("PollFilesystemAndReloadConfig failed to ReloadConfig: %s", error)

    def start(self) -> None:
        """TF Serving's order: config, load every model, and only then open the port."""
        config = self._check_options()
        if self.options.port:
            check_port_free(self.options.bind_address, self.options.port)
        try:
            self.batching = ServerBatching.from_flags(
                self.options.enable_batching, self.options.batching_parameters_file,
                self.options.enable_per_model_batching_parameters, record=batching_recorder)
        except StatusError as error:
            raise StartupError(str(error)) from None
        prometheus = read_prometheus_path(self.options.monitoring_config_file)
        log_config_advice(config, self.options.allow_version_labels_for_unavailable_models)
        try:
            self.core.reload_config(config, initial=True)
        except StatusError as error:
            raise StartupError(str(error)) from None
        options = self.options
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max(options.grpc_max_threads, 1), thread_name_prefix="tfsk-grpc"),
            options=[
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.so_reuseport", 0),  # a second server on a taken port must fail, not share it
            ],
        )
        PredictionService(self.core, tensor_content=options.enable_serialization_as_tensor_content,
                          method_name_check=options.enable_signature_method_name_check,
                          max_tensor_bytes=options.max_request_tensor_bytes).add_to_server(server)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(self.core), server)
        if options.enable_grpc_healthcheck_service:
            self._health = add_health_service(server)
        credentials = None
        if options.ssl_config_file:
            try:
                credentials = server_credentials(options.ssl_config_file)
            except StatusError as error:
                raise StartupError(str(error)) from None
        if options.port:
            address = f"{options.bind_address}:{options.port}"
            try:
                if credentials is not None:
                    self.bound_port = server.add_secure_port(address, credentials)
                else:
                    self.bound_port = server.add_insecure_port(address)
            except RuntimeError as error:
                raise StartupError(f"UNAVAILABLE: could not listen on {address}: {error}") from None
            logger.info("Running gRPC ModelServer at %s ...", address)
        if options.grpc_socket_path:
            server.add_insecure_port(f"unix:{options.grpc_socket_path}")
            logger.info("Running gRPC ModelServer at unix:%s ...", options.grpc_socket_path)
        server.start()
        self._grpc = server
        self._start_rest(prometheus)
        self.core.start_polling(self._reload_from_file if options.model_config_file else None,
                                options.model_config_file_poll_wait_seconds)

    def _start_rest(self, prometheus: str | None) -> None:
        """TF Serving opens the REST port (with the metrics page) right after the gRPC one."""
        options = self.options
        if not options.rest_api_port:
            if prometheus is not None:
                logger.warning("monitoring is enabled but --rest_api_port is 0: metrics are served on the REST port only")
            return
        self._rest = RestServer(self.core, threads=options.rest_api_num_threads,
                                timeout_ms=options.rest_api_timeout_in_ms, cors=options.rest_api_enable_cors_support,
                                prometheus_path=prometheus,
                                method_name_check=options.enable_signature_method_name_check,
                                max_tensor_bytes=options.max_request_tensor_bytes)
        try:
            self.rest_port = self._rest.start(options.bind_address, options.rest_api_port)
        except OSError as error:
            self.stop()
            raise StartupError(f"UNAVAILABLE: could not listen on {options.bind_address}:{options.rest_api_port}: "
                               f"{error}") from None
        logger.info("Exporting HTTP/REST API at:%s:%d ...", options.bind_address, self.rest_port)

    def wait(self) -> None:
        if self._grpc is not None:
            self._grpc.wait_for_termination()

    def stop(self, grace: float = 2.0) -> None:
        if self._health is not None:
            self._health.enter_graceful_shutdown()
        if self._rest is not None:
            self._rest.stop()
        if self._grpc is not None:
            self._grpc.stop(grace).wait()
        self.core.stop()
        if self.batching is not None:
            self.batching.stop()


def run(options: ServerOptions) -> int:
    """Run until SIGTERM/SIGINT; the exit status TF Serving would give."""
    server = DevServer(options)
    try:
        server.start()
    except StartupError as error:
        print(f"Failed to start server. Error: {error}", flush=True)
        return 255
    stopping = threading.Event()

    def stop(signum: int, _frame: object) -> None:
        logger.info("received signal %d, shutting down", signum)
        stopping.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    while not stopping.wait(0.5):
        pass
    server.stop()
    return 0
