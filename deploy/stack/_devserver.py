"""The stack without Docker: the compose file's serving service, run on the devserver.

The serving service's flags are taken as they are, with container paths mapped through its
volumes to host paths and container ports through ``ports:`` to the published host ports; the
devserver is started in the background (``python -m tfsk.devserver``) with a pid file and a log
file beside the compose file, bound to the address the ports are published on (loopback by
default). So the flags in the compose file are exercised on every machine.

A gRPC port published on a range (``TFSK_GRPC_PORT=8500-8502``) means one replica per port, as
``docker compose up --scale serving=3`` runs: one devserver each, with its own ports, pid file and
log, the same flags otherwise (:meth:`StackSpec.replica_ports` says which ports each gets).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tfsk import serving_config as sc
from tfsk._base.flags import DEVSERVER_FLAGS, PORT_FLAGS, format_flag, parse_command_line
from tfsk._base.ports import why_port_is_taken

from .._errors import StackError
from ._spec import Endpoints, StackSpec
from ._wait import ModelState, models_state, wait_for_models

if TYPE_CHECKING:
    from tfsk.devserver import DevserverProcess

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


def devserver_arguments(spec: StackSpec, replica: int = 1) -> list[str]:
    """The serving service's flags as the devserver takes them on this machine, for ``replica`` (1, 2, …
    when the gRPC port is published on a range: :meth:`StackSpec.replica_ports`)."""
    all_ports = spec.replica_ports()
    if not 1 <= replica <= len(all_ports):
        raise StackError(f"replica {replica}: the stack publishes {len(all_ports)} gRPC port(s), so it has "
                         f"replicas 1 to {len(all_ports)}")
    ports = all_ports[replica - 1]
    arguments: list[str] = []
    bind_address = None
    for item in spec.serving.command_line().arguments:
        argument, flag, value = item.text, item.flag, item.value
        if flag is not None and flag.port and item.error is None and value != 0:
            binding = spec.serving.published(int(value)) if isinstance(value, int) and value > 0 else None
            if binding is None:
                raise StackError(f"{argument}: container port {value} is not published by service "
                                 f"{spec.serving.name!r}; add it to ports: (\"127.0.0.1:{value}:{value}\")")
            bind_address = bind_address or binding.host_ip
            argument = format_flag(flag.name, ports[flag.name])
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
    """What a replica's pid file holds: the process, what it serves, its log."""

    pid: int
    arguments: list[str]
    endpoints: dict[str, str | None]
    log: str
    started: float
    replica: int = 1  # pid files written before replicas have none: they were the one server

    @property
    def alive(self) -> bool:
        return _is_devserver(self.pid)

    @property
    def name(self) -> str:
        return f"replica {self.replica} (pid {self.pid}, gRPC {self.endpoints['grpc']})"


