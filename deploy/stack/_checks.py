"""Static checks of the compose stack against ``tfsk.toml`` and the files it mounts.

They run on every machine, Docker or not: the compose file parses; every mounted host path
exists; the served models.config is the one the declaration writes and each of its base paths
lies under a mount; the monitoring path and ports agree between the flags, tfsk.toml and
Prometheus; the image's TensorFlow is not older than the exporter's; the healthcheck uses only
what the image has. ``docker compose config`` (or ``docker-compose config``) validates the
file's schema where one of them is installed.
"""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from tfsk import serving_config as sc
from tfsk._base.flags import FLAGS, PATH_FLAGS, TFSERVING_ENTRYPOINT, Argument

from ._compose import ComposeFile, ServiceSpec

__all__ = ["ComposeValidation", "check_stack", "prometheus_config", "validate_with_compose_cli", "validate_with_promtool"]

SERVING_SERVICE = "serving"
#: Flags the stack passes explicitly (see docker-compose.yml); each missing one is a warning.
EXPECTED_FLAGS = ("port", "rest_api_port", "model_config_file", "model_config_file_poll_wait_seconds",
                  "file_system_poll_wait_seconds", "enable_model_warmup",
                  "allow_version_labels_for_unavailable_models")
#: Not in the tensorflow/serving image (it has bash and coreutils).
MISSING_FROM_IMAGE = ("curl", "wget", "nc", "ncat", "netcat", "python", "python3", "jq", "grpcurl",
                      "grpc_health_probe", "http")


def check_stack(compose: ComposeFile, declaration: sc.Declaration, *, service: str = SERVING_SERVICE,
                check_disk: bool = True) -> list[sc.ValidationReport]:
    """Every finding about the stack: one report for the compose file, plus the served config's."""
    findings = sc.FindingList()
    serving = compose.service(service)
    _check_image(serving, findings)
    _check_flags(serving, declaration, findings)
    if check_disk:
        _check_mounts(compose, findings)
    reports = [sc.ValidationReport(str(compose.path), "compose", ())]
    config_report = _check_served_config(serving, declaration, findings, check_disk)
    _check_monitoring(compose, serving, declaration, findings)
    _check_healthcheck(serving, findings)
    _check_ports(serving, findings)
    _check_exporter(compose, serving, findings)
    reports[0] = sc.ValidationReport(str(compose.path), "compose", tuple(findings.items))
    reports += config_report
    return reports


def _check_image(serving: ServiceSpec, findings: sc.FindingList) -> None:
    check_image(serving.image or "", serving.raw.get("platform"), findings)


def check_image(image: str, platform: str | None, findings: sc.FindingList) -> None:
    """The serving image is a pinned tensorflow/serving release running the exporting TensorFlow, on x86-64."""
    if not image.startswith(("tensorflow/serving:", "docker.io/tensorflow/serving:")):
        findings.warning("serving-image", "image", f"the serving image is {image or 'not set'!r}, not a pinned "
                         f"tensorflow/serving release", "use image: tensorflow/serving:${TF_SERVING_VERSION:-X.Y.Z}")
    release = sc.serving_image_version(image)
    try:
        exporting = importlib.metadata.version("tensorflow")
    except importlib.metadata.PackageNotFoundError:
        exporting = None
    if release is not None and exporting is not None and release != exporting:
        findings.warning("image-tag", "image", f"the image runs TensorFlow {release} but this machine exports with "
                         f"TensorFlow {exporting}", f"set TF_SERVING_VERSION={exporting} (or pin the exporter to "
                         f"TensorFlow {release}) so the server runs what exported the models")
    if platform != "linux/amd64":
        findings.warning("platform", "platform", "tensorflow/serving images are built for x86-64 only",
                         "add platform: linux/amd64 so arm64 hosts run it under emulation instead of failing")


