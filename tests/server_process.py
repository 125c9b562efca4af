"""A devserver process for the tests: :func:`tfsk.devserver.start_process` (started and waited for
the way TF Serving's own integration tests start ``tensorflow_model_server``) on a free loopback
port, plus what only tests need: a raw gRPC channel to it."""

from __future__ import annotations

import contextlib
import socket
import time
from pathlib import Path

import grpc

from tfsk.devserver import start_process

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive free loopback ports (a compose port range, ``FIRST-LAST``)."""
    for _ in range(100):
        first = free_port()
        with contextlib.ExitStack() as held:
            try:
                for port in range(first, first + count):
                    held.enter_context(socket.socket()).bind(("127.0.0.1", port))
            except OSError:
                continue
            return first
    raise RuntimeError(f"no {count} consecutive free ports on 127.0.0.1")


class ServerProcess:
    """A running devserver; ``address`` is ``127.0.0.1:<port>``; ``log()`` is what it printed;
    ``channel`` a gRPC channel to it without message size limits."""

    def __init__(self, *flags: str, port: int | None = None, wait: bool = True, timeout: float = 120) -> None:
        self.port = port or free_port()
        self.server = start_process([f"--port={self.port}", *flags], cwd=REPO, wait=False)
        self.address = self.server.address
        self.process = self.server.process
        self.channel = grpc.insecure_channel(self.address, options=[("grpc.max_receive_message_length", -1),
                                                                     ("grpc.max_send_message_length", -1)])
        if wait:
            self.wait_until_ready(timeout)

    def log(self) -> str:
        return self.server.log()

    def wait_until_ready(self, timeout: float) -> None:
        self.server.wait_until_ready(timeout)

    def wait_for_exit(self, timeout: float = 120) -> int:
        return self.server.wait(timeout)

    def stop(self) -> None:
        self.channel.close()
        self.server.stop(timeout=20)

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
