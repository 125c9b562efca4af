"""The rendered Kubernetes manifests checked: against the Kubernetes schemas, and against the stack.

The same agreements as the compose checks (``_checks``): every path a flag names lies under a
volume of the container (or in the image it runs), every base path of the served models.config
too, the probes and Services name ports the container has, the metrics annotations name the REST
port and tfsk.toml's path, the image runs the exporting TensorFlow, and the probes run nothing
the tensorflow/serving image lacks.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from tfsk import serving_config as sc
from tfsk._base.flags import parse_command_line

from .._errors import StackError
from ..stack import StackSpec
from ..stack._checks import MISSING_FROM_IMAGE, check_argument, check_image
from ._k8s import (
    CONFIG_DIR,
    CONFIG_MAP_FILE,
    MANIFESTS_DIR,
    KubernetesManifests,
    render_kubernetes,
    rendered_config_map,
)

__all__ = ["KUBERNETES_VERSION", "SchemaResult", "check_manifests", "check_rendered_config_map",
           "validate_with_kubernetes_schemas"]

#: The Kubernetes release whose schemas the manifests are validated against (kubernetes-validate's newest).
KUBERNETES_VERSION = "1.37.0"


def _under(path: str, mounts: Iterable[str]) -> bool:
    target = PurePosixPath(posixpath.normpath(path))
    return any(target == PurePosixPath(m) or target.is_relative_to(m) for m in mounts)


def check_manifests(manifests: KubernetesManifests, spec: StackSpec) -> sc.ValidationReport:
    """Every disagreement between the manifests, the compose serving service and tfsk.toml."""
    findings = sc.FindingList()
    settings = manifests.settings
    deployment = manifests.find("Deployment", settings.name)
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    mounts = [m["mountPath"] for m in container.get("volumeMounts", [])]
    if settings.models == "image":
        mounts.append(str(spec.declaration.mapping.container_root))  # baked in by Dockerfile.serving
    previous = None
    for item in parse_command_line(container["args"]).arguments:
        check_argument(item, previous, findings)
        previous = item
        name, value = item.flag.name if item.flag else "", item.value
        if item.flag is not None and item.flag.path and isinstance(value, str) and value and not _under(value, mounts):
            findings.error("path-not-mounted", f"--{name}", f"{value} is under no volume of the pod "
                           f"({', '.join(mounts)})", "render again; with models = \"object-store\" only the "
                           "ConfigMap is mounted, so point the flag at a file tfsk.toml declares")
    config = sc.parse_model_server_config(manifests.models_config)
    for entry in sc.model_entries(config):
        remote = entry.base_path.startswith("gs://")
        if not remote and not _under(entry.base_path, mounts):
            findings.error("base-path-not-mounted", "base_path", f"model {entry.name!r}: {entry.base_path} is "
                           f"under no volume of the pod", "models = \"volume\" or \"image\" put them under "
                           f"{spec.declaration.mapping.container_root}")
    report = sc.validate_model_server_config(config, check_disk=False, source="ConfigMap models.config")
    findings.extend(report.findings)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    if ports.get("grpc") != spec.container_port("port") or \
            ports.get("http") != spec.container_port("rest_api_port"):
        findings.error("ports", "ports", f"the container ports {ports} are not the serving flags' --port and "
                       f"--rest_api_port", "render again")
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        _check_probe(container.get(probe), probe, ports, findings)
    for service in (d for d in manifests.documents() if d["kind"] == "Service"):
        for port in service["spec"]["ports"]:
            if port["targetPort"] not in ports:
                findings.error("service-port", service["metadata"]["name"], f"targetPort {port['targetPort']} is "
                               f"not a port of the container", "name grpc or http")
        if service["spec"]["selector"] != deployment["spec"]["selector"]["matchLabels"]:
            findings.error("service-selector", service["metadata"]["name"], "selects other pods than the "
                           "Deployment's", "render again")
    annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
    monitoring = spec.declaration.monitoring
    if monitoring is not None and monitoring.prometheus_enabled and (
            annotations.get("prometheus.io/path") != monitoring.prometheus_path
            or annotations.get("prometheus.io/port") != str(ports.get("http"))):
        findings.error("monitoring", "prometheus.io annotations", f"Prometheus would scrape "
                       f"{annotations.get('prometheus.io/port')}{annotations.get('prometheus.io/path')}, the server "
                       f"serves metrics on {ports.get('http')}{monitoring.prometheus_path}", "render again")
    strategy = deployment["spec"]["strategy"].get("rollingUpdate", {})
    if strategy.get("maxUnavailable") != 0:
        findings.error("rollout", "strategy", "a rolling update may drop below the serving replicas",
                       "maxUnavailable: 0")
    check_image(_serving_image(manifests, spec) or "", "linux/amd64", findings)  # nodes pull the amd64 image
    return sc.ValidationReport("kubernetes manifests", "kubernetes", tuple(findings.items))


def _serving_image(manifests: KubernetesManifests, spec: StackSpec) -> str | None:
    """The tensorflow/serving image the pods run: the Deployment's, or the one ``Dockerfile.serving`` builds FROM."""
    return spec.serving.image if manifests.settings.models == "image" else \
        manifests.find("Deployment")["spec"]["template"]["spec"]["containers"][0]["image"]


