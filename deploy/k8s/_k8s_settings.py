"""``[kubernetes]`` in ``tfsk.toml``: how many replicas, what resources, and how the models reach the pods.

    [kubernetes]
    name = "tfsk-serving"          # the Deployment, its Services, ConfigMap, PDB (a DNS-1123 label)
    namespace = "ml"               # optional; else kubectl's (or kustomize's) namespace
    replicas = 3
    models = "image"               # "image" | "volume" | "object-store"
    image = "registry.example.com/tfsk-serving-models:1"   # models = "image": `tfsk stack build-image`
    claim = "tfsk-models"          # models = "volume": the PersistentVolumeClaim (created with `storage`)
    storage = "5Gi"
    base_uri = "gs://bucket/models"   # models = "object-store": TF Serving reads <base_uri>/<folder>
    service_account = "tfsk-serving"  # optional (e.g. Workload Identity for gs://)
    service_monitor = true         # also a ServiceMonitor for the Prometheus operator
    cpu = "1"                      # requests; cpu_limit / memory_limit for limits
    memory = "1Gi"
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .._errors import StackError

__all__ = ["MODEL_SOURCES", "KubernetesSettings", "kubernetes_declared", "read_kubernetes_settings"]

#: How the models reach the pods: baked into an image, a PersistentVolumeClaim, or a bucket TF Serving reads.
MODEL_SOURCES = ("image", "volume", "object-store")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_QUANTITY = re.compile(r"\d+(\.\d+)?(m|k|Ki|Mi|Gi|Ti|M|G|T)?")
_KEYS = {"name", "namespace", "replicas", "models", "image", "claim", "storage", "storage_class", "base_uri",
         "service_account", "service_monitor", "cpu", "memory", "cpu_limit", "memory_limit"}


@dataclass(frozen=True)
class KubernetesSettings:
    """The ``[kubernetes]`` table, checked; every key has a default."""

    name: str = "tfsk-serving"
    namespace: str | None = None
    replicas: int = 2
    models: str = "image"
    image: str = "tfsk-serving-models:latest"
    claim: str = "tfsk-models"
    storage: str = "5Gi"
    storage_class: str | None = None
    base_uri: str | None = None
    service_account: str | None = None
    service_monitor: bool = False
    cpu: str = "500m"
    memory: str = "1Gi"
    cpu_limit: str | None = None  # no CPU limit by default: throttling adds latency, requests already schedule
    memory_limit: str | None = "2Gi"


def kubernetes_declared(declaration_file: Path | None) -> bool:
    """Whether ``declaration_file`` has a ``[kubernetes]`` table (the stack is deployed to Kubernetes too)."""
    if declaration_file is None:
        return False
    try:
        return "kubernetes" in tomllib.loads(declaration_file.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return False


def read_kubernetes_settings(declaration_file: Path | None) -> KubernetesSettings:
    """The ``[kubernetes]`` table of ``declaration_file`` (defaults when it has none)."""
    if declaration_file is None:
        return KubernetesSettings()
    try:
        data = tomllib.loads(declaration_file.read_text(encoding="utf-8")).get("kubernetes", {})
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise StackError(f"cannot read {declaration_file}: {error}") from None
    where = f"{declaration_file}: [kubernetes]"
    if not isinstance(data, dict):
        raise StackError(f"{where} must be a table")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise StackError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(_KEYS))}")
    defaults = KubernetesSettings()
    for key, value in data.items():
        wanted = type(getattr(defaults, key)) if getattr(defaults, key) is not None else str
        if not isinstance(value, wanted) or (wanted is int and isinstance(value, bool)):
            raise StackError(f"{where} {key} = {value!r}: must be a {wanted.__name__}")
    settings = KubernetesSettings(**data)
    _check(settings, where)
    return settings


def _check(settings: KubernetesSettings, where: str) -> None:
    for key in ("name", "namespace", "claim", "service_account"):
        value = getattr(settings, key)
        if value is not None and not _DNS_LABEL.fullmatch(value):
            raise StackError(f"{where} {key} = {value!r}: Kubernetes names are lower-case letters, digits and '-' "
                             f"(at most 63, starting and ending alphanumeric)")
    if not 1 <= settings.replicas <= 1000:
        raise StackError(f"{where} replicas = {settings.replicas}: give 1 or more")
    if settings.models not in MODEL_SOURCES:
        raise StackError(f"{where} models = {settings.models!r}: one of {', '.join(MODEL_SOURCES)} (an image "
                         f"built FROM tensorflow/serving with the models in it, a PersistentVolumeClaim, or a "
                         f"gs:// bucket TF Serving reads itself)")
    for key in ("storage", "cpu", "memory", "cpu_limit", "memory_limit"):
        value = getattr(settings, key)
        if value is not None and not _QUANTITY.fullmatch(value):
            raise StackError(f"{where} {key} = {value!r}: not a Kubernetes quantity (e.g. \"500m\", \"2Gi\")")
    if settings.models == "object-store":
        uri = settings.base_uri or ""
        if uri.startswith("s3://"):
            raise StackError(f"{where} base_uri = {uri!r}: tensorflow_model_server 2.21 has no S3 file system (S3 "
                             f"support left TensorFlow in 2.6): the config is accepted, then every poll fails and "
                             f"no model ever loads. Use a gs:// bucket, or models = \"image\" / \"volume\" (copy the "
                             f"models from S3 into the image or the volume)")
        if not uri.startswith("gs://") or len(uri.rstrip("/")) <= len("gs://"):
            raise StackError(f"{where}: models = \"object-store\" needs base_uri = \"gs://BUCKET/PATH\" (the folder "
                             f"that holds each model's folder); tensorflow_model_server reads gs:// itself")

