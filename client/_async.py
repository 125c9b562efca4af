"""The asyncio client: the blocking client's calls on a ``grpc.aio`` channel."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any

import grpc

from tfsk._base.naming import LINEAGE_SIGNATURE

from ._channel import TLS, make_channel
from ._client import DEFAULT_TARGET, parse_lineage
from ._errors import (
    FailedPreconditionError,
    InvalidArgumentError,
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
from ._types import ModelMetadata, Prediction, VersionStatus

__all__ = ["AsyncClient"]


class AsyncClient:
    """Like :class:`client.Client`, with ``async`` calls (``async with AsyncClient(...) as serving:``).

    Errors carry no hint here: finding one would cost extra round trips inside the caller's event loop.
    """

    def __init__(self, target: str | Sequence[str] = DEFAULT_TARGET, *, timeout: float | None = 30.0, retries: int = 3,
                 tls: TLS | None = None, keepalive_seconds: float | None = 30.0, max_message_bytes: int = -1,
                 channel_options: Sequence[tuple[str, object]] = ()) -> None:
        self.target = target
        self.timeout = timeout
        self._channel = make_channel(target, tls=tls, retries=retries, keepalive_seconds=keepalive_seconds,
                                     max_message_bytes=max_message_bytes, options=channel_options, aio=True)
        self._stubs = stubs(self._channel)

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def _call(self, method: str, request: Any, timeout: float | None) -> Any:
        try:
            return await self._stubs[method](request, timeout=self.timeout if timeout is None else timeout)
        except grpc.RpcError as error:
            raise error_from_rpc(error) from None

    async def predict(self, model: str, inputs: Mapping[str, Any], *, version: int | None = None,
                      label: str | None = None, signature: str | None = None,
                      output_filter: Sequence[str] | None = None, timeout: float | None = None) -> Prediction:
        request = predict_request(model, inputs, version, label, signature, output_filter)
        return prediction_from(await self._call("Predict", request, timeout), model, signature)

    async def metadata(self, model: str, *, version: int | None = None, label: str | None = None,
                       timeout: float | None = None) -> ModelMetadata:
        return metadata_from(await self._call("GetModelMetadata", metadata_request(model, version, label), timeout), model)

    async def status(self, model: str, *, version: int | None = None, timeout: float | None = None) -> list[VersionStatus]:
        return statuses_from(await self._call("GetModelStatus", status_request(model, version), timeout))

    async def reload_config(self, config: Any, *, timeout: float | None = None) -> None:
        await self._call("HandleReloadConfigRequest", reload_request(config), timeout)

    async def lineage(self, model: str, *, version: int | None = None, label: str | None = None) -> dict[str, Any] | None:
        try:
            return parse_lineage(await self.predict(model, {}, version=version, label=label, signature=LINEAGE_SIGNATURE))
        except (FailedPreconditionError, InvalidArgumentError):
            return None

    async def wait_until_available(self, model: str, version: int | None = None, timeout: float = 60.0,
                                   poll_interval: float = 0.2) -> int:
        """As :meth:`client.Client.wait_until_available`, without blocking the event loop."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                entries = await self.status(model, version=version, timeout=min(5.0, max(deadline - time.monotonic(), 0.1)))
            except ServingError as error:  # not loaded yet, or the server not up yet: ask again
                last = error
            else:
                found = available_version(entries, model, version)
                if found is not None:
                    return found
            await asyncio.sleep(poll_interval)
        raise not_available(model, version, timeout, last)