def _check_probe(probe: dict[str, Any] | None, where: str, ports: dict[str, int], findings: sc.FindingList) -> None:
    if probe is None:
        findings.error("probe", where, f"the container has no {where}", "render again")
        return
    for kind in ("tcpSocket", "httpGet", "grpc"):
        if kind in probe and probe[kind]["port"] not in ports and probe[kind]["port"] not in ports.values():
            findings.error("probe-port", where, f"{where} asks port {probe[kind]['port']}, not one of the "
                           f"container's", "use grpc or http")
    if "httpGet" in probe or "grpc" in probe:
        # httpGet: TF Serving's status answers 200 before any model is AVAILABLE; grpc: its health service is off.
        findings.warning("probe-kind", where, f"{where} does not know whether the models are AVAILABLE",
                         "use the exec probe that runs the healthcheck script")
    command = " ".join(probe.get("exec", {}).get("command", []))
    if command:
        words = command.split()
        if words[0] not in ("bash", "/bin/bash", "sleep") and not words[0].startswith(CONFIG_DIR):
            findings.error("probe-tool", where, f"{where} runs {words[0]!r}", "run the script with bash")
        for tool in MISSING_FROM_IMAGE:
            if re.search(rf"(?<![\w/.-]){re.escape(tool)}(?![\w.-])", command):
                findings.error("probe-tool", where, f"{where} runs {tool!r}, which the tensorflow/serving image "
                               f"does not have", "use the healthcheck script (bash /dev/tcp)")


@dataclass(frozen=True)
class SchemaResult:
    """One manifest checked against the Kubernetes schemas (``error`` is ``None`` when valid)."""

    kind: str
    name: str
    error: str | None


def validate_with_kubernetes_schemas(manifests: KubernetesManifests,
                                     version: str = KUBERNETES_VERSION) -> list[SchemaResult] | None:
    """Each manifest against the bundled schemas of ``kubernetes-validate`` (strict: unknown fields fail).

    ``None`` when the package is not installed (``pip install tfsk[test]``). Custom resources
    (the ServiceMonitor) have no schema there and are left out.
    """
    try:
        import kubernetes_validate
    except ImportError:
        return None
    results = []
    for document in manifests.documents():
        if document["kind"] == "ServiceMonitor":
            continue
        try:
            kubernetes_validate.validate(document, version, strict=True)
            error = None
        except kubernetes_validate.ValidationError as failure:
            error = f"{failure.message} at {'/'.join(str(p) for p in failure.path)}"
        results.append(SchemaResult(document["kind"], document["metadata"]["name"], error))
    return results


def check_rendered_config_map(spec: StackSpec, folder: Path | None = None) -> sc.ValidationReport | None:
    """The ConfigMap ``tfsk stack render k8s`` wrote (``folder``, default ``k8s/`` beside tfsk.toml) against
    what tfsk.toml renders now: a stale models.config is an error (a restarted pod would serve the old
    versions and labels). None when no rendered ConfigMap is there (or the stack cannot be rendered: the
    other checks say why)."""
    if folder is None:
        if spec.declaration.source is None:
            return None
        folder = spec.declaration.source.parent / MANIFESTS_DIR
    path = folder / CONFIG_MAP_FILE
    if not path.is_file():
        return None
    try:
        manifests = render_kubernetes(spec)
    except StackError:
        return None
    on_disk = rendered_config_map(path, manifests.models_key)
    if on_disk is None:
        return None
    findings = sc.FindingList()
    if on_disk != manifests.models_config:
        findings.error("k8s-configmap-stale", manifests.models_key,
                       f"{path}: the rendered ConfigMap's {manifests.models_key} differs from what tfsk.toml "
                       f"renders now (a rollout or an edit since it was rendered): a restarted pod would serve "
                       f"the old versions and labels",
                       f"run `tfsk stack render k8s --out {folder}` (or `tfsk rollout` does it) and then "
                       f"`kubectl apply -f {path}`")
    return sc.ValidationReport(str(path), "kubernetes", tuple(findings.items))