def _check_flags(serving: ServiceSpec, declaration: sc.Declaration, findings: sc.FindingList) -> None:
    if serving.entrypoint is None or serving.entrypoint[:1] != (TFSERVING_ENTRYPOINT,):
        findings.warning("entrypoint", "entrypoint", "the image's own entrypoint appends --model_name and "
                         "--model_base_path to the command", f"set entrypoint: [\"{TFSERVING_ENTRYPOINT}\"] and "
                         f"pass every flag in command")
    line = serving.command_line()
    previous: Argument | None = None
    for argument in line.arguments:
        check_argument(argument, previous, findings)
        previous = argument
    given = {a.flag.name for a in line.arguments if a.flag is not None}
    for name in EXPECTED_FLAGS:
        if name not in given:
            findings.warning("missing-flag", f"--{name}", f"--{name} is not set", "pass it explicitly (see the "
                             "repository's docker-compose.yml)")
    if not line.value("allow_version_labels_for_unavailable_models") and any(m.labels for m in declaration.models):
        findings.error("labels-at-startup", "--allow_version_labels_for_unavailable_models",
                       "tfsk.toml declares labels, and TF Serving refuses a start-up config whose labels name "
                       "versions not loaded yet", "pass --allow_version_labels_for_unavailable_models=true")
    if declaration.monitoring is not None and declaration.monitoring.prometheus_enabled:
        if not line.value("monitoring_config_file"):
            findings.warning("missing-flag", "--monitoring_config_file", "tfsk.toml enables Prometheus metrics but "
                             "the server is not given the monitoring config", "pass --monitoring_config_file")
        if not line.value("rest_api_port"):
            findings.error("monitoring-needs-rest", "--rest_api_port", "metrics are served on the REST port, "
                           "which is off", "pass --rest_api_port=8501")
    batching_file = line.value("batching_parameters_file")
    batching = line.value("enable_batching")
    if batching_file and not batching:
        findings.error("batching-file-without-batching", "--batching_parameters_file",
                       "server_options.batching_parameters_file is set without setting "
                       "server_options.enable_batching to true.",
                       "set TFSK_BATCHING=true with TFSK_BATCHING_PARAMETERS_FILE (or neither)")
    if batching and not batching_file:
        findings.warning("batching-defaults", "--batching_parameters_file", "batching is on with TF Serving's "
                         "default parameters, not tfsk.toml's [batching]",
                         "set TFSK_BATCHING_PARAMETERS_FILE=/models/batching_parameters.config")
    for name in PATH_FLAGS:
        value = str(line.value(name))
        if value and serving.host_path(value) is None:
            findings.error("path-not-mounted", f"--{name}", f"{value} is not under any volume of the service",
                           "mount the folder that holds it (volumes: HOST:CONTAINER:ro)")


def check_argument(argument: Argument, previous: Argument | None, findings: sc.FindingList) -> None:
    """One item of the command as TF Serving's flag parser takes it: refused, ignored, or a flag's value."""
    text = argument.text
    if argument.error is not None and argument.flag is not None:
        name = argument.flag.name
        findings.error("bool-flag" if argument.flag.kind == "bool" else "flag-value", f"--{name}",
                       f"{text} is refused by TF Serving's flag parser (usage, exit 255): {argument.error}",
                       f"use --{name}=true or --{name}=false" if argument.flag.kind == "bool" else
                       f"give --{name} a {argument.flag.kind} value")
    elif argument.unknown and not text.startswith("--"):
        bare_bool = previous is not None and previous.value is True and "=" not in previous.text
        if bare_bool and previous is not None and text in ("true", "false"):
            findings.error("flag-form", "command", f"{previous.text} {text} is two items: TF Serving sets "
                           f"{previous.text} to true and prints 'unknown argument: {text}'",
                           f"write {previous.text}={text} as one item")
        else:
            findings.error("flag-form", "command", f"{text!r} is not a --name=value flag: TF Serving prints "
                           f"'unknown argument' and ignores it", "write each flag as one --name=value item")
    elif argument.unknown and "=" not in text and text[2:] in FLAGS:
        findings.error("flag-form", "command", f"{text!r} has no value: TF Serving ignores '--flag value' "
                       f"(two items)", f"write {text}=VALUE as one item")
    elif argument.unknown:
        findings.error("flag-form", "command", f"{text!r} is not a flag of {TFSERVING_ENTRYPOINT}: TF Serving "
                       f"prints 'unknown argument' and ignores it", "remove it, or correct its name")


