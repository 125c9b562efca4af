"""The stack as both engines see it: the compose file, the declaration, the serving service, endpoints."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tfsk import serving_config as sc

from .._errors import StackError
from ._compose import COMPOSE_FILE, ComposeFile, ServiceSpec, load_compose

__all__ = ["Endpoints", "StackSpec", "load_stack"]

SERVING = "serving"


@dataclass(frozen=True)
class Endpoints:
    """Where a client reaches the running stack from this machine."""

    grpc: str
    rest: str | None = None
    metrics: str | None = None
    prometheus: str | None = None
    grafana: str | None = None

    def lines(self) -> list[str]:
        named = (("gRPC", self.grpc), ("REST", self.rest), ("metrics", self.metrics),
                 ("Prometheus", self.prometheus), ("Grafana", self.grafana))
        return [f"{name:<10} {value}" for name, value in named if value]

    def to_json(self) -> dict[str, str | None]:
        return dict(vars(self))

    @classmethod
    def from_json(cls, data: dict[str, str | None]) -> Endpoints:
        grpc, others = data["grpc"], {name: value for name, value in data.items() if name != "grpc"}
        return cls(str(grpc), **others)


def _client_host(host_ip: str) -> str:
    return "127.0.0.1" if host_ip in ("", "0.0.0.0", "::") else host_ip


@dataclass(frozen=True)
class StackSpec:
    """``docker-compose.yml`` and ``tfsk.toml`` read together; ``serving`` is the TF Serving service."""

    compose: ComposeFile
    declaration: sc.Declaration
    serving: ServiceSpec

    @property
    def state_dir(self) -> Path:
        """Where the devserver engine keeps its pid and log files (beside the compose file)."""
        return self.compose.project_dir / ".tfsk" / "stack"

    def container_port(self, flag: str) -> int:
        """The port a ``--port``-like flag of the serving service names (TF Serving's default if not given)."""
        line = self.serving.command_line()
        refused = [a.text for a in line.arguments if a.flag is not None and a.flag.name == flag and a.error]
        if refused:
            raise StackError(f"{refused[-1]} in {self.compose.path} is not a port number")
        return int(line.value(flag))

    def replica_ports(self) -> list[dict[str, int]]:
        """Each replica's host ports, ``{"port": …, "rest_api_port": …}`` (0: that replica serves no REST).

        A published range is what ``docker compose up --scale serving=N`` hands out, one port per
        replica: the gRPC range gives one replica per port; a REST range gives each its own REST
        port and must be as long; a single REST port can be bound once, so it goes to the first
        replica and the others serve gRPC only (TF Serving's ``--rest_api_port=0``).
        """
        grpc = self.serving.published(self.container_port("port"))
        if grpc is None:
            raise StackError(f"{self.compose.path}: the gRPC port of service {self.serving.name!r} is not published; "
                             f"add ports: - \"127.0.0.1:8500:8500\"")
        rest_port = self.container_port("rest_api_port")
        rest = self.serving.published(rest_port) if rest_port else None
        grpc_ports, rest_ports = grpc.host_ports, rest.host_ports if rest else []
        rest_span = rest.span() if rest else "none"
        if len(rest_ports) > 1 and len(rest_ports) != len(grpc_ports):
            raise StackError(f"the gRPC port is published on {len(grpc_ports)} port(s) ({grpc.span()}) and the REST "
                             f"port on {len(rest_ports)} ({rest_span}): one replica per port needs ranges of the "
                             f"same length, e.g. TFSK_GRPC_PORT=8500-8502 TFSK_REST_PORT=8510-8512")
        replicas = [{"port": port, "rest_api_port": rest_ports[i] if len(rest_ports) > 1 else
                     (rest_ports[0] if rest_ports and i == 0 else 0)} for i, port in enumerate(grpc_ports)]
        seen: dict[int, str] = {}
        for number, ports in enumerate(replicas, 1):
            for flag, port in ports.items():
                if port and seen.setdefault(port, f"--{flag} of replica {number}") != f"--{flag} of replica {number}":
                    raise StackError(f"host port {port} would serve both {seen[port]} and --{flag} of replica "
                                     f"{number} (gRPC {grpc.span()}, REST {rest_span}): give the gRPC and REST "
                                     f"ports ranges that do not overlap, e.g. TFSK_GRPC_PORT=8500-8502 "
                                     f"TFSK_REST_PORT=8510-8512")
        return replicas

    def endpoints(self, profiles: tuple[str, ...] = (), replica: int = 1) -> Endpoints:
        """Where a client reaches the stack, or with ``replica`` (1, 2, …) that replica of a port range."""
        all_ports = self.replica_ports()
        if not 1 <= replica <= len(all_ports):
            raise StackError(f"replica {replica}: the stack publishes {len(all_ports)} gRPC port(s), so it has "
                             f"replicas 1 to {len(all_ports)}")
        ports = all_ports[replica - 1]
        grpc = self.serving.published(self.container_port("port"))
        assert grpc is not None  # replica_ports() refused an unpublished gRPC port
        rest_port = self.container_port("rest_api_port")
        rest = self.serving.published(rest_port) if rest_port and ports["rest_api_port"] else None
        rest_url = f"http://{_client_host(rest.host_ip)}:{ports['rest_api_port']}" if rest else None
        monitoring = self.declaration.monitoring
        serves_metrics = (rest_url and monitoring is not None and monitoring.prometheus_enabled
                          and self.serving.command_line().value("monitoring_config_file"))
        metrics = f"{rest_url}{monitoring.prometheus_path}" if serves_metrics and monitoring else None
        extra = {}
        if "monitoring" in profiles:
            for name, port in (("prometheus", 9090), ("grafana", 3000)):
                service = self.compose.services.get(name)
                binding = service.published(port) if service else None
                if binding:
                    extra[name] = f"http://{_client_host(binding.host_ip)}:{binding.published}"
        return Endpoints(f"{_client_host(grpc.host_ip)}:{ports['port']}", rest_url, metrics, **extra)

    def served_config(self) -> sc.ModelServerConfig:
        """The models.config the serving service reads, from the host folder it is mounted from."""
        value = str(self.serving.command_line().value("model_config_file"))
        if not value:
            raise StackError(f"{self.compose.path}: service {self.serving.name!r} has no --model_config_file; the "
                             f"stack serves the models tfsk.toml declares through one")
        host = self.serving.host_path(value)
        if host is None:
            raise StackError(f"{self.compose.path}: --model_config_file={value} is not under any volume of service "
                             f"{self.serving.name!r}; mount the folder that holds it")
        if not host.is_file():
            raise StackError(f"{host} (--model_config_file={value}) does not exist yet: run `tfsk stack prepare` "
                             f"(or `tfsk config write`)")
        return sc.read_model_server_config(host)

    def served_models(self) -> list[str]:
        return [entry.name for entry in sc.model_entries(self.served_config())]


def load_stack(compose_file: str | os.PathLike[str] = COMPOSE_FILE,
               declaration: str | os.PathLike[str] | None = None, *, service: str = SERVING,
               environ: Mapping[str, str] | None = None) -> StackSpec:
    """The compose file and its declaration (default: ``tfsk.toml`` beside the compose file).

    ``environ`` replaces the process environment for Compose's variables (``.env`` still applies).
    """
    compose = load_compose(compose_file, environ)
    declared = sc.load_declaration(declaration if declaration is not None
                                   else compose.project_dir / sc.DECLARATION_FILE)
    return StackSpec(compose, declared, compose.service(service))
