"""``docker-compose.yml`` read the way Compose reads it: services, flags, volumes, ports.

Only what the stack needs is modelled: a service's image, entrypoint and command (for the serving
service, ``tensorflow_model_server``'s flags), its bind mounts (container path -> host path) and
its published ports (container port -> host address and port). That is enough to run the very
same serving service on the devserver and to check the file against ``tfsk.toml``.
"""

from __future__ import annotations

import os
import posixpath
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from tfsk._base.flags import CommandLine, parse_command_line

from .._errors import StackError
from ._interpolate import compose_variables, interpolate_tree

__all__ = ["COMPOSE_FILE", "ComposeFile", "Mount", "PortBinding", "ServiceSpec", "load_compose"]

COMPOSE_FILE = "docker-compose.yml"


@dataclass(frozen=True)
class Mount:
    """A bind mount: ``host`` (absolute) seen at ``target`` in the container."""

    host: Path
    target: PurePosixPath
    read_only: bool


@dataclass(frozen=True)
class PortBinding:
    """Container ``target`` port published on the host at ``host_ip:published``.

    A range (``8500-8502:8500``, one port per replica of a scaled service) starts at ``published``
    and ends at ``published_last``.
    """

    target: int
    published: int | None
    host_ip: str
    published_last: int | None = None

    @property
    def host_ports(self) -> list[int]:
        """Every published host port: one, or each port of a range (none when not published)."""
        if self.published is None:
            return []
        return list(range(self.published, max(self.published_last or 0, self.published) + 1))

    def span(self) -> str:
        """The published port or range as written: ``8500`` or ``8500-8502``."""
        ports = self.host_ports
        return "not published" if not ports else f"{ports[0]}" if len(ports) == 1 else f"{ports[0]}-{ports[-1]}"


@dataclass(frozen=True)
class ServiceSpec:
    """One service of the compose file, interpolated."""

    name: str
    raw: Mapping[str, Any]
    image: str | None
    entrypoint: tuple[str, ...] | None
    command: tuple[str, ...]
    mounts: tuple[Mount, ...]
    ports: tuple[PortBinding, ...]
    profiles: tuple[str, ...]
    network_mode: str | None = None

    @property
    def host_network(self) -> bool:
        """``network_mode: host``: the container shares the host's network; its ports are the host's."""
        return self.network_mode == "host"

    def command_line(self) -> CommandLine:
        """The command as ``tensorflow_model_server`` reads it (typed values, unknown items, refused values)."""
        return parse_command_line(self.command)

    def flags(self) -> dict[str, str]:
        """The flags the server takes from the command, as written: ``{name: value}`` (a bare bool flag is
        ``"true"``); unknown arguments and values TF Serving refuses are left out (see :meth:`command_line`)."""
        return {a.flag.name: a.text.partition("=")[2] if "=" in a.text else "true"
                for a in self.command_line().arguments if a.flag is not None and a.error is None}

    def host_path(self, container_path: str) -> Path | None:
        """The host path a container path is mounted from (the deepest mount wins), or ``None``."""
        path = PurePosixPath(posixpath.normpath(container_path))
        if not path.is_absolute():
            return None
        for mount in sorted(self.mounts, key=lambda m: len(m.target.parts), reverse=True):
            if path == mount.target or path.is_relative_to(mount.target):
                return Path(os.path.normpath(mount.host / path.relative_to(mount.target)))
        return None

    def published(self, container_port: int) -> PortBinding | None:
        """Where the host reaches a container port: its ``ports:`` binding, or on the host network the very
        same port (reached on loopback; the server itself may listen on every interface)."""
        if self.host_network:
            return PortBinding(container_port, container_port, "127.0.0.1")
        for binding in self.ports:
            if binding.target == container_port and binding.published is not None:
                return binding
        return None


@dataclass(frozen=True)
class ComposeFile:
    """A parsed, interpolated compose file; ``project_dir`` is where relative host paths start."""

    path: Path
    project_dir: Path
    services: Mapping[str, ServiceSpec]
    variables: Mapping[str, str] = field(repr=False, default_factory=dict)
    raw: Mapping[str, Any] = field(repr=False, default_factory=dict)

    def service(self, name: str) -> ServiceSpec:
        if name not in self.services:
            raise StackError(f"{self.path}: no service {name!r}; services: {', '.join(self.services) or 'none'}")
        return self.services[name]


