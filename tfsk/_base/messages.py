"""The TensorFlow and TF Serving messages the toolkit reads and writes, without TensorFlow.

Declared with TF's own package, message and field names and numbers (so they are the same on the
wire and in text format) and built in a private descriptor pool (see :mod:`.protoschema`), so
that the client and the config tools never load TensorFlow and a later ``import tensorflow`` in
the same process is unaffected. ``tests/base/test_messages.py`` checks every message here against
TensorFlow's and TF Serving's own descriptors, field by field.

Fields the serving APIs never use (resource and variant tensors, sparse TensorInfo encodings,
request logging options) are left out; protobuf keeps them as unknown fields if they arrive.
A message from TF's generated modules crosses into these classes through its bytes
(``ModelServerConfig.FromString(theirs.SerializeToString())``): same wire form, different pools.
"""

from __future__ import annotations

import enum

from google.protobuf import any_pb2, wrappers_pb2

from .protoschema import EnumSpec, FileSpec, MessageSpec, build_pool, message_class

__all__ = [
    "MESSAGES",
    "POOL",
    "BatchingParameters",
    "ModelConfig",
    "ModelServerConfig",
    "MonitoringConfig",
    "PredictionLog",
    "PrometheusConfig",
    "SSLConfig",
    "ServableVersionPolicy",
    "TensorProto",
    "VersionState",
]


class VersionState(enum.IntEnum):
    """``ModelVersionStatus.State``: where a version is in its life, as GetModelStatus reports it."""

    UNKNOWN = 0
    START = 10
    LOADING = 20
    AVAILABLE = 30
    UNLOADING = 40
    END = 50


_DATA_TYPES = {
    "DT_INVALID": 0, "DT_FLOAT": 1, "DT_DOUBLE": 2, "DT_INT32": 3, "DT_UINT8": 4, "DT_INT16": 5, "DT_INT8": 6,
    "DT_STRING": 7, "DT_COMPLEX64": 8, "DT_INT64": 9, "DT_BOOL": 10, "DT_QINT8": 11, "DT_QUINT8": 12,
    "DT_QINT32": 13, "DT_BFLOAT16": 14, "DT_QINT16": 15, "DT_QUINT16": 16, "DT_UINT16": 17, "DT_COMPLEX128": 18,
    "DT_HALF": 19, "DT_RESOURCE": 20, "DT_VARIANT": 21, "DT_UINT32": 22, "DT_UINT64": 23,
}
_ERROR_CODES = {
    "OK": 0, "CANCELLED": 1, "UNKNOWN": 2, "INVALID_ARGUMENT": 3, "DEADLINE_EXCEEDED": 4, "NOT_FOUND": 5,
    "ALREADY_EXISTS": 6, "PERMISSION_DENIED": 7, "RESOURCE_EXHAUSTED": 8, "FAILED_PRECONDITION": 9, "ABORTED": 10,
    "OUT_OF_RANGE": 11, "UNIMPLEMENTED": 12, "INTERNAL": 13, "UNAVAILABLE": 14, "DATA_LOSS": 15,
    "UNAUTHENTICATED": 16,
}

