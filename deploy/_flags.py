"""``tensorflow_model_server``'s flags as the stack needs to know them: which are paths, ports, booleans."""

from __future__ import annotations

__all__ = ["BOOL_FLAGS", "PATH_FLAGS", "PORT_FLAGS", "TFSERVING_ENTRYPOINT"]

TFSERVING_ENTRYPOINT = "tensorflow_model_server"

#: Flags whose value is a file or folder: inside a container they are container paths.
PATH_FLAGS = ("model_config_file", "model_base_path", "monitoring_config_file", "batching_parameters_file",
              "ssl_config_file", "platform_config_file", "tensorflow_session_config_file",
              "thread_pool_factory_config_file", "grpc_socket_path")

#: Flags whose value is a container port, published on the host through ``ports:``.
PORT_FLAGS = ("port", "rest_api_port")

#: TF Serving's boolean flags: ``--name``, ``--name=true`` or ``--name=false``, nothing else.
BOOL_FLAGS = frozenset({
    "allow_version_labels_for_unavailable_models", "enable_batching", "enable_grpc_healthcheck_service",
    "enable_model_warmup", "enable_per_model_batching_parameters", "enable_profiler",
    "enable_serialization_as_tensor_content", "enable_signature_method_name_check", "flush_filesystem_caches",
    "prefer_tflite_model", "remove_unused_fields_from_bundle_metagraph", "rest_api_enable_cors_support",
    "skip_initialize_tpu", "use_alts_credentials", "version", "xla_cpu_compilation_enabled",
    "xla_gpu_compilation_enabled",
})