def _check_mounts(compose: ComposeFile, findings: sc.FindingList) -> None:
    for service in compose.services.values():
        for mount in service.mounts:
            if not mount.host.exists():
                findings.error("mount-missing", f"services.{service.name}.volumes",
                               f"{mount.host} (mounted at {mount.target}) does not exist; Docker would create an "
                               f"empty root-owned folder in its place",
                               "run `tfsk config write` (or `tfsk stack prepare`) for the model folder; restore "
                               "other files from the repository")


def _check_served_config(serving: ServiceSpec, declaration: sc.Declaration, findings: sc.FindingList,
                         check_disk: bool) -> list[sc.ValidationReport]:
    value = str(serving.command_line().value("model_config_file"))
    if not value:
        return []
    host = serving.host_path(value)
    if host is None:
        return []
    if host != declaration.outputs.models_config:
        findings.error("models-config-not-declared", "--model_config_file",
                       f"the server reads {host}, but tfsk.toml writes {declaration.outputs.models_config}",
                       "point --model_config_file at the container path of the declared models_config")
    mapping = declaration.mapping
    mounted = serving.host_path(str(mapping.container_root))
    if mounted != mapping.host_root:
        findings.error("mount-mismatch", "volumes", f"tfsk.toml mounts {mapping.host_root} at "
                       f"{mapping.container_root}, the service mounts {mounted or 'nothing'} there",
                       f"mount {mapping.host_root} at {mapping.container_root} (or change [paths] in tfsk.toml)")
    if not host.is_file():
        return []
    config = sc.read_model_server_config(host)
    for entry in sc.model_entries(config):
        if serving.host_path(entry.base_path) is None:
            findings.error("base-path-not-mounted", "base_path", f"model {entry.name!r}: {entry.base_path} is not "
                           f"under any volume of the service", "export under host_root and run tfsk config write")
    if not check_disk or mounted != mapping.host_root:
        return []
    allow = bool(serving.command_line().value("allow_version_labels_for_unavailable_models"))
    served = sc.validate_model_server_config(config, mapping=mapping, source=str(host),
                                             allow_version_labels_for_unavailable_models=allow)
    image = sc.validate_serving_image(config, serving.image or "", mapping=mapping, source=str(host))
    return [sc.ValidationReport(str(host), "models", served.findings + image.findings),
            *_check_host_config(serving, declaration, config)]


def _check_host_config(serving: ServiceSpec, declaration: sc.Declaration,
                       config: sc.ModelServerConfig) -> list[sc.ValidationReport]:
    """The host-path twin the devserver engine reads (models.host.config): it must parse and say what the
    container config says, base paths mapped through the volumes (else every devserver poll fails)."""
    host_file = declaration.outputs.host_models_config
    if not host_file.is_file():
        return []
    findings = sc.FindingList()
    try:
        host_config = sc.read_model_server_config(host_file)
    except (sc.ConfigError, OSError) as error:
        findings.error("host-config-unreadable", "models.host.config", f"the devserver engine reads {host_file}, "
                       f"which cannot be read: {error}", "run `tfsk config write` (it writes both configs from tfsk.toml)")
        return [sc.ValidationReport(str(host_file), "models", tuple(findings.items))]
    translated = sc.ModelServerConfig()
    translated.CopyFrom(config)
    for entry in sc.model_entries(translated):
        mapped = serving.host_path(entry.base_path)
        if mapped is not None:
            entry.base_path = str(mapped)
    if host_config != translated:
        findings.error("host-config-differs", "models.host.config", f"{host_file} does not say what "
                       f"{declaration.outputs.models_config} says (base paths mapped through the volumes)",
                       "run `tfsk config write` so both come from tfsk.toml again")
    return [sc.ValidationReport(str(host_file), "models", tuple(findings.items))]