_TENSORFLOW = FileSpec(
    name="tfsk/base/tensorflow.proto",
    package="tensorflow",
    enums={"DataType": EnumSpec(_DATA_TYPES)},
    messages={
        "TensorShapeProto": MessageSpec(
            fields=[("dim", 2, "repeated .tensorflow.TensorShapeProto.Dim"), ("unknown_rank", 3, "bool")],
            messages={"Dim": MessageSpec([("size", 1, "int64"), ("name", 2, "string")])},
        ),
        "TensorProto": MessageSpec([
            ("dtype", 1, ".tensorflow.DataType"),
            ("tensor_shape", 2, ".tensorflow.TensorShapeProto"),
            ("version_number", 3, "int32"),
            ("tensor_content", 4, "bytes"),
            ("half_val", 13, "repeated int32"),
            ("float_val", 5, "repeated float"),
            ("double_val", 6, "repeated double"),
            ("int_val", 7, "repeated int32"),
            ("string_val", 8, "repeated bytes"),
            ("scomplex_val", 9, "repeated float"),
            ("int64_val", 10, "repeated int64"),
            ("bool_val", 11, "repeated bool"),
            ("dcomplex_val", 12, "repeated double"),
            ("uint32_val", 16, "repeated uint32"),
            ("uint64_val", 17, "repeated uint64"),
        ]),
        "TensorInfo": MessageSpec([
            ("name", 1, "string", "encoding"),
            ("dtype", 2, ".tensorflow.DataType"),
            ("tensor_shape", 3, ".tensorflow.TensorShapeProto"),
        ]),
        "SignatureDef": MessageSpec([
            ("inputs", 1, "map<string, .tensorflow.TensorInfo>"),
            ("outputs", 2, "map<string, .tensorflow.TensorInfo>"),
            ("method_name", 3, "string"),
            ("defaults", 4, "map<string, .tensorflow.TensorProto>"),
        ]),
        "BytesList": MessageSpec([("value", 1, "repeated bytes")]),
        "FloatList": MessageSpec([("value", 1, "repeated float")]),
        "Int64List": MessageSpec([("value", 1, "repeated int64")]),
        "Feature": MessageSpec([
            ("bytes_list", 1, ".tensorflow.BytesList", "kind"),
            ("float_list", 2, ".tensorflow.FloatList", "kind"),
            ("int64_list", 3, ".tensorflow.Int64List", "kind"),
        ]),
        "Features": MessageSpec([("feature", 1, "map<string, .tensorflow.Feature>")]),
        "Example": MessageSpec([("features", 1, ".tensorflow.Features")]),
    },
)

_ERRORS = FileSpec(name="tfsk/base/error_codes.proto", package="tensorflow.error", enums={"Code": EnumSpec(_ERROR_CODES)})

