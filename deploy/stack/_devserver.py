"""The stack without Docker: the compose file's serving service, run on the devserver.

The serving service's flags are taken as they are, with container paths mapped through its
volumes to host paths and container ports through ``ports:`` to the published host ports; the
devserver is started in the background (``python -m tfsk.devserver``) with a pid file and a log
file beside the compose file, bound to the address the ports are published on (loopback by
default). So the flags in the compose file are exercised on every machine.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tfsk import serving_config as sc
from tfsk._base.flags import DEVSERVER_FLAGS, PORT_FLAGS, format_flag, parse_command_line
from tfsk._base.ports import why_port_is_taken

from .._errors import StackError
from ._spec import Endpoints, StackSpec
from ._wait import ModelState, models_state, wait_for_models

__all__ = ["DevserverStack", "devserver_arguments"]

_TAIL_LINES = 25


def _translated_config(spec: StackSpec, container_config: sc.ModelServerConfig) -> sc.ModelServerConfig:
    """The served models.config with each base path mapped through the service's volumes."""
    translated = sc.ModelServerConfig()
    translated.CopyFrom(container_config)
    for entry in sc.model_entries(translated):
        host = spec.serving.host_path(entry.base_path)
        if host is None:
            raise StackError(f"model {entry.name!r}: base_path {entry.base_path} is not under any volume of service "
                             f"{spec.serving.name!r}, so the devserver cannot find it on this machine")
        entry.base_path = str(host)
    return translated


def _host_model_config(spec: StackSpec, host_file: Path) -> Path:
    """A models.config with host base paths for the devserver.

    ``tfsk config write`` writes one beside the container config (models.host.config); when it
    says what the container config says, the devserver reads it, so edits picked up by
    ``--model_config_file_poll_wait_seconds`` reach it. Otherwise a translation is written to
    the state folder.
    """
    translated = _translated_config(spec, sc.read_model_server_config(host_file))
    outputs = spec.declaration.outputs
    if host_file == outputs.models_config and outputs.host_models_config.is_file():
        if sc.read_model_server_config(outputs.host_models_config) == translated:
            return outputs.host_models_config
        raise StackError(f"{outputs.host_models_config} does not match {host_file} (base paths mapped through the "
                         f"volumes): run `tfsk config write` so both come from tfsk.toml again")
    target = spec.state_dir / "models.config"
    spec.state_dir.mkdir(parents=True, exist_ok=True)
    target.write_text(sc.format_model_server_config(translated), encoding="utf-8")
    return target


def devserver_arguments(spec: StackSpec) -> list[str]:
    """The serving service's flags as the devserver takes them on this machine."""
    arguments: list[str] = []
    bind_address = None
    for item in spec.serving.command_line().arguments:
        argument, flag, value = item.text, item.flag, item.value
        if flag is not None and flag.port and item.error is None and value != 0:
            binding = spec.serving.published(int(value)) if isinstance(value, int) and value > 0 else None
            if binding is None:
                raise StackError(f"{argument}: container port {value} is not published by service "
                                 f"{spec.serving.name!r}; add it to ports: (\"127.0.0.1:{value}:{value}\")")
            if binding.published_last is not None and binding.published_last != binding.published:
                raise StackError(
                    f"{argument} is published on the range {binding.published}-{binding.published_last} (one port per "
                    f"replica of `docker compose up --scale serving=N`), but the devserver engine runs one server on "
                    f"one port: publish one port (e.g. TFSK_GRPC_PORT={binding.published}), use the docker engine "
                    f"for replicas, or start one `tfsk serve` per port and pass them as --target host:port,host:port")
            bind_address = bind_address or binding.host_ip
            assert binding.published is not None  # published() finds published ports only
            argument = format_flag(flag.name, binding.published)
        elif flag is not None and flag.path and isinstance(value, str) and value:
            host = spec.serving.host_path(value)
            if host is None:
                raise StackError(f"{argument} is not under any volume of service {spec.serving.name!r}; the "
                                 f"devserver cannot find it on this machine: mount the folder that holds it")
            if flag.name == "model_config_file":
                if not host.is_file():
                    raise StackError(f"{host} ({argument}) does not exist: run `tfsk stack prepare`")
                host = _host_model_config(spec, host)
            argument = format_flag(flag.name, str(host))
        arguments.append(argument)
    return [*arguments, format_flag("bind_address", bind_address or DEVSERVER_FLAGS["bind_address"].default_value())]


@dataclass(frozen=True)
class RunRecord:
    """What the pid file holds: the process and what it serves."""

    pid: int
    arguments: list[str]
    endpoints: dict[str, str | None]
    log: str
    started: float


