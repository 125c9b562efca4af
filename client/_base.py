"""What ``Client`` and ``AsyncClient`` share: construction, settings, the signature cache, hints,
and the way each exposes a plan (``_plans``) as a method."""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Concatenate,
    Generic,
    ParamSpec,
    TypeVar,
    overload,
)

import grpc

from . import _calls, _composed
from ._capture import Capture
from ._catalog import KnownModels, read_known_models
from ._channel import TLS, default_target, make_channel, replica_addresses
from ._errors import ClientError, ServingError, error_from_rpc
from ._hints import connection_hint
from ._inputs import SignatureCache
from ._plans import SLEEP, Plan
from ._requests import stubs
from ._traffic import Shadow, ShadowStats, SideStats, Traffic

if TYPE_CHECKING:
    from ._async import AsyncClient

__all__ = ["BaseClient", "PlanMethod"]

P = ParamSpec("P")
T = TypeVar("T")


def _as_method(method: Callable[..., Any], plan: Callable[..., Any]) -> None:
    """Show ``plan``'s signature on ``method`` as a method's: ``self``, and the value the plan returns."""
    signature = inspect.signature(plan)
    first, *rest = signature.parameters.values()
    returns = str(signature.return_annotation)
    if returns.startswith("Plan[") and returns.endswith("]"):
        returns = returns[len("Plan["):-1]
    method.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[first.replace(name="self"), *rest], return_annotation=returns)