_SERVING = FileSpec(
    name="tfsk/base/tensorflow_serving.proto",
    package="tensorflow.serving",
    dependencies=["google/protobuf/wrappers.proto", "google/protobuf/any.proto", _TENSORFLOW.name, _ERRORS.name,
                  "tfsk/base/tensorflow_serving_config.proto"],
    messages={
        "ModelSpec": MessageSpec([
            ("name", 1, "string"),
            ("version", 2, ".google.protobuf.Int64Value", "version_choice"),
            ("version_label", 4, "string", "version_choice"),
            ("signature_name", 3, "string"),
        ]),
        "PredictRequest": MessageSpec([
            ("model_spec", 1, ".tensorflow.serving.ModelSpec"),
            ("inputs", 2, "map<string, .tensorflow.TensorProto>"),
            ("output_filter", 3, "repeated string"),
        ]),
        "PredictResponse": MessageSpec([
            ("model_spec", 2, ".tensorflow.serving.ModelSpec"),
            ("outputs", 1, "map<string, .tensorflow.TensorProto>"),
        ]),
        "SignatureDefMap": MessageSpec([("signature_def", 1, "map<string, .tensorflow.SignatureDef>")]),
        "GetModelMetadataRequest": MessageSpec([
            ("model_spec", 1, ".tensorflow.serving.ModelSpec"),
            ("metadata_field", 2, "repeated string"),
        ]),
        "GetModelMetadataResponse": MessageSpec([
            ("model_spec", 1, ".tensorflow.serving.ModelSpec"),
            ("metadata", 2, "map<string, .google.protobuf.Any>"),
        ]),
        "StatusProto": MessageSpec([("error_code", 1, ".tensorflow.error.Code"), ("error_message", 2, "string")]),
        "GetModelStatusRequest": MessageSpec([("model_spec", 1, ".tensorflow.serving.ModelSpec")]),
        "ModelVersionStatus": MessageSpec(
            fields=[("version", 1, "int64"), ("state", 2, ".tensorflow.serving.ModelVersionStatus.State"),
                    ("status", 3, ".tensorflow.serving.StatusProto")],
            enums={"State": EnumSpec({state.name: state.value for state in VersionState})},
        ),
        "GetModelStatusResponse": MessageSpec([("model_version_status", 1, "repeated .tensorflow.serving.ModelVersionStatus")]),
        "ReloadConfigRequest": MessageSpec([
            ("config", 1, ".tensorflow.serving.ModelServerConfig"),
            ("metric_names", 2, "repeated string"),
        ]),
        "Metric": MessageSpec([("name", 1, "string"), ("int64_value_increase", 2, "int64", "value_increase")]),
        "ReloadConfigResponse": MessageSpec([
            ("status", 1, ".tensorflow.serving.StatusProto"),
            ("metric", 2, "repeated .tensorflow.serving.Metric"),
        ]),
        "ExampleList": MessageSpec([("examples", 1, "repeated .tensorflow.Example")]),
        "ExampleListWithContext": MessageSpec([
            ("examples", 1, "repeated .tensorflow.Example"),
            ("context", 2, ".tensorflow.Example"),
        ]),
        "Input": MessageSpec([
            ("example_list", 1, ".tensorflow.serving.ExampleList", "kind"),
            ("example_list_with_context", 2, ".tensorflow.serving.ExampleListWithContext", "kind"),
        ]),
        "Class": MessageSpec([("label", 1, "string"), ("score", 2, "float")]),
        "Classifications": MessageSpec([("classes", 1, "repeated .tensorflow.serving.Class")]),
        "ClassificationResult": MessageSpec([("classifications", 1, "repeated .tensorflow.serving.Classifications")]),
        "ClassificationRequest": MessageSpec([
            ("model_spec", 1, ".tensorflow.serving.ModelSpec"),
            ("input", 2, ".tensorflow.serving.Input"),
        ]),
        "ClassificationResponse": MessageSpec([
            ("model_spec", 2, ".tensorflow.serving.ModelSpec"),
            ("result", 1, ".tensorflow.serving.ClassificationResult"),
        ]),
        "Regression": MessageSpec([("value", 1, "float")]),
        "RegressionResult": MessageSpec([("regressions", 1, "repeated .tensorflow.serving.Regression")]),
        "RegressionRequest": MessageSpec([
            ("model_spec", 1, ".tensorflow.serving.ModelSpec"),
            ("input", 2, ".tensorflow.serving.Input"),
        ]),
        "RegressionResponse": MessageSpec([
            ("model_spec", 2, ".tensorflow.serving.ModelSpec"),
            ("result", 1, ".tensorflow.serving.RegressionResult"),
        ]),
        "InferenceTask": MessageSpec([("model_spec", 1, ".tensorflow.serving.ModelSpec"), ("method_name", 2, "string")]),
        "InferenceResult": MessageSpec([
            ("model_spec", 1, ".tensorflow.serving.ModelSpec"),
            ("classification_result", 2, ".tensorflow.serving.ClassificationResult", "result"),
            ("regression_result", 3, ".tensorflow.serving.RegressionResult", "result"),
        ]),
        "MultiInferenceRequest": MessageSpec([
            ("tasks", 1, "repeated .tensorflow.serving.InferenceTask"),
            ("input", 2, ".tensorflow.serving.Input"),
        ]),
        "MultiInferenceResponse": MessageSpec([("results", 1, "repeated .tensorflow.serving.InferenceResult")]),
        # apis/logging.proto and apis/prediction_log.proto: what warmup files and TF Serving's request
        # logger hold, and what the client's capture writes. SessionRunLog (log_type 5) is left out:
        # it drags in TF's RunOptions and TF Serving refuses it for warmup; a record holding one keeps
        # it as an unknown field.
        "LogMetadata": MessageSpec([
            ("model_spec", 1, ".tensorflow.serving.ModelSpec"),
            ("sampling_config", 2, ".tensorflow.serving.SamplingConfig"),
            ("saved_model_tags", 3, "repeated string"),
            ("timestamp_secs", 4, "int64"),
            ("dc", 5, "string"),
            ("request_origin", 6, "string"),
            ("request_criticality", 7, "string"),
            ("safe_aggregation_privacy_key", 8, "int64"),
        ]),
        "ClassifyLog": MessageSpec([
            ("request", 1, ".tensorflow.serving.ClassificationRequest"),
            ("response", 2, ".tensorflow.serving.ClassificationResponse"),
        ]),
        "RegressLog": MessageSpec([
            ("request", 1, ".tensorflow.serving.RegressionRequest"),
            ("response", 2, ".tensorflow.serving.RegressionResponse"),
        ]),
        "PredictLog": MessageSpec([
            ("request", 1, ".tensorflow.serving.PredictRequest"),
            ("response", 2, ".tensorflow.serving.PredictResponse"),
        ]),
        "PredictStreamedLog": MessageSpec([
            ("request", 1, "repeated .tensorflow.serving.PredictRequest"),
            ("response", 2, "repeated .tensorflow.serving.PredictResponse"),
        ]),
        "MultiInferenceLog": MessageSpec([
            ("request", 1, ".tensorflow.serving.MultiInferenceRequest"),
            ("response", 2, ".tensorflow.serving.MultiInferenceResponse"),
        ]),
        "PredictionLog": MessageSpec([
            ("log_metadata", 1, ".tensorflow.serving.LogMetadata"),
            ("classify_log", 2, ".tensorflow.serving.ClassifyLog", "log_type"),
            ("regress_log", 3, ".tensorflow.serving.RegressLog", "log_type"),
            ("predict_log", 6, ".tensorflow.serving.PredictLog", "log_type"),
            ("predict_streamed_log", 7, ".tensorflow.serving.PredictStreamedLog", "log_type"),
            ("multi_inference_log", 4, ".tensorflow.serving.MultiInferenceLog", "log_type"),
        ]),
    },
)

