"""The serving image's TensorFlow against the TensorFlow that exported each served version.

A SavedModel exported by a newer TensorFlow than the server's may use ops or attributes the
older server does not know: it fails to load (often only at the first request, or only for
some signatures). ``tensorflow/serving:X.Y.Z`` runs TensorFlow X.Y.Z; the exporter records its
TensorFlow version in each version's lineage (``assets.extra/tfsk_lineage.json``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from tfsk._base import layout
from tfsk._base.messages import ModelServerConfig

from ._disk import aspired_versions, inspect_model_folder
from ._findings import Finding, Severity, ValidationReport
from ._models_config import model_entries
from ._paths import PathMapping

__all__ = ["exported_tensorflow_version", "serving_image_version", "validate_serving_image"]

_RELEASE = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?")


def _release(text: str) -> tuple[int, int, int] | None:
    match = _RELEASE.match(text)
    return None if match is None else (int(match[1]), int(match[2]), int(match[3] or 0))


def serving_image_version(image: str) -> str | None:
    """``"2.21.0"`` for ``tensorflow/serving:2.21.0`` (or ``-gpu``, ``@sha256`` forms); ``None`` when
    the tag names no release (``latest``, ``nightly``, no tag)."""
    reference = image.split("@", 1)[0]
    name, _, tag = reference.rpartition(":")
    if not name or "/" in tag:
        return None
    match = _RELEASE.match(tag)
    return None if match is None else ".".join(part for part in match.groups() if part is not None)


def exported_tensorflow_version(version_dir: Path) -> str | None:
    """The TensorFlow version the lineage of ``version_dir`` records, or ``None`` (no lineage)."""
    try:
        lineage = json.loads((version_dir / layout.ASSETS_EXTRA / layout.LINEAGE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    exported_by = lineage.get("exported_by") if isinstance(lineage, dict) else None
    version = exported_by.get("tensorflow") if isinstance(exported_by, dict) else None
    return version if isinstance(version, str) else None


def validate_serving_image(config: ModelServerConfig, image: str, *, mapping: PathMapping | None = None,
                           source: str = "<config>") -> ValidationReport:
    """A warning per served version exported by a newer TensorFlow than ``image`` runs."""
    findings: list[Finding] = []
    served = _release(serving_image_version(image) or "")
    if served is None:
        findings.append(Finding(Severity.WARNING, "image-version-unknown",
                                f"the serving image {image!r} names no TensorFlow release, so it cannot be checked "
                                f"against the TensorFlow that exported the models",
                                "pin the image to a release tag, e.g. tensorflow/serving:2.21.0"))
        return ValidationReport(source, "models", tuple(findings))
    aspired = aspired_versions(config, mapping)
    for model in model_entries(config):
        folder = inspect_model_folder(model.base_path, mapping)
        for version in folder.versions:
            if version.version not in aspired.get(model.name, ()):
                continue
            exported = exported_tensorflow_version(version.path)
            if exported is not None and (_release(exported) or (0, 0, 0)) > served:
                findings.append(Finding(
                    Severity.WARNING, "image-older-than-export",
                    f"version {version.version} was exported with TensorFlow {exported}, newer than the "
                    f"{'.'.join(map(str, served))} that {image} runs: it may fail to load or to run ops it does not know",
                    f"serve it with tensorflow/serving:{exported} or newer (TF_SERVING_VERSION in the compose stack), "
                    f"or export with TensorFlow {'.'.join(map(str, served))}", model.name, "base_path"))
    return ValidationReport(source, "models", tuple(findings))