class DevserverStack:
    """``tfsk stack up|down|status|logs`` on the devserver."""

    name = "devserver"

    def __init__(self, spec: StackSpec) -> None:
        self.spec = spec
        self.pid_file = spec.state_dir / "devserver.pid"
        self.log_file = spec.state_dir / "devserver.log"

    # -- state ------------------------------------------------------------------------------------
    def record(self) -> RunRecord | None:
        """The running devserver's record, or ``None`` (a stale pid file is removed)."""
        try:
            record = RunRecord(**json.loads(self.pid_file.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError):
            self.pid_file.unlink(missing_ok=True)
            return None
        if not _is_devserver(record.pid):
            self.pid_file.unlink(missing_ok=True)
            return None
        return record

    def log_tail(self, lines: int = _TAIL_LINES) -> str:
        try:
            return "\n".join(self.log_file.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    # -- up ---------------------------------------------------------------------------------------
    def up(self, *, timeout: float = 300, on_progress: Callable[[str], None] = lambda _: None) -> Endpoints:
        running = self.record()
        if running is not None:
            raise StackError(f"the devserver stack is already running (pid {running.pid}, gRPC "
                             f"{running.endpoints['grpc']}); `tfsk stack down` first")
        endpoints = self.spec.endpoints()
        arguments = devserver_arguments(self.spec)
        _check_ports_free(arguments)
        models = self.spec.served_models()
        self.spec.state_dir.mkdir(parents=True, exist_ok=True)
        on_progress("starting: python -m tfsk.devserver " + " ".join(arguments))
        from tfsk.devserver import start_process  # detached: it outlives us; waited for below, model by model

        process = start_process(arguments, log=self.log_file, cwd=self.spec.compose.project_dir, detach=True,
                                wait=False)
        record = RunRecord(process.pid, arguments, endpoints.to_json(), str(self.log_file), time.time())
        temporary = self.pid_file.with_name(".devserver.pid.tmp")
        temporary.write_text(json.dumps(vars(record), indent=2), encoding="utf-8")
        os.replace(temporary, self.pid_file)

        def exited() -> StackError | None:
            if process.poll() is None:
                return None
            self.pid_file.unlink(missing_ok=True)
            return StackError(f"the devserver exited with status {process.returncode} before the models were "
                              f"AVAILABLE; its log is {self.log_file}", self.log_tail())

        try:
            wait_for_models(endpoints.grpc, models, timeout=timeout, on_progress=on_progress, failure=exited)
        except StackError as error:
            if process.poll() is None:
                self._stop(process.pid, 20)
                self.pid_file.unlink(missing_ok=True)
            raise StackError(str(error), error.log_tail or self.log_tail()) from None
        return endpoints

    # -- down -------------------------------------------------------------------------------------
    def down(self, timeout: float = 30) -> int | None:
        """Stop the devserver by its pid file; the pid it stopped, or ``None`` when none was running."""
        record = self.record()
        if record is None:
            return None
        self._stop(record.pid, timeout)
        self.pid_file.unlink(missing_ok=True)
        return record.pid

    @staticmethod
    def _stop(pid: int, timeout: float) -> None:
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if not _alive(pid):
                    return
                time.sleep(0.1)

    # -- status and logs --------------------------------------------------------------------------
    def status(self) -> tuple[RunRecord | None, list[ModelState]]:
        record = self.record()
        if record is None:
            return None, []
        from tfsk.client import Client

        with Client(str(record.endpoints["grpc"]), timeout=5, retries=0) as client:
            return record, models_state(client, self.spec.served_models())

    def config_problem(self, record: RunRecord) -> str | None:
        """Why the models.config the running devserver polls cannot be read, or ``None``.

        The server keeps serving what it loaded when a poll fails, so its models look healthy while
        no edit reaches it any more (and a restart would fail)."""
        value = parse_command_line(record.arguments).value("model_config_file")
        if not value:
            return None
        try:
            sc.read_model_server_config(str(value))
        except (sc.ConfigError, OSError) as error:
            return (f"{value}, the models.config the devserver polls, cannot be read ({error}); every poll fails, "
                    f"so changes no longer reach the server and a restart would fail: run `tfsk config write`")
        return None

    def logs(self, follow: bool = False, poll: float = 0.5) -> Iterator[str]:
        """The log's lines; with ``follow``, new lines as they come until the devserver stops."""
        if not self.log_file.exists():
            raise StackError(f"no devserver log at {self.log_file}: `tfsk stack up --engine devserver` first")
        with open(self.log_file, encoding="utf-8", errors="replace") as log:
            while True:
                line = log.readline()
                if line:
                    yield line.rstrip("\n")
                    continue
                if not follow or self.record() is None:
                    return
                time.sleep(poll)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie (a child of ours that exited, not yet reaped) does not."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    except (OSError, IndexError):  # no /proc (macOS): ask the kernel with signal 0
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True
    return state != "Z"


def _is_devserver(pid: int) -> bool:
    """Whether ``pid`` is alive and still a devserver (a pid can be reused after a crash)."""
    if not _alive(pid):
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return b"tfsk.devserver" in cmdline.read()
    except OSError:
        return True  # no /proc (macOS): trust the pid file


def _check_ports_free(arguments: list[str]) -> None:
    line = parse_command_line(arguments, DEVSERVER_FLAGS)
    address = str(line.value("bind_address"))
    for name in PORT_FLAGS:
        port = line.value(name)
        if not isinstance(port, int) or port <= 0:
            continue
        try:
            taken = why_port_is_taken(address, port)
        except socket.gaierror as error:
            taken = error.strerror
        if taken:
            raise StackError(f"port {port} on {address} (--{name}) is in use ({taken}): stop what "
                             f"listens there, or publish the stack on other ports "
                             f"(TFSK_GRPC_PORT / TFSK_REST_PORT)")
