"""``tfsk stack render k8s``: plain Kubernetes manifests for the compose stack's serving service.

The Deployment runs the same ``tensorflow_model_server`` flags as ``docker-compose.yml``'s serving
service (read from it, not a second list): only the config files move, from the model folder to
a ConfigMap mounted at ``/etc/tfsk`` (``models.config``, ``monitoring.config``, batching
parameters, and the compose healthcheck script, which the readiness probe runs with bash). The
layout is one file per kind plus a ``kustomization.yaml``: ``kubectl apply -k DIR`` or ``-f DIR``.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tfsk import serving_config as sc
from tfsk._base.flags import TFSERVING_ENTRYPOINT, format_flag, parse_command_line

from .._errors import StackError
from ..stack import StackSpec
from ._k8s_settings import KubernetesSettings, read_kubernetes_settings

__all__ = ["CONFIG_DIR", "CONFIG_MAP_FILE", "HEADER", "MANIFESTS_DIR", "KubernetesManifests", "render_kubernetes",
           "rendered_config_map", "write_config_map", "write_manifests"]

#: Where the ConfigMap (configs and the probe script) is mounted in the serving container.
CONFIG_DIR = "/etc/tfsk"
HEALTHCHECK = "healthcheck.sh"
#: The folder ``tfsk stack render k8s`` writes by default (``./k8s``; beside tfsk.toml for the rollout steps and
#: ``tfsk stack check``), and the ConfigMap's file in it.
MANIFESTS_DIR = "k8s"
CONFIG_MAP_FILE = "configmap.yaml"
HEADER = "# Written by `tfsk stack render k8s` from tfsk.toml and docker-compose.yml: change those and render again.\n"


@dataclass(frozen=True)
class KubernetesManifests:
    """The rendered resources, by file name (``kustomization.yaml`` lists the others)."""

    settings: KubernetesSettings
    files: dict[str, list[dict[str, Any]]]
    serving_args: tuple[str, ...]
    #: the models.config text the pods read (also in the ConfigMap)
    models_config: str = field(repr=False, default="")

    def documents(self) -> Iterator[dict[str, Any]]:
        for name, documents in self.files.items():
            if name != "kustomization.yaml":
                yield from documents

    def find(self, kind: str, name: str | None = None) -> dict[str, Any]:
        for document in self.documents():
            if document["kind"] == kind and (name is None or document["metadata"]["name"] == name):
                return document
        raise KeyError(f"no {kind} {name or ''} rendered")

    @property
    def models_key(self) -> str:
        """The ConfigMap key the pods read as ``--model_config_file``."""
        return posixpath.basename(str(parse_command_line(self.serving_args).value("model_config_file") or
                                      "models.config"))

    def texts(self) -> dict[str, str]:
        return {name: HEADER + yaml.safe_dump_all(documents, sort_keys=False, default_flow_style=False)
                for name, documents in self.files.items()}


def _labels(settings: KubernetesSettings) -> dict[str, str]:
    return {"app.kubernetes.io/name": "tensorflow-serving", "app.kubernetes.io/instance": settings.name}


def _metadata(settings: KubernetesSettings, name: str, component: str = "serving") -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if settings.namespace:
        metadata["namespace"] = settings.namespace
    metadata["labels"] = {**_labels(settings), "app.kubernetes.io/component": component,
                          "app.kubernetes.io/managed-by": "tfsk"}
    return metadata


def _config_files(spec: StackSpec, settings: KubernetesSettings) -> list[tuple[sc.RenderedConfig, str]]:
    """Each container-side config ``tfsk config write`` writes, with the text the pods read."""
    files = []
    for rendered in sc.render_configs(spec.declaration):
        if rendered.target == "host":
            continue
        text = rendered.text
        if rendered.kind == "models" and settings.models == "object-store":
            base = (settings.base_uri or "").rstrip("/")
            declaration = spec.declaration
            config = sc.model_server_config(
                sc.model_config(m.name, f"{base}/{Path(m.folder).as_posix()}", m.policy, m.label_map)
                for m in declaration.models)
            text = sc.format_model_server_config(config, f"TF Serving models.config for Kubernetes: the models are "
                                                         f"read from {base} by TF Serving itself.")
        files.append((rendered, text))
    return files


def serving_arguments(spec: StackSpec, configs: list[tuple[sc.RenderedConfig, str]]) -> tuple[str, ...]:
    """The compose serving service's flags, with each declared config file moved to the ConfigMap's mount."""
    moved = {rendered.path: posixpath.join(CONFIG_DIR, rendered.path.name) for rendered, _ in configs}
    arguments = []
    for item in spec.serving.command_line().arguments:
        argument, flag, value = item.text, item.flag, item.value
        if flag is not None and flag.kind == "string" and value == "":
            continue  # an empty flag (e.g. --batching_parameters_file= when batching is off) is the default
        if flag is not None and flag.path and isinstance(value, str) and value:
            host = spec.serving.host_path(value)
            if host in moved:
                argument = format_flag(flag.name, moved[host])
        arguments.append(argument)
    return tuple(arguments)


def _healthcheck_script(spec: StackSpec) -> str:
    """The script the compose healthcheck runs (mounted from the host), which the readiness probe reuses."""
    test = (spec.serving.raw.get("healthcheck") or {}).get("test") or []
    for word in test if isinstance(test, list) else []:
        host = spec.serving.host_path(word) if str(word).startswith("/") else None
        if host is not None and host.is_file():
            return host.read_text(encoding="utf-8")
    raise StackError(f"{spec.compose.path}: the serving service's healthcheck runs no mounted script; the "
                     f"readiness probe reuses it (the repository's monitoring/healthcheck.sh)")


def _container(spec: StackSpec, settings: KubernetesSettings, arguments: tuple[str, ...]) -> dict[str, Any]:
    grpc_port, rest_port = spec.container_port("port"), spec.container_port("rest_api_port")
    if not rest_port:
        raise StackError(f"{spec.compose.path}: the serving service has no --rest_api_port; the readiness probe "
                         f"asks the REST status of each model (and metrics are served there)")
    models_config = parse_command_line(arguments).value("model_config_file")
    if not models_config:
        raise StackError(f"{spec.compose.path}: the serving service has no --model_config_file")
    mounts = [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}]
    if settings.models == "volume":
        mounts.append({"name": "models", "mountPath": str(spec.declaration.mapping.container_root),
                       "readOnly": True})
    resources: dict[str, Any] = {"requests": {"cpu": settings.cpu, "memory": settings.memory}}
    limits = {k: v for k, v in (("cpu", settings.cpu_limit), ("memory", settings.memory_limit)) if v}
    if limits:
        resources["limits"] = limits
    entrypoint = list(spec.serving.entrypoint or (TFSERVING_ENTRYPOINT,))
    return {
        "name": "serving",
        "image": settings.image if settings.models == "image" else spec.serving.image,
        "command": entrypoint,
        "args": list(arguments),
        "ports": [{"name": "grpc", "containerPort": grpc_port, "protocol": "TCP"},
                  {"name": "http", "containerPort": rest_port, "protocol": "TCP"}],
        "resources": resources,
        "volumeMounts": mounts,
        # TF Serving opens its ports only once every initial model has loaded: the startup probe
        # gives a slow load ten minutes before liveness (a TCP connect, cheap) takes over.
        "startupProbe": {"tcpSocket": {"port": "grpc"}, "periodSeconds": 10, "failureThreshold": 60},
        "livenessProbe": {"tcpSocket": {"port": "grpc"}, "periodSeconds": 10, "timeoutSeconds": 5,
                          "failureThreshold": 3},
        # Ready only when every model of the served config has a version AVAILABLE (REST status, bash /dev/tcp:
        # the image has no curl or wget).
        "readinessProbe": {"exec": {"command": ["bash", posixpath.join(CONFIG_DIR, HEALTHCHECK), str(rest_port),
                                                models_config]},
                           "periodSeconds": 5, "timeoutSeconds": 8, "failureThreshold": 2, "successThreshold": 1},
        # Endpoints are removed asynchronously: keep serving a few seconds after the pod is marked for deletion.
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", "5"]}}},
        "securityContext": {"allowPrivilegeEscalation": False},
    }


def _deployment(spec: StackSpec, settings: KubernetesSettings, arguments: tuple[str, ...]) -> dict[str, Any]:
    rest_port = spec.container_port("rest_api_port")
    annotations: dict[str, str] = {}
    monitoring = spec.declaration.monitoring
    if monitoring is not None and monitoring.prometheus_enabled:
        annotations = {"prometheus.io/scrape": "true", "prometheus.io/port": str(rest_port),
                       "prometheus.io/path": monitoring.prometheus_path}
    volumes: list[dict[str, Any]] = [{"name": "config", "configMap": {"name": f"{settings.name}-config"}}]
    if settings.models == "volume":
        volumes.append({"name": "models", "persistentVolumeClaim": {"claimName": settings.claim, "readOnly": True}})
    pod: dict[str, Any] = {"containers": [_container(spec, settings, arguments)], "volumes": volumes,
                           # tensorflow/serving images are x86-64 only, and nodes do not emulate
                           "nodeSelector": {"kubernetes.io/arch": "amd64"},
                           "terminationGracePeriodSeconds": 30}
    if settings.service_account:
        pod["serviceAccountName"] = settings.service_account
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": _metadata(settings, settings.name),
        "spec": {
            "replicas": settings.replicas,
            "selector": {"matchLabels": _labels(settings)},
            # A new pod must be Ready (its models AVAILABLE) before an old one goes: never fewer than `replicas`.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "minReadySeconds": 5,
            "template": {"metadata": {"labels": _labels(settings), **({"annotations": annotations} if annotations
                                                                      else {})},
                         "spec": pod},
        },
    }


def _services(settings: KubernetesSettings, grpc_port: int, rest_port: int) -> list[dict[str, Any]]:
    ports = [{"name": "grpc", "port": grpc_port, "targetPort": "grpc", "protocol": "TCP", "appProtocol": "grpc"},
             {"name": "http", "port": rest_port, "targetPort": "http", "protocol": "TCP"}]
    cluster_ip = {"apiVersion": "v1", "kind": "Service", "metadata": _metadata(settings, settings.name),
                  "spec": {"type": "ClusterIP", "selector": _labels(settings), "ports": ports}}
    # One DNS A record per Ready pod: the client's dns:/// target balances round-robin across them.
    headless = {"apiVersion": "v1", "kind": "Service", "metadata": _metadata(settings, f"{settings.name}-headless", "serving-headless"),
                "spec": {"clusterIP": "None", "selector": _labels(settings), "ports": ports,
                         "publishNotReadyAddresses": False}}
    return [cluster_ip, headless]


def render_kubernetes(spec: StackSpec, settings: KubernetesSettings | None = None) -> KubernetesManifests:
    """The manifests for ``spec``'s serving service; ``settings`` default to ``tfsk.toml``'s ``[kubernetes]``."""
    if settings is None:
        settings = read_kubernetes_settings(spec.declaration.source)
    configs = _config_files(spec, settings)
    arguments = serving_arguments(spec, configs)
    data = {rendered.path.name: text for rendered, text in configs}
    data[HEALTHCHECK] = _healthcheck_script(spec)
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _metadata(settings, f"{settings.name}-config"),
                  "data": data}
    grpc_port, rest_port = spec.container_port("port"), spec.container_port("rest_api_port")
    files: dict[str, list[dict[str, Any]]] = {
        CONFIG_MAP_FILE: [config_map],
        "deployment.yaml": [_deployment(spec, settings, arguments)],
        "service.yaml": _services(settings, grpc_port, rest_port),
        "poddisruptionbudget.yaml": [{
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": _metadata(settings, settings.name),
            # Voluntary evictions (node drains) take one replica at a time.
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": _labels(settings)}}}],
    }
    if settings.models == "volume":
        claim: dict[str, Any] = {"accessModes": ["ReadOnlyMany"], "resources": {"requests": {"storage": settings.storage}}}
        if settings.storage_class:
            claim["storageClassName"] = settings.storage_class
        files["persistentvolumeclaim.yaml"] = [{"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                                "metadata": _metadata(settings, settings.claim, "models"),
                                                "spec": claim}]
    monitoring = spec.declaration.monitoring
    if settings.service_monitor and monitoring is not None and monitoring.prometheus_enabled:
        files["servicemonitor.yaml"] = [{
            "apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
            "metadata": _metadata(settings, settings.name),
            "spec": {"selector": {"matchLabels": {**_labels(settings), "app.kubernetes.io/component": "serving"}},
                     "endpoints": [{"port": "http", "path": monitoring.prometheus_path, "interval": "15s"}]}}]
    files["kustomization.yaml"] = [{"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                                    "resources": sorted(files)}]
    models_text = next((text for rendered, text in configs if rendered.kind == "models"), "")
    return KubernetesManifests(settings, files, arguments, models_text)


def write_manifests(manifests: KubernetesManifests, out: Path) -> list[Path]:
    """Write each file into ``out``; files there that ``tfsk`` did not render are never replaced."""
    texts = manifests.texts()
    out.mkdir(parents=True, exist_ok=True)
    for name in texts:
        _check_ours(out / name)
    written = []
    for name, text in texts.items():
        target = out / name
        temporary = out / f".{name}.tmp"
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, target)
        written.append(target)
    return written


def _check_ours(target: Path) -> None:
    if target.exists() and not target.read_text(encoding="utf-8", errors="replace").startswith(HEADER):
        raise StackError(f"{target} exists and was not written by `tfsk stack render k8s`; not replacing it "
                         f"(render into another --out folder, or move the file away)")


def write_config_map(manifests: KubernetesManifests, out: Path) -> Path:
    """Write only the ConfigMap (as :func:`write_manifests` does) into ``out``: what a rollout step changes."""
    text = manifests.texts()[CONFIG_MAP_FILE]
    target = out / CONFIG_MAP_FILE
    _check_ours(target)
    out.mkdir(parents=True, exist_ok=True)
    temporary = out / f".{CONFIG_MAP_FILE}.tmp"
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, target)
    return target


def rendered_config_map(path: Path, key: str) -> str | None:
    """The ``key`` entry of the ConfigMap ``tfsk stack render k8s`` wrote at ``path``; None when there is none."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    if not text.startswith(HEADER):
        return None
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError:
        return None
    for document in documents:
        if isinstance(document, dict) and document.get("kind") == "ConfigMap":
            value = (document.get("data") or {}).get(key)
            return value if isinstance(value, str) else None
    return None
