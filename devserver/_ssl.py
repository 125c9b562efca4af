"""``--ssl_config_file``: TF Serving's ``SSLConfig`` (PEM contents inline, not paths) for gRPC TLS."""

from __future__ import annotations

from pathlib import Path

import grpc
from google.protobuf import text_format

from tfsk.protoschema import FileSpec, MessageSpec, build_pool, message_class

from ._status import ServingError

__all__ = ["SSLConfig", "server_credentials"]

_POOL = build_pool([FileSpec(
    name="tfsk/devserver/ssl_config.proto",
    package="tensorflow.serving",
    messages={"SSLConfig": MessageSpec([
        ("server_key", 1, "string"), ("server_cert", 2, "string"), ("custom_ca", 3, "string"), ("client_verify", 4, "bool"),
    ])},
)])
SSLConfig = message_class(_POOL, "tensorflow.serving.SSLConfig")


def server_credentials(path: str) -> grpc.ServerCredentials:
    """Credentials from an SSLConfig text file; ``client_verify`` requires client certificates signed by ``custom_ca``."""
    try:
        config = text_format.Parse(Path(path).read_text(), SSLConfig())
    except (OSError, text_format.ParseError) as error:
        # TF Serving crashes on an unreadable SSL config (a CHECK failure); we refuse to start instead.
        raise ServingError.invalid_argument(f"Invalid SSL config file '{path}': {error}") from None
    return grpc.ssl_server_credentials(
        [(config.server_key.encode(), config.server_cert.encode())],
        root_certificates=config.custom_ca.encode() or None,
        require_client_auth=config.client_verify,
    )
