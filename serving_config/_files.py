"""Validating any config file: find out which of TF Serving's config files it is, parse, check."""

from __future__ import annotations

import os
import re
from typing import Literal

from tfsk._base.messages import BatchingParameters, MonitoringConfig

from ._batching import (
    is_per_model_file,
    parse_batching_parameters,
    validate_batching_settings,
)
from ._errors import ConfigError, ConfigParseError
from ._findings import Finding, Severity, ValidationReport
from ._models_config import parse_model_server_config
from ._monitoring import parse_monitoring_config, validate_monitoring_settings
from ._paths import PathMapping
from ._textproto import read_text
from ._validate import ServerState, validate_model_server_config

ConfigKind = Literal["models", "monitoring", "batching"]
CONFIG_KINDS: tuple[ConfigKind, ...] = ("models", "monitoring", "batching")

_FIRST_FIELD = re.compile(r"^\s*([A-Za-z_]\w*)", re.MULTILINE)
_FLAGS = {"models": "--model_config_file", "monitoring": "--monitoring_config_file",
          "batching": "--batching_parameters_file"}


def detect_kind(text: str) -> ConfigKind:
    """Which config ``text`` is, from its first field name (an empty text is an empty models.config)."""
    without_comments = re.sub(r"#[^\n]*", "", text)
    match = _FIRST_FIELD.search(without_comments)
    name = match.group(1) if match else ""
    if name in MonitoringConfig.DESCRIPTOR.fields_by_name:
        return "monitoring"
    if name in BatchingParameters.DESCRIPTOR.fields_by_name:
        return "batching"
    return "models"


def validate_text(text: str, *, kind: ConfigKind | None = None, source: str = "<string>",
                  mapping: PathMapping | None = None, check_disk: bool = True, server: ServerState | None = None,
                  allow_version_labels_for_unavailable_models: bool = False) -> ValidationReport:
    """Parse and validate one config text; a parse error becomes an error finding with line and column."""
    # An empty batching_params.pbtxt is a valid BatchingParameters (every default), not an empty models.config.
    kind = kind or ("batching" if is_per_model_file(source) else detect_kind(text))
    if kind not in CONFIG_KINDS:
        raise ConfigError(f"unknown config kind {kind!r}: use one of {', '.join(CONFIG_KINDS)}")
    try:
        if kind == "monitoring":
            return validate_monitoring_settings(parse_monitoring_config(text, source), source)
        if kind == "batching":
            return validate_batching_settings(parse_batching_parameters(text, source), source,
                                              per_model=is_per_model_file(source))
        config = parse_model_server_config(text, source)
    except ConfigParseError as error:
        return ValidationReport(source, kind, (_parse_finding(error),))
    return validate_model_server_config(
        config, mapping=mapping, check_disk=check_disk, server=server, source=source,
        allow_version_labels_for_unavailable_models=allow_version_labels_for_unavailable_models)


def validate_file(path: str | os.PathLike[str], *, kind: ConfigKind | None = None, mapping: PathMapping | None = None,
                  check_disk: bool = True, server: ServerState | None = None,
                  allow_version_labels_for_unavailable_models: bool = False) -> ValidationReport:
    """Read, parse and validate a models.config, monitoring config or batching parameters file."""
    source = os.fspath(path)
    try:
        text = read_text(path, "config")
    except ConfigParseError as error:
        return ValidationReport(source, kind or "models", (_parse_finding(error),))
    except ConfigError as error:
        return ValidationReport(source, kind or "models", (
            Finding(Severity.ERROR, "unreadable", str(error), "check the path and permissions"),))
    return validate_text(text, kind=kind, source=source, mapping=mapping, check_disk=check_disk, server=server,
                         allow_version_labels_for_unavailable_models=allow_version_labels_for_unavailable_models)


def _parse_finding(error: ConfigParseError) -> Finding:
    where = f"line {error.line}, column {error.column}: " if error.line is not None else ""
    return Finding(Severity.ERROR, "parse-error", f"{where}{error.reason}",
                   "fix the text there; TF Serving refuses the whole file (\"Invalid protobuf file\"), at start-up "
                   "it exits, and a polled file keeps the previous config", field=None,
                   server_message=f"Invalid protobuf file: '{error.source}'")
