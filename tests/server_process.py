"""Start ``tfsk serve`` as a real process on a free loopback port, the way TF Serving's own
integration tests start ``tensorflow_model_server``, and wait until it answers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServerProcess:
    """A running devserver; ``address`` is ``127.0.0.1:<port>``; ``log()`` is what it printed."""

    def __init__(self, *flags: str, port: int | None = None, wait: bool = True, timeout: float = 120) -> None:
        self.port = port or free_port()
        self.address = f"127.0.0.1:{self.port}"
        self._log = tempfile.NamedTemporaryFile(prefix="devserver-", suffix=".log", delete=False)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tfsk", "serve", f"--port={self.port}", *flags],
            stdout=self._log, stderr=subprocess.STDOUT, cwd=REPO,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        )
        self.channel = grpc.insecure_channel(self.address, options=[("grpc.max_receive_message_length", -1),
                                                                     ("grpc.max_send_message_length", -1)])
        if wait:
            self.wait_until_ready(timeout)

    def log(self) -> str:
        return Path(self._log.name).read_text(errors="replace")

    def wait_until_ready(self, timeout: float) -> None:
        """TF Serving's harness: Predict on a missing model until the answer mentions 'Servable'."""
        from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

        stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "intentionally_missing_model"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"devserver exited with {self.process.returncode}:\n{self.log()}")
            try:
                stub.Predict(request, timeout=1)
            except grpc.RpcError as error:
                if "Servable" in (error.details() or ""):
                    return
            time.sleep(0.2)
        raise TimeoutError(f"devserver not ready after {timeout}s:\n{self.log()}")

    def wait_for_exit(self, timeout: float = 120) -> int:
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        self.channel.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        os.unlink(self._log.name)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def wait_for(condition, timeout: float = 30, interval: float = 0.1):  # type: ignore[no-untyped-def]
    """Poll ``condition()`` until it returns a truthy value; return it (or fail after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)
