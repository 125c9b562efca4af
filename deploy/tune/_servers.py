"""The servers a tune measures: one started for each trial, serving the one model, stopped after it.

A fresh server per trial, because TF Serving reads ``--batching_parameters_file`` once at start;
the model is the newest version the user's ``tfsk.toml`` policy serves, under the same name, and
a trial without batching parameters is the server without ``--enable_batching`` (the baseline).
The devserver engine runs ``python -m tfsk.devserver`` (:func:`tfsk.devserver.start_process`);
the docker engine runs the ``tensorflow/serving`` image with the same flags.
"""

from __future__ import annotations

import re
import socket
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

from tfsk import serving_config as sc
from tfsk._base import layout
from tfsk._base.flags import format_flag
from tfsk.devserver import StartupError, start_process

from .._errors import StackError
from ..stack import docker_engine_problem, wait_for_models

__all__ = ["DevserverTrials", "DockerTrials", "TrialServers", "TuneError", "served_version"]

_CONTAINER_MODELS, _CONTAINER_TUNE = "/models", "/tune"
#: A trial's load either works or fails at once: TF Serving would otherwise retry a failed load
#: (5 times, a minute apart) before it gives up and exits.
_NO_RETRIES = format_flag("max_num_load_retries", 0)


class TuneError(StackError):
    """A tune that cannot run (unknown model, no version to serve, a trial server that does not start)."""


class TrialServers(Protocol):
    """Starts the server of one trial; ``trial`` yields its gRPC ``host:port`` while it runs.

    ``version`` is the model version every trial serves."""

    name: str
    version: int

    def trial(self, index: int, batching: sc.BatchingSettings | None) -> AbstractContextManager[str]: ...


def served_version(declaration: sc.Declaration, model: str) -> int:
    """The newest version of ``model`` its declared policy serves (what the trials measure)."""
    declared = declaration.model(model)  # unknown: DeclarationError, naming the declared ones
    config = sc.model_server_config([sc.model_config(declared.name, declaration.base_path(declared, "host"),
                                                     declared.policy)])
    versions = sc.aspired_versions(config).get(model)
    if not versions:
        raise TuneError(f"model {model!r} has no complete version under {declaration.base_path(declared, 'host')} "
                        f"that its policy ({declared.policy.describe()}) serves: export one first")
    version = max(versions)
    # What would fail the load (a corrupt or half-copied version), said before a server waits on it.
    served = sc.model_server_config([sc.model_config(declared.name, declaration.base_path(declared, "host"),
                                                     sc.VersionPolicy.specific([version]))])
    errors = sc.validate_model_server_config(served).errors
    if errors:
        raise TuneError(f"model {model!r} version {version} cannot be served: {errors[0].message}"
                        + (f" -> {errors[0].action}" if errors[0].action else ""))
    return version


def version_dir(declaration: sc.Declaration, model: str, version: int) -> Path:
    """The folder of ``model``'s ``version`` on this machine."""
    base = Path(declaration.base_path(declaration.model(model), "host"))
    return next((v.path for v in layout.list_versions(base) if v.version == version), base / str(version))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _batching_flags(batching: sc.BatchingSettings | None, file: Path, path_seen: str) -> list[str]:
    if batching is None:
        return []
    sc.write_batching_parameters(batching, file)
    return [format_flag("enable_batching", True), format_flag("batching_parameters_file", path_seen)]


class DevserverTrials:
    """Trials on the devserver, on a free loopback port each."""

    name = "devserver"

    def __init__(self, declaration: sc.Declaration, model: str, work: Path, *, timeout: float = 120.0,
                 extra_flags: Sequence[str] = ()) -> None:
        self.model, self.work, self.timeout, self.extra_flags = model, work, timeout, list(extra_flags)
        self.version = served_version(declaration, model)
        declared = declaration.model(model)
        self.config = work / "models.config"
        sc.write_model_server_config(sc.model_server_config([sc.model_config(
            model, declaration.base_path(declared, "host"), sc.VersionPolicy.specific([self.version]))]), self.config)

    @contextmanager
    def trial(self, index: int, batching: sc.BatchingSettings | None) -> Iterator[str]:
        params = self.work / f"batching-{index}.config"
        flags = [format_flag("port", _free_port()), format_flag("model_config_file", str(self.config)),
                 _NO_RETRIES, *_batching_flags(batching, params, str(params)), *self.extra_flags]
        log = self.work / f"server-{index}.log"
        try:
            server = start_process(flags, log=log, timeout=self.timeout)
        except StartupError as error:
            said = log.read_text(errors="replace") if log.is_file() else str(error)
            raise TuneError(f"the trial server did not start: {_last_line(said)} (log: {log})") from None
        try:
            wait_for_models(server.address, [self.model], timeout=self.timeout, on_progress=lambda _: None,
                            failure=lambda: _exited(server.poll(), log))
            yield server.address
        finally:
            server.stop()