class DevserverStack:
    """``tfsk stack up|down|status|logs`` on the devserver: one process per replica.

    Each replica has its own pid file and log in the state folder (the first ``devserver.pid`` and
    ``devserver.log``, as before replicas, the others ``devserver-N.pid`` and ``devserver-N.log``).
    Every command but ``up`` reads the replicas from those files, not from the compose file, so
    ``down`` stops a stack started with another ``TFSK_GRPC_PORT`` too.
    """

    name = "devserver"

    def __init__(self, spec: StackSpec) -> None:
        self.spec = spec
        self.pid_file = self.pid_file_of(1)
        self.log_file = self.log_file_of(1)

    def pid_file_of(self, replica: int) -> Path:
        return self.spec.state_dir / ("devserver.pid" if replica == 1 else f"devserver-{replica}.pid")

    def log_file_of(self, replica: int) -> Path:
        return self.spec.state_dir / ("devserver.log" if replica == 1 else f"devserver-{replica}.log")

    # -- state ------------------------------------------------------------------------------------
    def records(self) -> list[RunRecord]:
        """Every replica's record, by replica number, also of replicas that died (``alive`` says which):
        their pid files stay until ``down``, so ``status`` can name them. Unreadable files are removed."""
        found = []
        for path in self.spec.state_dir.glob("devserver*.pid"):
            try:
                found.append(RunRecord(**json.loads(path.read_text(encoding="utf-8"))))
            except FileNotFoundError:
                continue
            except (ValueError, TypeError):
                path.unlink(missing_ok=True)
        return sorted(found, key=lambda record: record.replica)

    def record(self) -> RunRecord | None:
        """The first running replica's record, or ``None`` when no replica runs."""
        return next((record for record in self.records() if record.alive), None)

    def log_tail(self, lines: int = _TAIL_LINES, replica: int = 1) -> str:
        try:
            text = self.log_file_of(replica).read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # -- up ---------------------------------------------------------------------------------------
    def up(self, *, timeout: float = 300, on_progress: Callable[[str], None] = lambda _: None) -> list[Endpoints]:
        """Start one devserver per replica and wait until every model is AVAILABLE on each; their endpoints.

        With some replicas running and some exited, only the exited ones start again, with the flags
        they ran with (``docker compose up -d`` starts the containers that stopped, too)."""
        records = self.records()
        running = [record for record in records if record.alive]
        if running and len(running) == len(records):
            raise StackError(f"the devserver stack is already running ({'; '.join(r.name for r in running)}); "
                             f"`tfsk stack down` first")
        if running:
            plans = [(r.replica, r.arguments, Endpoints.from_json(r.endpoints)) for r in records if not r.alive]
            for replica, _, endpoints in plans:
                on_progress(f"replica {replica} (gRPC {endpoints.grpc}) has exited: starting it again with the "
                            f"flags it ran with")
        else:
            for record in records:  # what is left of a stack whose every replica exited
                self.pid_file_of(record.replica).unlink(missing_ok=True)
            count = len(self.spec.replica_ports())
            plans = [(n, devserver_arguments(self.spec, n), self.spec.endpoints(replica=n)) for n in range(1, count + 1)]
        for replica, arguments, _ in plans:  # every port before any server starts: nothing to undo
            _check_ports_free(arguments, f"replica {replica} of {len(plans)}: " if len(plans) > 1 else "")
        models = self.spec.served_models()
        self.spec.state_dir.mkdir(parents=True, exist_ok=True)
        started: list[tuple[int, DevserverProcess, Endpoints]] = []
        try:
            for replica, arguments, endpoints in plans:
                on_progress("starting: python -m tfsk.devserver " + " ".join(arguments))
                started.append((replica, self._start(replica, arguments, endpoints), endpoints))
            for replica, process, endpoints in started:
                self._wait(replica, process, endpoints, models, timeout, on_progress)
        except BaseException:
            exited = {record.replica: record for record in records if not record.alive}
            for replica, process, _ in started:  # what this call started is stopped again
                if process.poll() is None:
                    self._stop(process.pid, 20)
                if replica in exited:  # still a replica of the stack, still dead: status keeps naming it
                    self._write_record(exited[replica])
                else:
                    self.pid_file_of(replica).unlink(missing_ok=True)
            raise
        return [Endpoints.from_json(record.endpoints) for record in self.records()]

    def _start(self, replica: int, arguments: list[str], endpoints: Endpoints) -> DevserverProcess:
        from tfsk.devserver import start_process  # detached: it outlives us; waited for by _wait

        log = self.log_file_of(replica)
        process = start_process(arguments, log=log, cwd=self.spec.compose.project_dir, detach=True, wait=False)
        self._write_record(RunRecord(process.pid, arguments, endpoints.to_json(), str(log), time.time(), replica))
        return process

    def _write_record(self, record: RunRecord) -> None:
        temporary = self.spec.state_dir / f".devserver-{record.replica}.pid.tmp"
        temporary.write_text(json.dumps(vars(record), indent=2), encoding="utf-8")
        os.replace(temporary, self.pid_file_of(record.replica))  # a reader never sees half a record

    def _wait(self, replica: int, process: DevserverProcess, endpoints: Endpoints, models: list[str],
              timeout: float, on_progress: Callable[[str], None]) -> None:
        several = len(self.records()) > 1
        log = self.log_file_of(replica)

        def exited() -> StackError | None:
            if process.poll() is None:
                return None
            return StackError(f"the devserver{f' of replica {replica}' if several else ''} exited with status "
                              f"{process.returncode} before the models were AVAILABLE; its log is {log}",
                              self.log_tail(replica=replica))

        try:
            wait_for_models(endpoints.grpc, models, timeout=timeout, failure=exited,
                            on_progress=lambda line: on_progress(f"replica {replica}: {line}" if several else line))
        except StackError as error:
            raise StackError(str(error), error.log_tail or self.log_tail(replica=replica)) from None

    # -- down -------------------------------------------------------------------------------------
    def down(self, timeout: float = 30) -> list[tuple[RunRecord, bool]]:
        """Stop every replica; each replica's record and whether it was running (one that had exited is
        only forgotten: its pid may belong to another process by now). ``[]``: there was no stack."""
        records = self.records()
        running = [record for record in records if record.alive]
        for record in running:  # all asked at once, then waited for: N replicas stop in the time of one
            with contextlib.suppress(ProcessLookupError):
                os.kill(record.pid, signal.SIGTERM)
        for record in running:
            self._stop(record.pid, timeout)
        for record in records:
            self.pid_file_of(record.replica).unlink(missing_ok=True)
        return [(record, record in running) for record in records]

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
    def status(self) -> list[tuple[RunRecord, list[ModelState] | None]]:
        """Each replica and its models' states (``None``: the replica's process has exited)."""
        from tfsk.client import Client

        found: list[tuple[RunRecord, list[ModelState] | None]] = []
        for record in self.records():
            if not record.alive:
                found.append((record, None))
                continue
            with Client(str(record.endpoints["grpc"]), timeout=5, retries=0) as client:
                found.append((record, models_state(client, self.spec.served_models())))
        return found

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
        """Every replica's log lines (prefixed ``replica N |`` when there are several, as Compose prefixes a
        scaled service's); with ``follow``, new lines as they come until every replica has stopped."""
        records = self.records()
        paths = [Path(record.log) for record in records] or [self.log_file]
        if not any(path.exists() for path in paths):
            raise StackError(f"no devserver log at {paths[0]}: `tfsk stack up --engine devserver` first")
        prefixes = [f"replica {record.replica} | " if len(records) > 1 else "" for record in records] or [""]
        with contextlib.ExitStack() as stack:
            files = [stack.enter_context(open(path, encoding="utf-8", errors="replace")) if path.exists() else None
                     for path in paths]
            while True:
                read = False
                for prefix, log in zip(prefixes, files, strict=True):
                    line = log.readline() if log is not None else ""
                    if line:
                        read = True
                        yield prefix + line.rstrip("\n")
                if read:
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


def _check_ports_free(arguments: list[str], which: str = "") -> None:
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
            raise StackError(f"{which}port {port} on {address} (--{name}) is in use ({taken}): stop what "
                             f"listens there, or publish the stack on other ports "
                             f"(TFSK_GRPC_PORT / TFSK_REST_PORT)")