_POLICY = "FileSystemStoragePathSourceConfig.ServableVersionPolicy"

# TF Serving's config messages (config/model_server_config.proto, file_system_storage_path_source.proto,
# logging_config.proto, log_collector_config.proto, monitoring_config.proto, ssl_config.proto and
# servables/tensorflow/session_bundle_config.proto's BatchingParameters).
_CONFIG = FileSpec(
    name="tfsk/base/tensorflow_serving_config.proto",
    package="tensorflow.serving",
    dependencies=["google/protobuf/wrappers.proto", "google/protobuf/any.proto"],
    enums={"ModelType": EnumSpec({"MODEL_TYPE_UNSPECIFIED": 0, "TENSORFLOW": 1, "OTHER": 2})},
    messages={
        "FileSystemStoragePathSourceConfig": MessageSpec(
            fields=[
                ("servables", 5, "repeated .tensorflow.serving.FileSystemStoragePathSourceConfig.ServableToMonitor"),
                ("file_system_poll_wait_seconds", 3, "int64"),
                ("fail_if_zero_versions_at_startup", 4, "bool"),
                ("servable_versions_always_present", 6, "bool"),
            ],
            messages={
                "ServableVersionPolicy": MessageSpec(
                    fields=[
                        ("latest", 100, f".tensorflow.serving.{_POLICY}.Latest", "policy_choice"),
                        ("all", 101, f".tensorflow.serving.{_POLICY}.All", "policy_choice"),
                        ("specific", 102, f".tensorflow.serving.{_POLICY}.Specific", "policy_choice"),
                    ],
                    messages={
                        "Latest": MessageSpec([("num_versions", 1, "uint32")]),
                        "All": MessageSpec(),
                        "Specific": MessageSpec([("versions", 1, "repeated int64")]),
                    },
                ),
                "ServableToMonitor": MessageSpec([
                    ("servable_name", 1, "string"),
                    ("base_path", 2, "string"),
                    ("servable_version_policy", 4, f".tensorflow.serving.{_POLICY}"),
                ]),
            },
        ),
        "LogCollectorConfig": MessageSpec([("type", 1, "string"), ("filename_prefix", 2, "string")]),
        "PerTaskSamplingConfig": MessageSpec([
            ("dc", 1, "string"),
            ("task_index", 2, "int32", "_task_index"),  # proto3 `optional`: a one-field oneof on the wire and in text
            ("sampling_rate", 3, "double"),
        ]),
        "SamplingConfig": MessageSpec(
            fields=[
                ("sampling_rate", 1, "double"),
                ("per_task_sampling_configs", 3, "repeated .tensorflow.serving.PerTaskSamplingConfig"),
                ("attributes", 2, "int32"),
            ],
            enums={"Attributes": EnumSpec({"ATTR_DEFAULT": 0, "ATTR_REQUEST_ORIGIN": 1, "ATTR_REQUEST_CRITICALITY": 2})},
        ),
        "LoggingConfig": MessageSpec([
            ("log_collector_config", 1, ".tensorflow.serving.LogCollectorConfig"),
            ("sampling_config", 2, ".tensorflow.serving.SamplingConfig"),
            ("custom_logging_config", 3, ".google.protobuf.Any"),
        ]),
        "ModelConfig": MessageSpec([
            ("name", 1, "string"),
            ("base_path", 2, "string"),
            ("model_type", 3, ".tensorflow.serving.ModelType"),
            ("model_platform", 4, "string"),
            ("model_version_policy", 7, f".tensorflow.serving.{_POLICY}"),
            ("version_labels", 8, "map<string, int64>"),
            ("logging_config", 6, ".tensorflow.serving.LoggingConfig"),
        ]),
        "ModelConfigList": MessageSpec([("config", 1, "repeated .tensorflow.serving.ModelConfig")]),
        "ModelServerConfig": MessageSpec([
            ("model_config_list", 1, ".tensorflow.serving.ModelConfigList", "config"),
            ("custom_model_config", 2, ".google.protobuf.Any", "config"),
        ]),
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
        "SSLConfig": MessageSpec([
            ("server_key", 1, "string"), ("server_cert", 2, "string"), ("custom_ca", 3, "string"),
            ("client_verify", 4, "bool"),
        ]),
    },
)