def _blocking(plan: Callable[Concatenate[Any, P], Plan[T]]) -> Callable[Concatenate[Any, P], T]:
    def method(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._drive(plan(self, *args, **kwargs))  # type: ignore[no-any-return]

    functools.update_wrapper(method, plan)  # as @functools.wraps, keeping method's own type
    _as_method(method, plan)
    return method


def _awaiting(plan: Callable[Concatenate[Any, P], Plan[T]]) -> Callable[Concatenate[Any, P], Coroutine[Any, Any, T]]:
    async def method(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._drive(plan(self, *args, **kwargs))  # type: ignore[no-any-return]

    functools.update_wrapper(method, plan)
    _as_method(method, plan)
    return method


class PlanMethod(Generic[P, T]):
    """A plan as a method: a blocking call on ``Client``, a coroutine on ``AsyncClient``.

    Declared once on :class:`BaseClient`; each class's ``_drive`` runs the plan its own way. The
    overloads tell type checkers which one they get.
    """

    def __init__(self, plan: Callable[Concatenate[Any, P], Plan[T]]) -> None:
        self._blocking = _blocking(plan)
        self._awaiting = _awaiting(plan)
        self.__doc__ = plan.__doc__

    @overload
    def __get__(self, client: AsyncClient, owner: type | None = None) -> Callable[P, Coroutine[Any, Any, T]]: ...

    @overload
    def __get__(self, client: BaseClient, owner: type | None = None) -> Callable[P, T]: ...

    @overload
    def __get__(self, client: None, owner: type) -> Callable[..., Any]: ...

    def __get__(self, client: BaseClient | None, owner: type | None = None) -> Callable[..., Any]:
        kind = type(client) if owner is None else owner
        method = self._awaiting if kind._aio else self._blocking  # type: ignore[attr-defined]
        return method if client is None else method.__get__(client, owner)


class BaseClient:
    """A connection to one TF Serving (or devserver) deployment.

    ``target`` is ``host:port``, ``unix:/path``, ``dns:///host:port`` or a list of ``host:port``s
    (requests are spread round-robin); by default ``$TFSK_TARGET``, else ``localhost:8500``.
    Calls have a deadline (``timeout`` seconds, per call overridable), are retried on UNAVAILABLE
    with backoff, and accept messages of any size.

    ``channel`` replaces the channel the client would make (a transport seam: your own options,
    credentials, interceptors); the client then neither configures nor closes it, and ``target``
    only names it in messages. ``interceptors`` are added to the channel the client makes.
    ``route`` splits Predict calls between labels or versions by share (``{"stable": 0.95,
    "canary": 0.05}``, sticky per ``key=``); ``shadow`` copies a sample of them to another label
    in the background (``{"label": "canary", "sample": 0.1}`` or a :class:`Shadow`); ``capture``
    writes a sample down in TF Serving's PredictionLog format (a :class:`Capture`); ``seed`` makes
    the random choices repeatable. See :meth:`route_stats` and :meth:`shadow_stats`.
    ``check_inputs`` fits Predict inputs to the signature before sending (see ``predict``).
    ``models_config`` is the models.config the server reads (or a ``tfsk.toml``), used only to
    name the known models and labels in hints; by default ``./tfsk.toml`` when there is one.
    """

    _aio: ClassVar[bool] = False
    _sleep: Callable[..., Any]  # (seconds, timeout) -> None, blocking or awaitable: each subclass's own

    def __init__(
        self,
        target: str | Sequence[str] | None = None,
        *,
        timeout: float | None = 30.0,
        retries: int = 3,
        tls: TLS | None = None,
        keepalive_seconds: float | None = 30.0,
        max_message_bytes: int = -1,
        channel_options: Sequence[tuple[str, object]] = (),
        interceptors: Sequence[object] = (),
        channel: Any = None,
        check_inputs: bool = True,
        models_config: str | os.PathLike[str] | None = None,
        route: Mapping[str | int, float] | str | None = None,
        shadow: Shadow | Mapping[str, Any] | None = None,
        capture: Capture | None = None,
        seed: int | None = None,
    ) -> None:
        # what a replica's own client is made with (see replica())
        self._settings: dict[str, Any] = {"timeout": timeout, "retries": retries, "tls": tls, "keepalive_seconds": keepalive_seconds,
                          "max_message_bytes": max_message_bytes, "channel_options": channel_options,
                          "interceptors": interceptors, "check_inputs": check_inputs, "models_config": models_config,
                          "route": route, "shadow": shadow, "capture": capture, "seed": seed}
        self._traffic = Traffic(route, shadow, capture, seed)
        self._replicas: dict[str, BaseClient] = {}
        if channel is None:
            self.target: str | Sequence[str] | None = default_target() if target is None else target
            self._channel = make_channel(self.target, tls=tls, retries=retries, keepalive_seconds=keepalive_seconds,
                                         max_message_bytes=max_message_bytes, options=channel_options,
                                         interceptors=interceptors, aio=self._aio)
        else:
            if tls is not None or channel_options or interceptors:
                raise ClientError("tls, channel_options and interceptors configure the channel the client makes: "
                                  "set them on the channel you pass instead")
            kind, name = (grpc.aio.Channel, "grpc.aio.Channel") if self._aio else (grpc.Channel, "grpc.Channel")
            if not isinstance(channel, kind):
                given = type(channel)
                raise ClientError(f"{type(self).__name__} needs a {name}, got {given.__module__}.{given.__qualname__}")
            self.target = target
            self._channel = channel
        self._owns_channel = channel is None
        self.timeout = timeout
        self.check_inputs = check_inputs
        self.models_config = models_config
        self.signature_cache = SignatureCache()  # what predict checks inputs against
        self._stubs: dict[str, Callable[..., Any]] = {**stubs(self._channel), SLEEP: self._sleep}

    # The calls: written once as plans, run blocking by Client and awaited by AsyncClient.
    predict = PlanMethod(_calls.predict)
    metadata = PlanMethod(_calls.metadata)
    status = PlanMethod(_calls.status)
    reload_config = PlanMethod(_calls.reload_config)
    wait_until_available = PlanMethod(_calls.wait_until_available)
    wait_for_replicas = PlanMethod(_calls.wait_for_replicas)
    lineage = PlanMethod(_calls.lineage)
    parts = PlanMethod(_composed.parts)
    check_consistency = PlanMethod(_composed.check_consistency)

    def route_stats(self) -> dict[str, SideStats]:
        """What each side answered so far: calls, errors by status code, fallbacks, latency percentiles.

        Sides are the route's (a label, or a version's number), else the label or version a call
        asked for, else ``default``.
        """
        return self._traffic.side_stats()

    def shadow_stats(self) -> ShadowStats:
        """What the shadow copies did: sampled, dropped (queue full), answered, errors, latency percentiles."""
        return self._traffic.shadow_stats()

    def _submit_shadow(self, plan: Plan[None]) -> bool:
        """Run ``plan`` (a shadow copy) in the background; False when the queue is full (dropped)."""
        raise NotImplementedError

    def replicas(self) -> tuple[str, ...]:
        """The servers calls are spread across: a list target's addresses, what a ``dns:///`` name resolves
        to now, else the one target. A given ``channel`` counts as one server."""
        if not self._owns_channel or self.target is None:
            return (str(self.target),)
        return replica_addresses(self.target)

    def replica(self, address: str) -> BaseClient:
        """A client of the same kind and settings that asks only ``address`` (one of :meth:`replicas`).

        Made once and closed with this client. Balanced calls already go to another replica when
        one is down (gRPC's round-robin with retries on UNAVAILABLE); this is for asking each one.
        """
        if address not in self._replicas:
            if not self._owns_channel:
                raise ClientError("replica() needs a client that made its own channel (one not given as channel=)")
            self._replicas[address] = type(self)(address, **self._settings)
        return self._replicas[address]

    def _stubs_for(self, replica: str | None) -> dict[str, Callable[..., Any]]:
        return self._stubs if replica is None else self.replica(replica)._stubs

    def deadline(self, timeout: float | None) -> float | None:
        return self.timeout if timeout is None else timeout

    def known_models(self) -> KnownModels | None:
        """The models (and labels) ``models_config`` names, read afresh: hints only."""
        return read_known_models(self.models_config)

    def _error(self, error: grpc.RpcError) -> ServingError:
        found = error_from_rpc(error)
        return found.with_hint(connection_hint(found, self.target))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.target!r})"