def _check_monitoring(compose: ComposeFile, serving: ServiceSpec, declaration: sc.Declaration,
                      findings: sc.FindingList) -> None:
    line = serving.command_line()
    monitoring = str(line.value("monitoring_config_file"))
    if monitoring and declaration.outputs.monitoring_config is not None and \
            serving.host_path(monitoring) not in (None, declaration.outputs.monitoring_config):
        findings.error("monitoring-config-not-declared", "--monitoring_config_file",
                       f"the server reads {serving.host_path(monitoring)}, tfsk.toml writes "
                       f"{declaration.outputs.monitoring_config}", "point the flag at the declared monitoring_config")
    scrape = prometheus_scrape(compose, serving.name)
    if scrape is None or declaration.monitoring is None:
        return
    path, port = scrape
    if path != declaration.monitoring.prometheus_path:
        findings.error("monitoring-path", "prometheus metrics_path", f"Prometheus scrapes {path}, tfsk.toml "
                       f"serves metrics at {declaration.monitoring.prometheus_path}",
                       "make metrics_path in the Prometheus config equal [monitoring] path")
    if port is not None and port != line.value("rest_api_port"):
        findings.error("monitoring-port", "prometheus targets", f"Prometheus scrapes {serving.name}:{port}, the "
                       f"REST port (which serves metrics) is {line.value('rest_api_port')}",
                       "scrape the --rest_api_port")


def prometheus_config(compose: ComposeFile) -> Path | None:
    """The host file a service of the stack mounts as Prometheus's config, if one does."""
    for service in compose.services.values():
        host = service.host_path("/etc/prometheus/prometheus.yml")
        if host is not None and host.is_file():
            return host
    return None


def prometheus_scrape(compose: ComposeFile, target_service: str) -> tuple[str, int | None] | None:
    """``(metrics_path, port)`` of the Prometheus job scraping ``target_service``, if the stack has one."""
    host = prometheus_config(compose)
    if host is not None:
        config = yaml.safe_load(host.read_text(encoding="utf-8")) or {}
        for job in config.get("scrape_configs", []) or []:
            for static in job.get("static_configs", []) or []:
                for target in static.get("targets", []) or []:
                    name, _, port = str(target).partition(":")
                    if name == target_service:
                        return job.get("metrics_path", "/metrics"), int(port) if port.isdigit() else None
            for dns in job.get("dns_sd_configs", []) or []:  # every replica of a scaled service
                if target_service in (dns.get("names") or []) and dns.get("type", "SRV") == "A":
                    port = dns.get("port")
                    return job.get("metrics_path", "/metrics"), int(port) if isinstance(port, int) else None
    return None


def _check_healthcheck(serving: ServiceSpec, findings: sc.FindingList) -> None:
    test = serving.raw.get("healthcheck", {}).get("test")
    if not test:
        findings.warning("healthcheck", "healthcheck", "the serving service has no healthcheck, so nothing waits "
                         "for its models", "add the repository's healthcheck (monitoring/healthcheck.sh)")
        return
    words = [test] if isinstance(test, str) else list(test)
    shell = words[0] if words[0] in ("CMD", "CMD-SHELL") else "CMD-SHELL"
    text = " ".join(words[1:] if words[0] in ("CMD", "CMD-SHELL") else words)
    scripts = [serving.host_path(w) for w in words if w.startswith("/")]
    for script in (s for s in scripts if s is not None and s.is_file()):
        text += "\n" + script.read_text(encoding="utf-8")
    code = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    for tool in MISSING_FROM_IMAGE:
        if re.search(rf"(?<![\w/.-]){re.escape(tool)}(?![\w.-])", code):
            findings.error("healthcheck-tool", "healthcheck", f"the healthcheck runs {tool!r}, which the "
                           f"tensorflow/serving image does not have", "use bash's /dev/tcp (see monitoring/healthcheck.sh)")
    runs_bash = shell == "CMD" and words[1:2] in (["bash"], ["/bin/bash"])
    if "/dev/tcp" in code and not runs_bash:
        findings.error("healthcheck-shell", "healthcheck", "/dev/tcp is a bash feature; CMD-SHELL runs /bin/sh",
                       "run it as [\"CMD\", \"bash\", ...]")


