"""``monitoring.config``: TF Serving's ``MonitoringConfig`` (Prometheus metrics on the REST port)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, cast

from google.protobuf.message import Message

from tfsk._base.messages import MonitoringConfig

from ._findings import FindingList, ValidationReport
from ._textproto import (
    one_line_fields,
    parse_text,
    read_text,
    with_header,
    write_atomic,
)

#: ``PrometheusExporter::kPrometheusPath``: used when the config leaves ``path`` empty.
DEFAULT_PROMETHEUS_PATH = "/monitoring/prometheus/metrics"


@dataclass(frozen=True)
class MonitoringSettings:
    """What ``--monitoring_config_file`` turns on. Metrics are served on ``--rest_api_port`` only."""

    prometheus_enabled: bool = True
    prometheus_path: str = DEFAULT_PROMETHEUS_PATH

    def to_proto(self) -> Message:
        """A ``tensorflow.serving.MonitoringConfig``."""
        message = MonitoringConfig()
        message.prometheus_config.enable = self.prometheus_enabled
        message.prometheus_config.path = self.prometheus_path
        return message

    @classmethod
    def from_proto(cls, message: Message) -> MonitoringSettings:
        """The settings TF Serving applies from a ``MonitoringConfig``: an empty path means the default path."""
        prometheus = cast(Any, message).prometheus_config
        return cls(prometheus.enable, prometheus.path or DEFAULT_PROMETHEUS_PATH)

    def to_json(self) -> dict[str, Any]:
        return {"prometheus_enabled": self.prometheus_enabled, "prometheus_path": self.prometheus_path}


def format_monitoring_config(settings: MonitoringSettings, header: str | None = None) -> str:
    """``prometheus_config { enable: true path: "..." }``, as TF Serving's docs write it."""
    return with_header(header, one_line_fields(settings.to_proto()))


def parse_monitoring_config(text: str, source: str = "<string>") -> MonitoringSettings:
    return MonitoringSettings.from_proto(parse_text(text, MonitoringConfig, source, what="monitoring config"))


def read_monitoring_config(path: str | os.PathLike[str]) -> MonitoringSettings:
    return parse_monitoring_config(read_text(path, "monitoring config"), os.fspath(path))


def write_monitoring_config(settings: MonitoringSettings, path: str | os.PathLike[str],
                            header: str | None = None) -> bool:
    return write_atomic(path, format_monitoring_config(settings, header))


def validate_monitoring_settings(settings: MonitoringSettings, source: str = "<monitoring>") -> ValidationReport:
    found = FindingList()
    path = settings.prometheus_path
    if not settings.prometheus_enabled:
        found.warning("monitoring-disabled", "prometheus_config.enable",
                      "Prometheus is not enabled, so this file turns nothing on",
                      "set prometheus_config { enable: true }, or drop --monitoring_config_file")
    if not path.startswith("/"):
        found.error("prometheus-path", "prometheus_config.path",
                    f"path {path!r} does not start with '/': TF Serving registers the handler on this exact path "
                    f"and no HTTP request path can match it", f"use e.g. {DEFAULT_PROMETHEUS_PATH!r}")
    elif any(c in path for c in "?#"):
        found.warning("prometheus-path", "prometheus_config.path",
                      f"path {path!r} holds '?' or '#': TF Serving compares the whole request target with it, "
                      f"so scrapers must send exactly that text", "use a plain path")
    elif path.lower().startswith("/v1/"):
        found.warning("prometheus-path", "prometheus_config.path",
                      f"path {path!r} is under /v1/, where TF Serving's REST API routes model requests",
                      f"use a path outside /v1/, e.g. {DEFAULT_PROMETHEUS_PATH!r}")
    return ValidationReport(source, "monitoring", tuple(found.items))
