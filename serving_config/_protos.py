"""TF Serving's config messages, without TensorFlow.

``ModelServerConfig`` comes from the ``tensorflow-serving-api`` wheel (its ``config`` modules do
not import TensorFlow). ``MonitoringConfig`` and ``BatchingParameters`` are not in the wheel, so
they are described here with the field names and numbers of TF Serving's
``config/monitoring_config.proto`` and ``servables/tensorflow/session_bundle_config.proto`` and
built in a private descriptor pool (:mod:`tfsk.protoschema`): same wire and text format, no protoc, no generated files, and
no clash with a TensorFlow that may be imported later in the same process.
"""

from __future__ import annotations

from google.protobuf import wrappers_pb2
from tensorflow_serving.config import file_system_storage_path_source_pb2, model_server_config_pb2

from tfsk.protoschema import FileSpec, MessageSpec, build_pool, message_class

__all__ = [
    "BatchingParameters",
    "ModelConfig",
    "ModelServerConfig",
    "MonitoringConfig",
    "PrometheusConfig",
    "ServableVersionPolicy",
]

ModelServerConfig = model_server_config_pb2.ModelServerConfig
ModelConfig = model_server_config_pb2.ModelConfig
ServableVersionPolicy = file_system_storage_path_source_pb2.FileSystemStoragePathSourceConfig.ServableVersionPolicy

# Exactly as TF Serving declares them (field names and numbers).
_POOL = build_pool([FileSpec(
    name="tfsk/serving_config/monitoring_and_batching.proto",
    package="tensorflow.serving",
    dependencies=["google/protobuf/wrappers.proto"],
    messages={
        "PrometheusConfig": MessageSpec([("enable", 1, "bool"), ("path", 2, "string")]),
        "MonitoringConfig": MessageSpec([("prometheus_config", 1, ".tensorflow.serving.PrometheusConfig")]),
        "BatchingParameters": MessageSpec([
            ("max_batch_size", 1, ".google.protobuf.Int64Value"),
            ("batch_timeout_micros", 2, ".google.protobuf.Int64Value"),
            ("max_enqueued_batches", 3, ".google.protobuf.Int64Value"),
            ("num_batch_threads", 4, ".google.protobuf.Int64Value"),
            ("thread_pool_name", 5, ".google.protobuf.StringValue"),
            ("enable_large_batch_splitting", 8, ".google.protobuf.BoolValue"),
            ("max_execution_batch_size", 9, ".google.protobuf.Int64Value"),
            ("allowed_batch_sizes", 6, "repeated int64"),
            ("pad_variable_length_inputs", 7, "bool"),
        ]),
    },
)], base_files=[wrappers_pb2])

# Built at run time, so type checkers see them as Any; annotate instances as protobuf ``Message``.
PrometheusConfig = message_class(_POOL, "tensorflow.serving.PrometheusConfig")
MonitoringConfig = message_class(_POOL, "tensorflow.serving.MonitoringConfig")
BatchingParameters = message_class(_POOL, "tensorflow.serving.BatchingParameters")
