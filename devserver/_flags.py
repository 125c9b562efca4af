"""``tensorflow_model_server``'s command line, parsed the way TF Serving parses it.

The flags, their defaults and the parser are the base layer's (:mod:`tfsk._base.flags`), shared
with the stack's readers and checks. Unknown arguments (including the space-separated
``--port 8500``) are reported and ignored, as TF Serving does; a value TF Serving refuses
(``--enable_batching=1``) stops the start with usage and exit 255. Flags that TF Serving has but
the devserver does not implement yet are accepted with a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tfsk._base.errors import TfskError
from tfsk._base.flags import DEFAULT_MAX_REQUEST_TENSOR_BYTES, DEVSERVER_FLAGS, FLAGS, parse_command_line

__all__ = ["DEFAULT_MAX_REQUEST_TENSOR_BYTES", "FlagError", "ServerOptions", "parse_flags"]

logger = logging.getLogger(__name__)

#: TF Serving flags the devserver accepts but does not act on (yet); each is warned about.
NOT_IMPLEMENTED = frozenset(f.name for f in FLAGS.values() if not f.devserver)


class FlagError(TfskError, ValueError):
    """A flag value TF Serving's parser would reject (it prints usage and exits)."""


def _default(name: str) -> Any:
    """The table's default for ``name`` as a dataclass field (a factory when it depends on the machine)."""
    default = DEVSERVER_FLAGS[name].default
    return field(default_factory=default) if callable(default) else field(default=default)


@dataclass
class ServerOptions:
    """The flags the devserver implements, with TF Serving's defaults."""

    port: int = _default("port")
    grpc_socket_path: str = _default("grpc_socket_path")
    ssl_config_file: str = _default("ssl_config_file")
    model_name: str = _default("model_name")
    model_base_path: str = _default("model_base_path")
    model_config_file: str = _default("model_config_file")
    model_config_file_poll_wait_seconds: int = _default("model_config_file_poll_wait_seconds")
    file_system_poll_wait_seconds: int = _default("file_system_poll_wait_seconds")
    allow_version_labels_for_unavailable_models: bool = _default("allow_version_labels_for_unavailable_models")
    max_num_load_retries: int = _default("max_num_load_retries")
    load_retry_interval_micros: int = _default("load_retry_interval_micros")
    enable_model_warmup: bool = _default("enable_model_warmup")
    enable_batching: bool = _default("enable_batching")
    batching_parameters_file: str = _default("batching_parameters_file")
    enable_per_model_batching_parameters: bool = _default("enable_per_model_batching_parameters")
    num_request_iterations_for_warmup: int = _default("num_request_iterations_for_warmup")
    saved_model_tags: str = _default("saved_model_tags")
    enable_signature_method_name_check: bool = _default("enable_signature_method_name_check")
    enable_serialization_as_tensor_content: bool = _default("enable_serialization_as_tensor_content")
    grpc_max_threads: int = _default("grpc_max_threads")
    tensorflow_intra_op_parallelism: int = _default("tensorflow_intra_op_parallelism")
    tensorflow_inter_op_parallelism: int = _default("tensorflow_inter_op_parallelism")
    rest_api_port: int = _default("rest_api_port")
    rest_api_num_threads: int = _default("rest_api_num_threads")
    rest_api_timeout_in_ms: int = _default("rest_api_timeout_in_ms")
    rest_api_enable_cors_support: bool = _default("rest_api_enable_cors_support")
    monitoring_config_file: str = _default("monitoring_config_file")
    enable_grpc_healthcheck_service: bool = _default("enable_grpc_healthcheck_service")
    # The devserver's own flags (DEVSERVER_ONLY_FLAGS).
    bind_address: str = _default("bind_address")
    max_request_tensor_bytes: int = _default("max_request_tensor_bytes")
    session_run_in_caller_thread: str = _default("session_run_in_caller_thread")
    version: bool = _default("version")
    unknown: list[str] = field(default_factory=list)
    not_implemented: list[str] = field(default_factory=list)


def parse_flags(argv: Sequence[str]) -> ServerOptions:
    line = parse_command_line(argv, DEVSERVER_FLAGS)
    if line.errors:
        raise FlagError("\n".join(line.errors))
    options = ServerOptions()
    for argument in line.arguments:
        if argument.flag is None:
            options.unknown.append(argument.text)
        elif argument.flag.name in NOT_IMPLEMENTED:
            options.not_implemented.append(argument.text)
        else:
            setattr(options, argument.flag.name, argument.value)
    if options.session_run_in_caller_thread not in ("auto", "true", "false"):
        raise FlagError(f"Illegal value '{options.session_run_in_caller_thread}' for --session_run_in_caller_thread: "
                        "use auto, true or false")
    return options
