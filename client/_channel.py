"""gRPC channels set up the way TF Serving users need them, not the way grpcio defaults them.

Unlimited message sizes (TF Serving accepts 2 GiB; grpcio stops at 4 MiB), retries of
UNAVAILABLE with exponential backoff through gRPC's own retry policy for the idempotent calls
(Predict and the rest of PredictionService, GetModelStatus), keepalive, TLS, and client-side
round-robin over several servers: a retry picks again, so a replica that died or restarts
mid-load costs the caller nothing while another one answers within the deadline.
"""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from ._errors import TargetError

__all__ = ["DEFAULT_TARGET", "TARGET_ENV", "TLS", "check_target", "default_target", "make_channel", "replica_addresses",
           "resolve_target"]

DEFAULT_TARGET = "localhost:8500"
#: the environment variable naming the server when no target is given (as the CLI's --target does)
TARGET_ENV = "TFSK_TARGET"
# gRPC's own name-resolver schemes; anything else must be host:port
_SCHEMES = ("dns:", "unix:", "unix-abstract:", "ipv4:", "ipv6:", "vsock:", "xds:", "google-c2p:")
_HOST_PORT = re.compile(r"(?P<host>\[[0-9A-Fa-f:.%\w]+\]|[^\s:\[\]/]+):(?P<port>\d{1,5})")

# The idempotent calls, retried on UNAVAILABLE (on another replica when balanced: gRPC picks again). Not
# HandleReloadConfigRequest: it changes the server, so it is sent once (gRPC still retries it transparently
# when it never left the client).
_RETRIED = [{"service": "tensorflow.serving.PredictionService"},
            {"service": "tensorflow.serving.ModelService", "method": "GetModelStatus"}]


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


def default_target() -> str | list[str]:
    """``$TFSK_TARGET`` (comma-separated for several servers), else ``localhost:8500``."""
    value = os.environ.get(TARGET_ENV, "").strip()
    if not value:
        return DEFAULT_TARGET
    return [t.strip() for t in value.split(",")] if "," in value else value


def check_target(target: str) -> str:
    """``target`` if gRPC can use it; :class:`TargetError` saying how to write it otherwise.

    gRPC itself would take ``localhost`` as port 443 and a typo'd port as a name to resolve, and
    then only say UNAVAILABLE after its retries.
    """
    if not isinstance(target, str) or not target.strip():
        raise TargetError(f"empty server address {target!r}: give host:port, e.g. {DEFAULT_TARGET}")
    if target.startswith(_SCHEMES):
        return target
    match = _HOST_PORT.fullmatch(target)
    if match is None:
        if target.count(":") > 1 and not target.startswith("["):
            raise TargetError(f"server address {target!r}: write an IPv6 address in brackets, e.g. [::1]:8500")
        raise TargetError(f"server address {target!r} is not host:port (e.g. {DEFAULT_TARGET}), unix:/path or "
                          f"dns:///host:port")
    if not 0 < int(match["port"]) < 65536:
        raise TargetError(f"server address {target!r}: port {match['port']} is not between 1 and 65535")
    return target


def _lookup(target: str, name: str, usage: str) -> tuple[int, list[Any]]:
    """The port of ``name`` (host:port, part of ``target``) and what its host resolves to now."""
    match = _HOST_PORT.fullmatch(name)
    if match is None:
        raise TargetError(f"server address {target!r}: {usage}")
    host, port = match["host"].strip("[]"), int(match["port"])
    try:
        return port, socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as error:
        raise TargetError(f"server address {target!r}: cannot resolve {host!r} ({error})") from None


def resolve_target(targets: str | Sequence[str]) -> tuple[str, bool]:
    """A gRPC target string and whether to balance across its addresses.

    ``host:port``, ``unix:/path``, ``dns:///host:port`` (every address the name resolves to) or
    several ``host:port``s, which become one ``ipv4:``/``ipv6:`` list balanced round-robin.
    """
    if isinstance(targets, str):
        return check_target(targets), targets.startswith("dns:")
    targets = list(targets)
    if not targets:
        raise TargetError(f"no server address given: give host:port, e.g. {DEFAULT_TARGET}")
    if len(targets) == 1:
        return resolve_target(targets[0])
    addresses, family = [], None
    for target in targets:
        port, found = _lookup(target, check_target(target), "balancing across several servers takes host:port "
                                                            "addresses")
        for info in found:
            kind = "ipv6" if info[0] == socket.AF_INET6 else "ipv4"
            if family not in (None, kind):
                continue
            family = kind
            address = f"[{info[4][0]}]:{port}" if kind == "ipv6" else f"{info[4][0]}:{port}"
            if address not in addresses:
                addresses.append(address)
            break
    return f"{family}:{','.join(addresses)}", True


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def replica_addresses(targets: str | Sequence[str]) -> tuple[str, ...]:
    """The servers a target spreads calls across, each as an address a channel of its own can use.

    A list gives its addresses; ``dns:///host:port`` what the name resolves to now (in Kubernetes,
    a headless Service's ready pods); ``ipv4:``/``ipv6:`` lists their addresses; anything else is
    one server.
    """
    if not isinstance(targets, str):
        found = [a for t in targets for a in replica_addresses(t)]
        return tuple(dict.fromkeys(found))
    target = check_target(targets)
    if target.startswith(("ipv4:", "ipv6:")):
        return tuple(a.strip() for a in target.split(":", 1)[1].split(",") if a.strip())
    if not target.startswith("dns:"):
        return (target,)
    name = target[len("dns:"):]
    if name.startswith("//"):
        name = name[2:].partition("/")[2]  # dns://authority/host:port
    port, found = _lookup(target, name, "write dns:///host:port")
    return tuple(dict.fromkeys(_address(str(info[4][0]), port) for info in found))


#: The longest a channel waits before trying a lost server again (gRPC's default is 120 s).
RECONNECT_BACKOFF_MS = 3000


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
    interceptors: Sequence[object] = (),
    aio: bool = False,
) -> grpc.Channel:
    target, balance = resolve_target(targets)
    config: dict[str, object] = {}
    if retries > 0:
        config["methodConfig"] = [{
            "name": _RETRIED,
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
        # A replica that restarts rejoins the rotation within seconds: gRPC's default reconnect
        # backoff grows to 120 s, leaving a restarted server idle (and its peers loaded) meanwhile.
        ("grpc.initial_reconnect_backoff_ms", 500),
        ("grpc.max_reconnect_backoff_ms", RECONNECT_BACKOFF_MS),
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
    if aio:  # grpc.aio takes interceptors when the channel is made; grpc wraps a made channel
        if tls is not None:
            return grpc.aio.secure_channel(target, tls.credentials(), options=channel_options, interceptors=interceptors)
        return grpc.aio.insecure_channel(target, options=channel_options, interceptors=interceptors)
    if tls is not None:
        channel = grpc.secure_channel(target, tls.credentials(), options=channel_options)
    else:
        channel = grpc.insecure_channel(target, options=channel_options)
    return grpc.intercept_channel(channel, *interceptors) if interceptors else channel
