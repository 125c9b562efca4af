"""The devserver as a process of its own: start it, wait until it answers, stop it.

The one way tfsk starts a devserver process (the demo, ``tfsk stack up`` on the devserver engine,
the tests and the benchmarks): ``python -m tfsk.devserver FLAGS`` with its output in a log file,
never on a pipe of ours (a full pipe would stall the server). Readiness is asked the way TF
Serving's own integration tests ask ``tensorflow_model_server``: a Predict for a model that does
not exist, until the answer names the missing servable — the server then listens and has loaded
its start-up models. TensorFlow-free: the caller's process never loads it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

import grpc

from tfsk._base.messages import MESSAGES

from ._errors import StartupError
from ._flags import FlagError, ServerOptions, parse_flags

__all__ = ["DevserverProcess", "start_process"]

_PREDICT = "/tensorflow.serving.PredictionService/Predict"
_MISSING_MODEL = "intentionally_missing_model"  # what TF Serving's harness asks for
_LOG_TAIL_LINES = 15


class DevserverProcess:
    """A devserver started by :func:`start_process`; as a context manager, stopped on exit.

    ``address`` is ``host:port`` of its gRPC port (loopback when it listens on every address),
    ``port`` that port, ``log_path`` the file its output goes to, ``process`` the child itself.
    """

    def __init__(self, process: subprocess.Popen[bytes], port: int, host: str, log_path: Path,
                 owns_log: bool) -> None:
        self.process = process
        self.port = port
        self.address = f"{host}:{port}"
        self.log_path = log_path
        self._owns_log = owns_log

    @property
    def pid(self) -> int:
        return self.process.pid

    def poll(self) -> int | None:
        """The exit status, or ``None`` while it runs."""
        return self.process.poll()

    @property
    def returncode(self) -> int | None:
        """The exit status as last seen by :meth:`poll` or :meth:`wait` (``None``: running then)."""
        return self.process.returncode

    def log(self) -> str:
        """Everything it printed so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """Its last ``lines`` log lines."""
        return "\n".join(self.log().splitlines()[-lines:])

    def wait_until_ready(self, timeout: float = 120) -> DevserverProcess:
        """Wait until it answers gRPC (TF Serving's harness: Predict on a missing model until the
        answer mentions 'Servable'); :class:`StartupError` if it exits first or is not ready in time."""
        request = MESSAGES["PredictRequest"]()
        request.model_spec.name = _MISSING_MODEL
        payload = request.SerializeToString()
        deadline = time.monotonic() + timeout
        with grpc.insecure_channel(self.address) as channel:
            predict = channel.unary_unary(_PREDICT)
            while True:
                status = self.process.poll()
                if status is not None:
                    raise StartupError(f"the devserver exited (status {status}) before it answered at {self.address}; "
                                       f"its last log lines ({self.log_path}):\n{self.tail()}")
                try:
                    predict(payload, timeout=1)
                except grpc.RpcError as error:
                    details = error.details() if isinstance(error, grpc.Call) else None
                    if "Servable" in (details or ""):
                        return self
                if time.monotonic() > deadline:
                    raise StartupError(f"the devserver did not answer at {self.address} within {timeout:g}s; its "
                                       f"last log lines ({self.log_path}):\n{self.tail()}")
                time.sleep(0.2)

    def wait(self, timeout: float | None = None) -> int:
        """Wait until it exits; its exit status."""
        return self.process.wait(timeout=timeout)

    def stop(self, timeout: float = 30) -> None:
        """Terminate it (SIGTERM, then SIGKILL after ``timeout`` seconds); a log file of our own is removed."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._owns_log:
            self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> DevserverProcess:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()


def _listening(flags: Sequence[str]) -> tuple[str, int] | None:
    """The host to reach it on and its gRPC port, as the server will read its flags (``None``: it
    refuses them and exits)."""
    try:
        options = parse_flags(flags)
    except FlagError:
        return None
    host = options.bind_address
    return ("127.0.0.1" if host in ("", "0.0.0.0", "::", "[::]") else host), options.port


def start_process(flags: Sequence[str] = (), *, log: str | os.PathLike[str] | None = None,
                  cwd: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None,
                  detach: bool = False, wait: bool = True, timeout: float = 120) -> DevserverProcess:
    """Start ``python -m tfsk.devserver FLAGS`` (``tensorflow_model_server``'s flags) and, with
    ``wait``, return once it answers gRPC.

    Its output goes to ``log`` (default: a temporary file, removed by :meth:`~DevserverProcess.stop`).
    ``env`` is added to this process's environment (TensorFlow's C++ logs default to warnings and
    up); ``cwd`` is where it runs; ``detach`` starts it in a session of its own, so it outlives
    this process and the terminal's Ctrl-C. The gRPC port is the ``--port`` flag's (TF Serving's
    default, 8500, without one). Raises :class:`StartupError` when it exits before it answers, or
    does not answer within ``timeout`` seconds (it is stopped then).
    """
    flags = list(flags)
    listening = _listening(flags)
    # Flags it refuses: it says so and exits. Its default port is then never asked, since another
    # server listening there would answer as if this one were ready.
    host, port = listening or ("127.0.0.1", ServerOptions().port)
    if log is None:
        handle, name = tempfile.mkstemp(prefix="devserver-", suffix=".log")
        os.close(handle)
        log_path, owns_log = Path(name), True
    else:
        log_path, owns_log = Path(log), False
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"), **(env or {})}
    with open(log_path, "wb") as output:
        process = subprocess.Popen([sys.executable, "-m", "tfsk.devserver", *flags], stdin=subprocess.DEVNULL,
                                   stdout=output, stderr=subprocess.STDOUT, cwd=cwd, env=environment,
                                   start_new_session=detach)
    server = DevserverProcess(process, port, host, log_path, owns_log)
    if wait:
        try:
            if listening is None:
                status = server.wait(timeout)
                raise StartupError(f"the devserver refused its flags and exited (status {status}); its log "
                                   f"({log_path}):\n{server.tail()}")
            server.wait_until_ready(timeout)
        except BaseException:
            server.stop()
            raise
    return server