def _check_ports(serving: ServiceSpec, findings: sc.FindingList) -> None:
    if serving.host_network:
        if serving.ports:
            findings.error("ports-host-network", "ports", "network_mode: host and ports: together; Compose refuses "
                           "them (on the host network the container's ports are the host's)", "drop ports:")
        line = serving.command_line()
        ports = sorted({int(line.value(flag)) for flag in ("port", "rest_api_port") if line.value(flag)})
        findings.warning("ports-open", "network_mode", f"network_mode: host: TF Serving listens on ports "
                         f"{', '.join(map(str, ports))} of every interface of the host",
                         "keep them behind a firewall, or publish on 127.0.0.1 with ports: instead")
        return
    taken: dict[int, int] = {}
    for binding in serving.ports:
        if binding.host_ip in ("0.0.0.0", "::", ""):
            findings.warning("ports-open", "ports", f"container port {binding.target} is published on every "
                             f"interface of the host", "publish on 127.0.0.1 unless other machines must reach it")
        if binding.published is None:
            continue
        last = binding.published_last or binding.published
        if last < binding.published:
            findings.error("port-range", "ports", f"the range {binding.published}-{last} of container port "
                           f"{binding.target} ends before it starts", "write FIRST-LAST")
        for port in range(binding.published, last + 1):
            if taken.setdefault(port, binding.target) != binding.target:
                findings.error("port-clash", "ports", f"host port {port} is published for both container "
                               f"ports {taken[port]} and {binding.target}: two of them (two replicas with --scale) "
                               f"would ask for it and one would fail to start",
                               "give the gRPC and REST ports ranges that do not overlap (e.g. "
                               "TFSK_GRPC_PORT=8500-8502 TFSK_REST_PORT=8510-8512)")
                break
    line = serving.command_line()
    grpc, rest = (serving.published(int(line.value(flag))) if line.value(flag) else None
                  for flag in ("port", "rest_api_port"))
    if grpc and rest and len(rest.host_ports) > 1 and len(rest.host_ports) != len(grpc.host_ports):
        findings.error("port-range-length", "ports", f"the gRPC ports {grpc.span()} and the REST ports "
                       f"{rest.span()} are ranges of different lengths: scaled to one replica per gRPC port, a "
                       f"replica would find no REST port (`tfsk stack up` on the devserver refuses to start)",
                       "give both ranges the same length (TFSK_GRPC_PORT=8500-8502 TFSK_REST_PORT=8510-8512)")


def _check_exporter(compose: ComposeFile, serving: ServiceSpec, findings: sc.FindingList) -> None:
    if "exporter" not in compose.services:
        return
    depends = serving.raw.get("depends_on") or {}
    condition = depends.get("exporter", {}).get("condition") if isinstance(depends, dict) else None
    if condition != "service_completed_successfully":
        findings.warning("exporter-order", "depends_on", "serving may start before the exporter has written "
                         "the models and configs", "depends_on: {exporter: {condition: service_completed_successfully}}")


@dataclass(frozen=True)
class ComposeValidation:
    """What Compose's own ``config`` command said (``tool`` is the command that ran)."""

    tool: str
    ok: bool
    output: str


def compose_cli() -> list[str] | None:
    """``docker compose`` (the plugin) or ``docker-compose``, whichever is installed, else ``None``."""
    docker = shutil.which("docker")
    if docker is not None:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, timeout=30)
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def validate_with_promtool(compose: ComposeFile) -> ComposeValidation | None:
    """``promtool check config`` on the stack's Prometheus config; ``None`` without promtool or config."""
    promtool, config = shutil.which("promtool"), prometheus_config(compose)
    if promtool is None or config is None:
        return None
    run = subprocess.run([promtool, "check", "config", "--syntax-only", str(config)], capture_output=True, text=True,
                         timeout=60)
    return ComposeValidation("promtool check config", run.returncode == 0, (run.stdout + run.stderr).strip())


def validate_with_compose_cli(path: Path, profiles: Sequence[str] = ("monitoring", "smoke")) -> ComposeValidation | None:
    """Run Compose's ``config`` on the file (schema and interpolation); ``None`` when Compose is not installed."""
    command = compose_cli()
    if command is None:
        return None
    selected = [argument for profile in profiles for argument in ("--profile", profile)]
    run = subprocess.run([*command, "-f", str(path), *selected, "config", "-q"], capture_output=True, text=True,
                         timeout=60, cwd=path.parent)
    return ComposeValidation(" ".join([Path(command[0]).name, *command[1:], "config"]), run.returncode == 0,
                             (run.stdout + run.stderr).strip())
