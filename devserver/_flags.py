"""``tensorflow_model_server``'s command line, parsed the way TF Serving parses it.

Only ``--name=value`` is understood (bool flags also take a bare ``--name``); anything else,
including the space-separated ``--port 8500``, is reported as ``unknown argument`` and ignored,
as TF Serving does. Flags that TF Serving has but the devserver does not implement yet are
accepted with a warning.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

from tfsk._base.errors import TfskError

__all__ = ["DEFAULT_MAX_REQUEST_TENSOR_BYTES", "FlagError", "ServerOptions", "parse_flags"]

logger = logging.getLogger(__name__)

#: 1 GiB: a request may make the devserver create this much beyond what it sent (inputs expanded
#: from short typed fields; separately, its answer). A 200 MB Predict and its 800 MB answer fit;
#: TF Serving itself would try any size, and a 40-byte request can ask for terabytes.
DEFAULT_MAX_REQUEST_TENSOR_BYTES = 1 << 30


class FlagError(TfskError, ValueError):
    """A flag value TF Serving's parser would reject (it prints usage and exits)."""


@dataclass
class ServerOptions:
    """The flags the devserver implements, with TF Serving's defaults."""

    port: int = 8500
    grpc_socket_path: str = ""
    ssl_config_file: str = ""
    model_name: str = "default"
    model_base_path: str = ""
    model_config_file: str = ""
    model_config_file_poll_wait_seconds: int = 0
    file_system_poll_wait_seconds: int = 1
    allow_version_labels_for_unavailable_models: bool = False
    max_num_load_retries: int = 5
    load_retry_interval_micros: int = 60_000_000
    enable_model_warmup: bool = True
    enable_batching: bool = False
    batching_parameters_file: str = ""
    enable_per_model_batching_parameters: bool = False
    num_request_iterations_for_warmup: int = 0
    saved_model_tags: str = "serve"
    enable_signature_method_name_check: bool = False
    enable_serialization_as_tensor_content: bool = False
    grpc_max_threads: int = field(default_factory=lambda: 4 * (os.cpu_count() or 1))
    tensorflow_intra_op_parallelism: int = 0
    tensorflow_inter_op_parallelism: int = 0
    rest_api_port: int = 0
    rest_api_num_threads: int = field(default_factory=lambda: 4 * (os.cpu_count() or 1))
    rest_api_timeout_in_ms: int = 30_000
    rest_api_enable_cors_support: bool = False
    monitoring_config_file: str = ""
    enable_grpc_healthcheck_service: bool = False
    # Not TF Serving flags: the devserver binds to loopback unless told otherwise, and bounds what
    # one request may make it allocate (<= 0: no bound, as in TF Serving).
    bind_address: str = "127.0.0.1"
    max_request_tensor_bytes: int = DEFAULT_MAX_REQUEST_TENSOR_BYTES
    # auto (small graphs run their ops in the calling thread), true or false: see _servable.
    session_run_in_caller_thread: str = "auto"
    version: bool = False
    unknown: list[str] = field(default_factory=list)
    not_implemented: list[str] = field(default_factory=list)


# TF Serving flags the devserver accepts but does not act on (yet); each is warned about.
NOT_IMPLEMENTED = {
    "use_alts_credentials",
    "grpc_channel_arguments", "enable_profiler", "num_load_threads",
    "num_unload_threads", "tensorflow_session_parallelism", "tensorflow_session_config_file",
    "platform_config_file", "per_process_gpu_memory_fraction", "flush_filesystem_caches",
    "remove_unused_fields_from_bundle_metagraph", "prefer_tflite_model", "num_tflite_pools",
    "num_tflite_interpreters_per_pool", "xla_cpu_compilation_enabled", "xla_gpu_compilation_enabled",
    "thread_pool_factory_config_file", "mixed_precision", "skip_initialize_tpu",
    "enable_tensorflow_session_and_saved_model_bundle_memory_check",
    "model_config_file_poll_wait_seconds_for_empty_config",
}
_NOT_IMPLEMENTED_BOOLS = {
    "use_alts_credentials",
    "enable_profiler", "flush_filesystem_caches",
    "remove_unused_fields_from_bundle_metagraph", "prefer_tflite_model", "xla_cpu_compilation_enabled",
    "xla_gpu_compilation_enabled", "skip_initialize_tpu", "enable_tensorflow_session_and_saved_model_bundle_memory_check",
}


def _parse_bool(name: str, text: str | None) -> bool:
    if text is None or text == "true":
        return True
    if text == "false":
        return False
    raise FlagError(f"Illegal value '{text}' for bool flag --{name}: use --{name}, --{name}=true or --{name}=false")


def parse_flags(argv: Sequence[str]) -> ServerOptions:
    options = ServerOptions()
    kinds = {f.name: f.type for f in fields(ServerOptions) if f.name not in ("unknown", "not_implemented")}
    for argument in argv:
        if not argument.startswith("--"):
            options.unknown.append(argument)
            continue
        name, has_value, value = argument[2:].partition("=")
        if name in kinds:
            kind = kinds[name]
            if kind in (bool, "bool"):
                setattr(options, name, _parse_bool(name, value if has_value else None))
            elif not has_value:
                options.unknown.append(argument)  # TF Serving: '--port 8500' is not '--port=8500'
            elif kind in (int, "int"):
                try:
                    setattr(options, name, int(value))
                except ValueError:
                    raise FlagError(f"Illegal value '{value}' for int flag --{name}") from None
            else:
                setattr(options, name, value)
        elif name in NOT_IMPLEMENTED and (has_value or name in _NOT_IMPLEMENTED_BOOLS):
            options.not_implemented.append(argument)
        else:
            options.unknown.append(argument)
    if options.session_run_in_caller_thread not in ("auto", "true", "false"):
        raise FlagError(f"Illegal value '{options.session_run_in_caller_thread}' for --session_run_in_caller_thread: "
                        "use auto, true or false")
    return options