POOL = build_pool([_TENSORFLOW, _ERRORS, _CONFIG, _SERVING], base_files=[wrappers_pb2, any_pb2])

#: Short name -> message class, e.g. ``MESSAGES["PredictRequest"]``.
MESSAGES: dict[str, type] = {
    **{name: message_class(POOL, f"tensorflow.{name}") for name in _TENSORFLOW.messages},
    **{name: message_class(POOL, f"tensorflow.serving.{name}") for name in _SERVING.messages},
    **{name: message_class(POOL, f"tensorflow.serving.{name}") for name in _CONFIG.messages},
}

# Every message by its short name too (``from tfsk._base.messages import PredictRequest``), as the
# static types in messages.pyi (written by tools/message_stubs.py) declare them.
globals().update(MESSAGES)

TensorProto = MESSAGES["TensorProto"]
ModelServerConfig = MESSAGES["ModelServerConfig"]
ModelConfig = MESSAGES["ModelConfig"]
ServableVersionPolicy = message_class(POOL, f"tensorflow.serving.{_POLICY}")
PrometheusConfig = MESSAGES["PrometheusConfig"]
MonitoringConfig = MESSAGES["MonitoringConfig"]
BatchingParameters = MESSAGES["BatchingParameters"]
SSLConfig = MESSAGES["SSLConfig"]
PredictionLog = MESSAGES["PredictionLog"]
