"""Whether a server could listen on a port: checked before anything slow starts.

One probe for the devserver (before loading models), the demo and the devserver stack (before
starting a server), so they agree on what "taken" means.
"""

from __future__ import annotations

import socket

__all__ = ["why_port_is_taken"]


def why_port_is_taken(host: str, port: int) -> str | None:
    """Why a server could not listen on ``host:port`` (the OS's reason), or None when it could.

    The probe binds the way gRPC does (SO_REUSEADDR, no SO_REUSEPORT), so a socket left in TIME_WAIT
    by an earlier server is no obstacle but a listening one is. A host that does not resolve raises
    :class:`socket.gaierror`.
    """
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                         flags=socket.AI_PASSIVE)[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            return error.strerror or str(error)
    return None
