"""Real HTTP against a devserver's REST port (http.client, one connection per call)."""

from __future__ import annotations

import gzip
import http.client
import json
from dataclasses import dataclass
from typing import Any


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error(self) -> str:
        return self.json()["error"]


def request(port: int, method: str, path: str, body: bytes | str | dict | None = None, *,
            headers: dict[str, str] | None = None, compress: bool = False, timeout: float = 60) -> Reply:
    if isinstance(body, dict):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    headers = dict(headers or {})
    if compress and body is not None:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return Reply(response.status, response.read(), {k.lower(): v for k, v in response.getheaders()})
    finally:
        connection.close()


def post(port: int, path: str, body: bytes | str | dict, **options: Any) -> Reply:
    return request(port, "POST", path, body, **options)


def get(port: int, path: str) -> Reply:
    return request(port, "GET", path)
