"""What to try, added to the errors users hit most (as ``ServingError.hint``).

- the server is not reachable: which address was tried, and how to give another;
- an unknown model: the models the server's config (or ``tfsk.toml``) names, else how to list them;
- an unknown version or label: the AVAILABLE versions and the labels the config gives;
- a wrong signature or wrong inputs: the signatures, and what the signature takes.

Finding a hint may cost a GetModelStatus or GetModelMetadata call, on the error path only.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from tfsk._base.naming import DEFAULT_SIGNATURE

from ._channel import TARGET_ENV
from ._errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    ServingError,
    UnavailableError,
)
from ._plans import Plan, ask_metadata, ask_status
from ._types import describe_array

if TYPE_CHECKING:
    from ._base import BaseClient

__all__ = ["NO_SERVABLE", "UNKNOWN_LABEL", "connection_hint", "model_hint", "signature_hint", "unknown_model_hint"]

_UNKNOWN_MODEL = "Could not find any versions of model"
#: TF Serving's answers for a label it does not know, and for a version (a label's too) not loaded
UNKNOWN_LABEL = "Unrecognized servable version label"
NO_SERVABLE = "Servable not found for request"
_NO_VERSION = "Could not find version"
_NOT_CONNECTED = ("failed to connect", "connection refused", "errors resolving", "dns resolution", "socket closed",
                  "connection reset", "no route to host", "name resolution")
_TLS = ("ssl", "tls", "handshake", "certificate")


def _where(target: str | Sequence[str] | None) -> str:
    if target is None:
        return "the channel given"
    return target if isinstance(target, str) else ",".join(target)


def connection_hint(error: ServingError, target: str | Sequence[str] | None) -> str | None:
    """For UNAVAILABLE that means nobody answered (or TLS on one side only), not a busy server."""
    if not isinstance(error, UnavailableError):
        return None
    text = error.details.lower()
    if any(word in text for word in _TLS):
        return (f"the server at {_where(target)} and this client disagree on TLS: give the CA that signed its "
                f"certificate (tls=TLS(...); tfsk: --tls-ca), or leave TLS off for a plaintext server")
    if any(word in text for word in _NOT_CONNECTED):
        return (f"is a server running at {_where(target)}? give its address (target=...; tfsk: --target) "
                f"or set {TARGET_ENV}")
    return None


def unknown_model_hint(client: BaseClient, model: str) -> str:
    known = client.known_models()
    if known is None or not known.names:
        return (f"the server has no model '{model}'. TF Serving cannot list its models: they are the config "
                f"entries of the models.config it reads (--model_config_file); pass models_config=<that file> "
                f"or work in the folder of your tfsk.toml to have them listed here")
    close = difflib.get_close_matches(model, known.names, n=1)
    guess = f"; did you mean '{close[0]}'?" if close else ""
    return f"the server has no model '{model}'{guess} ({known.source} names {', '.join(known.names)})"


def model_hint(client: BaseClient, error: ServingError, model: str, version: int | None, label: str | None,
               timeout: float | None) -> Plan[str | None]:
    """For NOT_FOUND and an unknown label: is the model unknown, or which versions and labels does it have?"""
    details = error.details
    if isinstance(error, InvalidArgumentError) and UNKNOWN_LABEL not in details:
        return None
    if not isinstance(error, (NotFoundError, InvalidArgumentError)):
        return None
    if _UNKNOWN_MODEL in details:
        return unknown_model_hint(client, model)
    if isinstance(error, NotFoundError) and not (NO_SERVABLE in details or _NO_VERSION in details):
        return None
    try:
        entries = yield from ask_status(model, None, timeout)
    except NotFoundError:
        return unknown_model_hint(client, model)
    except ServingError:
        return None
    available = [e.version for e in entries if e.state == "AVAILABLE"]
    moving = ", ".join(f"{e.version} {e.state}" for e in entries if e.state not in ("AVAILABLE", "END"))
    text = f"model '{model}' has AVAILABLE versions {available}" + (f" (and {moving})" if moving else "")
    if label is not None:
        known = client.known_models()
        labels = known.labels.get(model) if known is not None else None
        if labels:
            named = ", ".join(f"{name} -> {number}" for name, number in sorted(labels.items()))
            text += f"; {known.source} gives it the labels {named}"  # type: ignore[union-attr]
        else:
            text += "; its labels are the version_labels of the models.config the server reads"
    return text


def _sent(inputs: Mapping[str, Any]) -> str:
    described = []
    for name, value in inputs.items():
        try:
            described.append(f"{name} {describe_array(np.asarray(value))}")
        except (TypeError, ValueError):
            described.append(f"{name} ({type(value).__name__})")
    return ", ".join(described) or "no inputs"


def signature_hint(client: BaseClient, error: ServingError, model: str, version: int | None, label: str | None,
                   signature: str | None, inputs: Mapping[str, Any], timeout: float | None) -> Plan[str | None]:
    """For a Predict the model refused: its signatures, or what the signature takes and what was sent."""
    if not isinstance(error, (FailedPreconditionError, InvalidArgumentError)):
        return None
    try:
        metadata = yield from ask_metadata(model, version, label, timeout)
    except ServingError:
        return None
    name = signature or DEFAULT_SIGNATURE
    if isinstance(error, FailedPreconditionError) or name not in metadata.signatures:
        return f"model '{model}' has signatures {sorted(metadata.signatures)}"
    wanted = metadata.signatures[name].inputs
    takes = ", ".join(f"{k} {v.describe()}" for k, v in wanted.items()) or "no inputs"
    return f"signature '{name}' takes {takes}; sent {_sent(inputs)}"
