"""tfsk.serving_config: TF Serving's config files, written from one declaration and validated like the server does.

- :func:`load_declaration` reads ``tfsk.toml`` (:func:`record_versions` pins a model's versions and
  labels in it, :func:`record_batching` writes tuned batching parameters, comments kept); :func:`write_configs` writes ``models.config`` for
  the container (container paths) and for the host (absolute host paths), ``monitoring.config``
  and batching parameters, all with TF Serving's own protos in text format; a model's own
  ``[models.NAME.batching]`` becomes ``batching_params.pbtxt`` in each of its version folders
  that lacks one (:func:`model_batching_reports` says what was kept or refused).
- :func:`read_model_server_config` / :func:`parse_model_server_config` parse any models.config
  (errors with line and column); :func:`validate_model_server_config` and :func:`validate_file`
  apply TF Serving's rules plus the run-time failures it only shows later (missing base paths,
  no version folders, labels on unloaded versions, versions that cannot load).
- ``[rollout.gate]`` becomes :attr:`Declaration.gate` (:class:`GateSettings`), the thresholds
  ``tfsk rollout analyze`` judges a canary against.
- :func:`read_labels` reads a model's version labels from a models.config or a tfsk.toml.
- :func:`plan_label_move` turns "label L -> version V" into phases of complete configs;
  :func:`diff_configs` says what a reload from one config to another does.

This package imports protobuf messages only, never TensorFlow.
"""

from tfsk._base.declared import DECLARATION_FILE
from tfsk._base.messages import (
    BatchingParameters,
    ModelConfig,
    ModelServerConfig,
    MonitoringConfig,
    PrometheusConfig,
)

from ._batching import (
    PER_MODEL_BATCHING_FILE,
    BatchingSettings,
    format_batching_parameters,
    parse_batching_parameters,
    read_batching_parameters,
    validate_batching_settings,
    write_batching_parameters,
)
from ._declaration import (
    SERVER_BATCHING_FIELDS,
    Declaration,
    DeclaredOutputs,
    ModelDeclaration,
    load_declaration,
    parse_declaration,
    record_batching,
    record_versions,
)
from ._diff import Change, ConfigDiff, diff_configs
from ._disk import ModelFolder, aspired_versions, inspect_model_folder
from ._errors import (
    ConfigError,
    ConfigInvalidError,
    ConfigParseError,
    DeclarationError,
    LabelPlanError,
)
from ._files import CONFIG_KINDS, detect_kind, validate_file, validate_text
from ._findings import Finding, FindingList, Severity, ValidationReport
from ._gate import GateSettings
from ._image import exported_tensorflow_version, serving_image_version, validate_serving_image
from ._labels import LabelPlan, PlanPhase, plan_label_move, read_labels
from ._models_config import (
    LABEL_PATTERN,
    PLATFORM,
    find_model,
    format_model_server_config,
    model_config,
    model_entries,
    model_server_config,
    parse_model_server_config,
    read_model_server_config,
    write_model_server_config,
)
from ._monitoring import (
    DEFAULT_PROMETHEUS_PATH,
    MonitoringSettings,
    format_monitoring_config,
    parse_monitoring_config,
    read_monitoring_config,
    validate_monitoring_settings,
    write_monitoring_config,
)
from ._paths import PathMapping, is_relative_base_path
from ._policy import VersionPolicy
from ._textproto import with_header, write_atomic
from ._validate import ServerState, validate_model_server_config
from ._write import RenderedConfig, model_batching_reports, render_configs, write_configs

__all__ = [
    "CONFIG_KINDS",
    "DECLARATION_FILE",
    "DEFAULT_PROMETHEUS_PATH",
    "LABEL_PATTERN",
    "PER_MODEL_BATCHING_FILE",
    "PLATFORM",
    "SERVER_BATCHING_FIELDS",
    "BatchingParameters",
    "BatchingSettings",
    "Change",
    "ConfigDiff",
    "ConfigError",
    "ConfigInvalidError",
    "ConfigParseError",
    "Declaration",
    "DeclarationError",
    "DeclaredOutputs",
    "Finding",
    "FindingList",
    "GateSettings",
    "LabelPlan",
    "LabelPlanError",
    "ModelConfig",
    "ModelDeclaration",
    "ModelFolder",
    "ModelServerConfig",
    "MonitoringConfig",
    "MonitoringSettings",
    "PathMapping",
    "PlanPhase",
    "PrometheusConfig",
    "RenderedConfig",
    "ServerState",
    "Severity",
    "ValidationReport",
    "VersionPolicy",
    "aspired_versions",
    "detect_kind",
    "diff_configs",
    "exported_tensorflow_version",
    "find_model",
    "format_batching_parameters",
    "format_model_server_config",
    "format_monitoring_config",
    "inspect_model_folder",
    "is_relative_base_path",
    "load_declaration",
    "model_batching_reports",
    "model_config",
    "model_entries",
    "model_server_config",
    "parse_batching_parameters",
    "parse_declaration",
    "parse_model_server_config",
    "parse_monitoring_config",
    "plan_label_move",
    "read_batching_parameters",
    "read_labels",
    "read_model_server_config",
    "read_monitoring_config",
    "record_batching",
    "record_versions",
    "render_configs",
    "serving_image_version",
    "validate_batching_settings",
    "validate_file",
    "validate_model_server_config",
    "validate_monitoring_settings",
    "validate_serving_image",
    "validate_text",
    "with_header",
    "write_atomic",
    "write_batching_parameters",
    "write_configs",
    "write_model_server_config",
    "write_monitoring_config",
]