def load_compose(path: str | os.PathLike[str] = COMPOSE_FILE, environ: Mapping[str, str] | None = None) -> ComposeFile:
    """Read and interpolate a compose file (variables from ``environ``, default the process's, and ``.env``)."""
    file = Path(os.path.abspath(path))
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as error:
        raise StackError(f"cannot read the compose file {os.fspath(path)!r}: {error.strerror or error}; give its "
                         f"path with --compose-file (the repository root holds {COMPOSE_FILE})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise StackError(f"{file}: not valid YAML: {error}") from None
    if not isinstance(data, dict) or not isinstance(data.get("services"), dict):
        raise StackError(f"{file}: no 'services:' mapping; this is not a compose file")
    variables = compose_variables(file.parent, environ)
    tree = interpolate_tree(data, variables)
    services = {name: _service(file, name, spec or {}) for name, spec in tree["services"].items()}
    return ComposeFile(file, file.parent, services, variables, tree)


def _service(file: Path, name: str, spec: Any) -> ServiceSpec:
    where = f"{file}: services.{name}"
    if not isinstance(spec, dict):
        raise StackError(f"{where}: must be a mapping")
    return ServiceSpec(
        name=name,
        raw=spec,
        image=spec.get("image"),
        entrypoint=_words(spec["entrypoint"], f"{where}.entrypoint") if "entrypoint" in spec else None,
        command=_words(spec.get("command", []), f"{where}.command"),
        mounts=tuple(m for m in (_mount(file.parent, v, where) for v in spec.get("volumes", []) or []) if m),
        ports=tuple(_port(p, where) for p in spec.get("ports", []) or []),
        profiles=tuple(spec.get("profiles", []) or []),
        network_mode=str(spec["network_mode"]) if spec.get("network_mode") else None,
    )


def _words(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(shlex.split(value))
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        return tuple(str(v) for v in value)
    raise StackError(f"{where}: must be a string or a list of strings, got {value!r}")


def _mount(project_dir: Path, volume: Any, where: str) -> Mount | None:
    """A bind mount, or ``None`` for a named or anonymous volume (not a host folder)."""
    if isinstance(volume, dict):
        if volume.get("type", "volume") != "bind":
            return None
        source, target = volume.get("source"), volume.get("target")
        read_only = bool(volume.get("read_only", False))
    elif isinstance(volume, str):
        pieces = volume.split(":")
        if len(pieces) == 1:
            return None
        source, target = pieces[0], pieces[1]
        read_only = len(pieces) > 2 and "ro" in pieces[2].split(",")
    else:
        raise StackError(f"{where}.volumes: {volume!r} is neither 'HOST:CONTAINER[:MODE]' nor a mapping")
    if not source or not target:
        raise StackError(f"{where}.volumes: {volume!r} needs a source and a target")
    if not source.startswith((".", "/", "~")):
        return None  # a named volume
    host = Path(os.path.expanduser(source))
    return Mount(Path(os.path.normpath(project_dir / host)), PurePosixPath(posixpath.normpath(target)), read_only)


def _port(port: Any, where: str) -> PortBinding:
    try:
        if isinstance(port, dict):
            published = port.get("published")
            return PortBinding(int(port["target"]), int(published) if published not in (None, "") else None,
                               str(port.get("host_ip") or "0.0.0.0"))
        if isinstance(port, int):
            return PortBinding(port, None, "0.0.0.0")
        text = str(port).split("/")[0]
        host_ip, published, target = "0.0.0.0", None, text
        if text.count(":") >= 2:
            host_ip, published, target = text.rsplit(":", 2)
        elif ":" in text:
            published, target = text.split(":")
        first, _, last = (published or "").partition("-")
        return PortBinding(int(target), int(first) if first else None, host_ip.strip("[]") or "0.0.0.0",
                           int(last) if last else None)
    except (KeyError, ValueError):
        raise StackError(f"{where}.ports: {port!r} is not '[HOST_IP:]HOST_PORT:CONTAINER_PORT'") from None
