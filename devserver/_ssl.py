"""``--ssl_config_file``: TF Serving's ``SSLConfig`` (PEM contents inline, not paths) for gRPC TLS."""

from __future__ import annotations

from pathlib import Path

import grpc
from google.protobuf import text_format

from tfsk._base.messages import SSLConfig

from ._status import StatusError

__all__ = ["server_credentials"]


def server_credentials(path: str) -> grpc.ServerCredentials:
    """Credentials from an SSLConfig text file; ``client_verify`` requires client certificates signed by ``custom_ca``."""
    try:
        config = text_format.Parse(Path(path).read_text(), SSLConfig())
    except (OSError, text_format.ParseError) as error:
        # TF Serving crashes on an unreadable SSL config (a CHECK failure); we refuse to start instead.
        raise StatusError.invalid_argument(f"Invalid SSL config file '{path}': {error}") from None
    return grpc.ssl_server_credentials(
        [(config.server_key.encode(), config.server_cert.encode())],
        root_certificates=config.custom_ca.encode() or None,
        require_client_auth=config.client_verify,
    )
