"""REST load (TF Serving's ``POST /v1/models/NAME[/versions/V|/labels/L]:predict``): HTTP/1.1 keeps one
request in flight per connection, so each slot is a thread with its own kept-alive connection.

An error is named by its HTTP status (``HTTP 404``), or by what happened to the connection
(``UNAVAILABLE``: refused or dropped; ``DEADLINE_EXCEEDED``: no answer in time).
"""

from __future__ import annotations

import http.client
import json
import queue
import threading
import time
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ._load import Payloads, _Recorder

__all__ = ["RestSender", "error_text"]

_HEADERS = {"Content-Type": "application/json"}


def error_text(body: bytes) -> str:
    """What a REST error answer says, on one line: its ``error`` field (TF Serving's form), else the body."""
    text = body.decode("utf-8", "replace")
    try:
        found = json.loads(text)
        if isinstance(found, dict) and isinstance(found.get("error"), str):
            text = found["error"]
    except ValueError:
        pass
    return " ".join(text.split())[:500]


class _Connection:
    def __init__(self, target: str, timeout: float) -> None:
        host, _, port = target.rpartition(":")
        self.host, self.port, self.timeout = host.strip("[]"), int(port), timeout
        self.connection: http.client.HTTPConnection | None = None
        self.last_answer = b""  # the body of the last answer (what an error said)

    def post(self, path: str, body: bytes) -> str | None:
        """Send one request; None when it answered 200, else the error's name."""
        for attempt in (1, 2):  # a kept-alive connection the server closed meanwhile: reconnect once
            if self.connection is None:
                self.connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.connection.request("POST", path, body, _HEADERS)
                response = self.connection.getresponse()
                self.last_answer = response.read()
                return None if response.status == 200 else f"HTTP {response.status}"
            except TimeoutError:
                self.close()
                return "DEADLINE_EXCEEDED"
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt == 2:
                    return "UNAVAILABLE"
            except (OSError, http.client.HTTPException):
                self.close()
                return "UNAVAILABLE"
        return "UNAVAILABLE"

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


class RestSender:
    def __init__(self, payloads: Payloads) -> None:
        self.payloads = payloads
        self.turn = 0
        self.lock = threading.Lock()

    def _next(self) -> tuple[int, bytes]:
        with self.lock:
            turn = self.turn
            self.turn += 1
        bodies = self.payloads.bodies
        return turn % len(self.payloads.targets), bodies[turn % len(bodies)]

    def _connections(self) -> list[_Connection]:
        return [_Connection(target, self.payloads.timeout) for target in self.payloads.targets]

    def closed_loop(self, recorder: _Recorder, concurrency: int, begin: float, stop_at: float) -> None:
        def slot() -> None:
            connections = self._connections()
            delay = begin - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            while True:
                replica, body = self._next()
                start = time.perf_counter()
                error = connections[replica].post(self.payloads.path, body)
                end = time.perf_counter()
                recorder.record(start, end, replica, error)
                if end >= stop_at:
                    break
            for connection in connections:
                connection.close()

        threads = [threading.Thread(target=slot, daemon=True) for _ in range(concurrency)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def open_loop(self, recorder: _Recorder, times: np.ndarray, begin: float, measure_from: float, stop_at: float,
                  rate: float) -> tuple[int, int]:
        """Sends handed to a pool of connection threads; a send no thread is free for in time is missed."""
        from ._load import LATE_AFTER, _open_loop

        late: list[float] = []  # sends a thread picked up too late: the pool, not the server, fell behind
        due_sends: queue.SimpleQueue[float | None] = queue.SimpleQueue()
        workers = max(16, min(256, int(rate / 10)))

        def worker() -> None:
            connections = self._connections()
            while (due := due_sends.get()) is not None:
                if due >= measure_from and time.perf_counter() - due > LATE_AFTER:
                    late.append(due)
                replica, body = self._next()
                error = connections[replica].post(self.payloads.path, body)
                recorder.record(due, time.perf_counter(), replica, error)
                recorder.done()
            for connection in connections:
                connection.close()

        threads = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
        for thread in threads:
            thread.start()
        try:
            measured, missed = _open_loop(due_sends.put, recorder, times, begin, measure_from, stop_at,
                                          count_late=False)
        finally:
            for _ in threads:
                due_sends.put(None)
            for thread in threads:
                thread.join(self.payloads.timeout + 5.0)
        return measured, missed + len(late)
