"""gRPC channels set up the way TF Serving users need them, not the way grpcio defaults them.

Unlimited message sizes (TF Serving accepts 2 GiB; grpcio stops at 4 MiB), retries of
UNAVAILABLE with exponential backoff through gRPC's own retry policy (safe: nothing reached the
server), keepalive, TLS, and client-side round-robin over several servers.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc

__all__ = ["TLS", "make_channel", "resolve_target"]

_SERVICES = [{"service": "tensorflow.serving.PredictionService"}, {"service": "tensorflow.serving.ModelService"}]


@dataclass(frozen=True)
class TLS:
    """TLS settings: the CA that signed the server's certificate, and optionally our own."""

    root_certificates: bytes | str | Path | None = None
    client_certificate: bytes | str | Path | None = None
    client_key: bytes | str | Path | None = None
    server_name: str | None = None  # when the certificate names a host other than the target

    def credentials(self) -> grpc.ChannelCredentials:
        def read(value: bytes | str | Path | None) -> bytes | None:
            if value is None or isinstance(value, bytes):
                return value
            text = str(value)
            return text.encode() if text.lstrip().startswith("-----BEGIN") else Path(text).read_bytes()

        return grpc.ssl_channel_credentials(read(self.root_certificates), read(self.client_key), read(self.client_certificate))


def resolve_target(targets: str | Sequence[str]) -> tuple[str, bool]:
    """A gRPC target string and whether to balance across its addresses.

    ``host:port``, ``unix:/path``, ``dns:///host:port`` (every address the name resolves to) or
    several ``host:port``s, which become one ``ipv4:``/``ipv6:`` list balanced round-robin.
    """
    if isinstance(targets, str):
        return targets, targets.startswith("dns:")
    targets = list(targets)
    if len(targets) == 1:
        return resolve_target(targets[0])
    addresses, family = [], None
    for target in targets:
        host, _, port = target.rpartition(":")
        host = host.strip("[]")
        for info in socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM):
            kind = "ipv6" if info[0] == socket.AF_INET6 else "ipv4"
            if family not in (None, kind):
                continue
            family = kind
            address = f"[{info[4][0]}]:{port}" if kind == "ipv6" else f"{info[4][0]}:{port}"
            if address not in addresses:
                addresses.append(address)
            break
    return f"{family}:{','.join(addresses)}", True


def make_channel(
    targets: str | Sequence[str],
    *,
    tls: TLS | None = None,
    retries: int = 3,
    initial_backoff: float = 0.1,
    max_backoff: float = 2.0,
    keepalive_seconds: float | None = 30.0,
    max_message_bytes: int = -1,
    options: Sequence[tuple[str, object]] = (),
    aio: bool = False,
) -> grpc.Channel:
    target, balance = resolve_target(targets)
    config: dict[str, object] = {}
    if retries > 0:
        config["methodConfig"] = [{
            "name": _SERVICES,
            "retryPolicy": {
                "maxAttempts": min(retries + 1, 5),  # gRPC caps attempts at 5
                "initialBackoff": f"{initial_backoff}s",
                "maxBackoff": f"{max_backoff}s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }]
    if balance:
        config["loadBalancingConfig"] = [{"round_robin": {}}]
    channel_options: list[tuple[str, object]] = [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.enable_retries", 1 if retries > 0 else 0),
        ("grpc.service_config", json.dumps(config)),
    ]
    if keepalive_seconds:
        channel_options += [
            ("grpc.keepalive_time_ms", int(keepalive_seconds * 1000)),
            ("grpc.keepalive_timeout_ms", 10_000),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_pings_without_data", 0),
        ]
    if tls is not None and tls.server_name:
        channel_options.append(("grpc.ssl_target_name_override", tls.server_name))
    channel_options += list(options)
    kind = grpc.aio if aio else grpc
    if tls is not None:
        return kind.secure_channel(target, tls.credentials(), options=channel_options)
    return kind.insecure_channel(target, options=channel_options)