_TELLING = re.compile(r"error|illegal|invalid|failed|refused|cannot|not found", re.IGNORECASE)


def _last_line(text: str) -> str:
    """The line of a server's output that says why it stopped: the last that names an error (a usage
    text follows a refused flag), else the last line."""
    lines = [line.strip() for line in text.splitlines() if line.strip() and "StartupError" not in line]
    telling = [line for line in lines if _TELLING.search(line)]
    return (telling or lines or [text])[-1]


def _exited(status: int | None, log: Path) -> TuneError | None:
    if status is None:
        return None
    tail = log.read_text(errors="replace") if log.is_file() else ""
    return TuneError(f"the trial server exited (status {status}): {_last_line(tail)} (log: {log})")


class DockerTrials:
    """Trials on the ``tensorflow/serving`` image (``docker run``), its gRPC port published on loopback."""

    name = "docker"

    def __init__(self, declaration: sc.Declaration, model: str, work: Path, image: str | None, *,
                 timeout: float = 300.0, extra_flags: Sequence[str] = ()) -> None:
        problem = docker_engine_problem()
        if problem is not None:
            raise TuneError(f"--engine docker: {problem}; use --engine devserver, or start Docker")
        if not image:
            raise TuneError("--engine docker: name the tensorflow/serving image to run with --image (no "
                            "docker-compose.yml beside tfsk.toml says which)")
        self.model, self.work, self.image, self.timeout = model, work, image, timeout
        self.extra_flags = list(extra_flags)
        self.version = served_version(declaration, model)
        self.model_dir = Path(declaration.base_path(declaration.model(model), "host"))
        sc.write_model_server_config(sc.model_server_config([sc.model_config(
            model, f"{_CONTAINER_MODELS}/{model}", sc.VersionPolicy.specific([self.version]))]),
            work / "models.config")

    @contextmanager
    def trial(self, index: int, batching: sc.BatchingSettings | None) -> Iterator[str]:
        name = f"tfsk-tune-{self.model}-{socket.gethostname()}-{index}"[:60]
        port = _free_port()
        params = f"batching-{index}.config"
        command = ["docker", "run", "-d", "--name", name, "--platform", "linux/amd64",
                   "-p", f"127.0.0.1:{port}:8500", "-v", f"{self.model_dir}:{_CONTAINER_MODELS}/{self.model}:ro",
                   "-v", f"{self.work}:{_CONTAINER_TUNE}:ro", "--entrypoint", "tensorflow_model_server", self.image,
                   "--port=8500", format_flag("model_config_file", f"{_CONTAINER_TUNE}/models.config"), _NO_RETRIES,
                   *_batching_flags(batching, self.work / params, f"{_CONTAINER_TUNE}/{params}"), *self.extra_flags]
        run = subprocess.run(command, capture_output=True, text=True, timeout=self.timeout)
        if run.returncode != 0:
            raise TuneError(f"`docker run {self.image}` failed (exit {run.returncode}): "
                            f"{_last_line(run.stderr or run.stdout)}")
        try:
            wait_for_models(f"127.0.0.1:{port}", [self.model], timeout=self.timeout, on_progress=lambda _: None,
                            failure=lambda: self._gone(name))
            yield f"127.0.0.1:{port}"
        finally:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=120)

    def _gone(self, name: str) -> TuneError | None:
        state = subprocess.run(["docker", "inspect", "--format", "{{.State.Running}}", name], capture_output=True,
                               text=True, timeout=60)
        if state.returncode == 0 and state.stdout.strip() == "true":
            return None
        logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True, timeout=60)
        return TuneError(f"the trial container {name} stopped: {_last_line(logs.stderr + logs.stdout)}")
