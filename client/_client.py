"""The client: Predict, metadata, status and config reloads against TF Serving or the devserver."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

import grpc

from tfsk._base.naming import LINEAGE_OUTPUT, LINEAGE_SIGNATURE

from ._channel import TLS, make_channel
from ._errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    ServingError,
    error_from_rpc,
)
from ._requests import (
    available_version,
    metadata_from,
    metadata_request,
    not_available,
    predict_request,
    prediction_from,
    reload_request,
    status_request,
    statuses_from,
    stubs,
)
from ._types import (
    ConsistencyReport,
    ModelMetadata,
    PartInfo,
    Prediction,
    VersionStatus,
)

__all__ = ["Client", "DEFAULT_TARGET", "parse_lineage"]

DEFAULT_TARGET = "localhost:8500"


def parse_lineage(result: Prediction) -> dict[str, Any]:
    value = result[LINEAGE_OUTPUT]
    return json.loads(bytes(value.item() if value.shape == () else value.ravel()[0]))


class Client:
    """A connection to one TF Serving (or devserver) deployment.

    ``target`` is ``host:port``, ``unix:/path``, ``dns:///host:port`` or a list of ``host:port``s
    (requests are spread round-robin). Calls have a deadline (``timeout`` seconds, per call
    overridable), are retried on UNAVAILABLE with backoff, and accept messages of any size.
    """

    def __init__(
        self,
        target: str | Sequence[str] = DEFAULT_TARGET,
        *,
        timeout: float | None = 30.0,
        retries: int = 3,
        tls: TLS | None = None,
        keepalive_seconds: float | None = 30.0,
        max_message_bytes: int = -1,
        channel_options: Sequence[tuple[str, object]] = (),
    ) -> None:
        self.target = target
        self.timeout = timeout
        self._channel = make_channel(target, tls=tls, retries=retries, keepalive_seconds=keepalive_seconds,
                                     max_message_bytes=max_message_bytes, options=channel_options)
        self._stubs = stubs(self._channel)

    # -- plumbing ---------------------------------------------------------------------------
    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _call(self, method: str, request: Any, timeout: float | None) -> Any:
        try:
            return self._stubs[method](request, timeout=self.timeout if timeout is None else timeout)
        except grpc.RpcError as error:
            raise error_from_rpc(error) from None

    # -- calls ------------------------------------------------------------------------------
    def predict(
        self,
        model: str,
        inputs: Mapping[str, Any],
        *,
        version: int | None = None,
        label: str | None = None,
        signature: str | None = None,
        output_filter: Sequence[str] | None = None,
        timeout: float | None = None,
    ) -> Prediction:
        """Run a signature (default ``serving_default``) on named inputs; return named numpy outputs.

        Outputs the server sent as ``tensor_content`` are read-only views of the response (no
        copy); ``.copy()`` one to change it.
        """
        request = predict_request(model, inputs, version, label, signature, output_filter)
        try:
            response = self._call("Predict", request, timeout)
        except (InvalidArgumentError, FailedPreconditionError, NotFoundError) as error:
            raise self._with_hint(error, model, version, label, signature) from None
        return prediction_from(response, model, signature)

    def _with_hint(self, error: ServingError, model: str, version: int | None, label: str | None,
                   signature: str | None) -> ServingError:
        """Add what the server knows (real input names, signatures, versions) to an error."""
        try:
            if isinstance(error, NotFoundError):
                served = [s.version for s in self.status(model) if s.state == "AVAILABLE"]
                hint = f"model '{model}' has AVAILABLE versions {served}" if served else None
            else:
                metadata = self.metadata(model, version=version, label=label)
                name = signature or "serving_default"
                if isinstance(error, FailedPreconditionError) or name not in metadata.signatures:
                    hint = f"model '{model}' has signatures {sorted(metadata.signatures)}"
                else:
                    wanted = metadata.signatures[name].inputs
                    hint = f"signature '{name}' takes " + ", ".join(f"{k} {v.describe()}" for k, v in wanted.items())
        except ServingError:
            hint = None
        return type(error)(error.details, hint=hint, code=error.code)

    def metadata(self, model: str, *, version: int | None = None, label: str | None = None,
                 timeout: float | None = None) -> ModelMetadata:
        """The model's signatures (TF's internal ``__saved_model_init_op`` left out)."""
        return metadata_from(self._call("GetModelMetadata", metadata_request(model, version, label), timeout), model)

    def status(self, model: str, *, version: int | None = None, timeout: float | None = None) -> list[VersionStatus]:
        """Every version the server has seen, newest first (or only ``version``)."""
        return statuses_from(self._call("GetModelStatus", status_request(model, version), timeout))

    def reload_config(self, config: Any, *, timeout: float | None = None) -> None:
        """Replace the server's model config (a ``ModelServerConfig`` or its text). Models left out unload."""
        self._call("HandleReloadConfigRequest", reload_request(config), timeout)

    def wait_until_available(self, model: str, version: int | None = None, timeout: float = 60.0,
                             poll_interval: float = 0.2) -> int:
        """Block until ``version`` (or any version) of ``model`` is AVAILABLE; return that version.

        A version that ends with an error raises at once; other failures are retried until ``timeout``.
        """
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                entries = self.status(model, version=version, timeout=min(5.0, max(deadline - time.monotonic(), 0.1)))
            except ServingError as error:  # not loaded yet, or the server not up yet: ask again
                last = error
            else:
                found = available_version(entries, model, version)
                if found is not None:
                    return found
            time.sleep(poll_interval)
        raise not_available(model, version, timeout, last)

    # -- composed models --------------------------------------------------------------------
    def lineage(self, model: str, *, version: int | None = None, label: str | None = None) -> dict[str, Any] | None:
        """What the exporter recorded about this version (``None`` for models not exported by tfsk)."""
        try:
            result = self.predict(model, {}, version=version, label=label, signature=LINEAGE_SIGNATURE)
        except (FailedPreconditionError, InvalidArgumentError):
            return None
        return parse_lineage(result)

    def parts(self, model: str, *, version: int | None = None, label: str | None = None) -> list[PartInfo]:
        from ._composed import list_parts

        return list_parts(self, model, version=version, label=label)

    def check_consistency(self, model: str, inputs: Mapping[str, Any] | None = None, *, version: int | None = None,
                          atol: float = 1e-5) -> ConsistencyReport:
        from ._composed import check_consistency

        return check_consistency(self, model, inputs, version=version, atol=atol)
