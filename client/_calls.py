"""The client's calls as plans (see ``_plans``): one implementation for ``Client`` and ``AsyncClient``."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tfsk._base.naming import DEFAULT_SIGNATURE, LINEAGE_OUTPUT, LINEAGE_SIGNATURE

from ._capture import CallRecord
from ._errors import (
    DeadlineExceededError,
    FailedPreconditionError,
    InputError,
    InvalidArgumentError,
    NotFoundError,
    ServingError,
    UnavailableError,
    UnimplementedError,
    WaitTimeoutError,
)
from ._hints import model_hint, signature_hint, unknown_model_hint
from ._inputs import MISSING, fit_inputs
from ._plans import Call, Plan, ask_metadata, ask_status, sleep
from ._requests import (
    available_version,
    predict_request,
    prediction_from,
    reload_request,
)
from ._traffic import label_gone, observe, side_name
from ._types import ModelMetadata, Prediction, VersionStatus

if TYPE_CHECKING:
    from ._base import BaseClient

__all__ = ["lineage", "metadata", "predict", "reload_config", "status", "wait_for_replicas", "wait_until_available"]

# answers after which a cached signature may no longer be the model's
_STALE = (InvalidArgumentError, NotFoundError, FailedPreconditionError)


def _signature_for(client: BaseClient, model: str, version: int | None, label: str | None,
                   timeout: float | None) -> Plan[tuple[ModelMetadata | None, bool]]:
    """The model's metadata for checking inputs, and whether it was just asked (not remembered)."""
    key = (model, version, label)
    found = client.signature_cache.get(key)
    if found is not MISSING:
        return found, False
    try:
        found = yield from ask_metadata(model, version, label, timeout)
    except UnimplementedError:  # e.g. a proxy that passes Predict only: check nothing, and do not ask again
        client.signature_cache.put(key, None)
        return None, True
    except (UnavailableError, DeadlineExceededError):
        raise  # Predict would fail the same way, only later
    except ServingError:  # unknown model, version or label: Predict's own answer says so, with its hint
        return None, True
    client.signature_cache.put(key, found)
    if version is None:
        client.signature_cache.put((model, found.version, None), found)
    return found, True


def _predict(client: BaseClient, model: str, inputs: Mapping[str, Any], version: int | None, label: str | None,
             signature: str | None, output_filter: Sequence[str] | None, timeout: float | None, check: bool,
             quiet: tuple[type[ServingError], ...] = (), side: str | None = None,
             routed: bool = False) -> Plan[Prediction]:
    """Predict; errors of the ``quiet`` types are raised without looking for a hint (the caller expects them).

    ``side``: a caller's call, kept in the figures of that side (and captured, mirrored) as ``_traffic``
    says; ``routed``: a gone label is raised without a hint and without being kept (the route falls back).
    """
    deadline = client.deadline(timeout)
    known, fresh, sent, converted = None, False, inputs, False
    if check and inputs:
        known = client.signature_cache.get((model, version, label))  # the common case, without a plan of its own
        if known is MISSING:
            known, fresh = yield from _signature_for(client, model, version, label, deadline)
        if known is not None:
            try:
                sent, converted = fit_inputs(inputs, known, signature, model)
            except InputError:
                if fresh:
                    raise
                client.signature_cache.forget(model)  # remembered, maybe outdated: ask again before refusing
                known, fresh = yield from _signature_for(client, model, version, label, deadline)
                if known is not None:
                    sent, converted = fit_inputs(inputs, known, signature, model)
    for attempt in (1, 2):
        request = predict_request(model, sent, version, label, signature, output_filter)
        sent_at, started = time.time(), time.perf_counter()
        try:
            response = yield Call("Predict", request, deadline)
            break
        except ServingError as error:
            if isinstance(error, _STALE):
                client.signature_cache.forget(model)
            if attempt == 1 and converted and not fresh and isinstance(error, InvalidArgumentError):
                # Converted after a remembered signature that the model may have changed since: if the
                # server's signature now differs, convert after it and send once more (nothing ran).
                newer, fresh = yield from _signature_for(client, model, version, label, deadline)
                name = signature or DEFAULT_SIGNATURE
                if newer is not None and known is not None and newer.signatures.get(name) != known.signatures.get(name):
                    known = newer
                    sent, converted = fit_inputs(inputs, newer, signature, model)
                    continue
            if routed and label_gone(error):
                raise
            if side is not None:
                observe(client, side, CallRecord(model, signature or DEFAULT_SIGNATURE, label, version, request, None,
                                                 time.perf_counter() - started, error.code.name, error.details,
                                                 time=sent_at), deadline)
            if not isinstance(error, quiet):
                hint = yield from model_hint(client, error, model, version, label, deadline)
                if hint is None:
                    hint = yield from signature_hint(client, error, model, version, label, signature, sent, deadline)
                error = error.with_hint(hint)
            raise error from None
    latency = time.perf_counter() - started
    result = prediction_from(response, model, signature)
    if side is not None:
        observe(client, side, CallRecord(model, result.signature, label, result.version, request, response, latency,
                                         time=sent_at), deadline)
    if known is not None and version is None and result.version > known.version:
        # A newer version (or a moved label) answered: its signature may differ. Only newer: replicas
        # part-way through a rollout, answering old and new in turn, must not make every call ask again.
        # (An older or changed signature that matters is caught anyway: a refused input asks again.)
        client.signature_cache.forget(model)
    return result


def predict(client: BaseClient, model: str, inputs: Mapping[str, Any], *, version: int | None = None,
            label: str | None = None, signature: str | None = None, output_filter: Sequence[str] | None = None,
            timeout: float | None = None, check_inputs: bool | None = None,
            key: str | bytes | int | None = None) -> Plan[Prediction]:
    """Run a signature (default ``serving_default``) on named inputs; return named numpy outputs.

    Inputs are first fitted to the signature (known from one GetModelMetadata call per model
    version, then remembered): dtypes numpy converts safely are converted (a float64 array or a
    list of numbers for a float32 input), anything else, and a dimension the signature fixes
    that does not match, raises :class:`InputError` before sending. ``check_inputs=False`` (here
    or on the client) sends the inputs as they are.

    Outputs the server sent as ``tensor_content`` are read-only views of the response (no
    copy); ``.copy()`` one to change it.

    On a client with a ``route``, a call that names no version or label goes to one of the route's
    sides: the same ``key`` (a user id, say) always to the same side, in every process; without
    one, a random side by share. If that side's label is gone, the call goes to the first side
    that is not (counted as a fallback in :meth:`route_stats`).
    """
    check = client.check_inputs if check_inputs is None else check_inputs
    traffic = client._traffic
    if traffic.route is None or version is not None or label is not None:
        return (yield from _predict(client, model, inputs, version, label, signature, output_filter, timeout, check,
                                    side=side_name(label, version)))
    side = traffic.pick(key)
    side = traffic.fallback(side) or side
    while True:
        try:
            return (yield from _predict(client, model, inputs, side.version, side.label, signature, output_filter,
                                        timeout, check, side=side.name, routed=True))
        except ServingError as error:
            if not label_gone(error):
                raise
            instead = traffic.mark_gone(side)
            if instead is None:
                sides = ", ".join(s.name for s in traffic.route)
                raise error.with_hint(f"no side of the route ({sides}) is served any more: point a label at a "
                                      f"loaded version, or give the client another route") from None
            side = instead


def metadata(client: BaseClient, model: str, *, version: int | None = None, label: str | None = None,
             timeout: float | None = None) -> Plan[ModelMetadata]:
    """The model's signatures (TF's internal ``__saved_model_init_op`` left out)."""
    deadline = client.deadline(timeout)
    try:
        found = yield from ask_metadata(model, version, label, deadline)
    except (NotFoundError, InvalidArgumentError) as error:
        raise error.with_hint((yield from model_hint(client, error, model, version, label, deadline))) from None
    client.signature_cache.put((model, version, label), found)
    return found


def status(client: BaseClient, model: str, *, version: int | None = None,
           timeout: float | None = None) -> Plan[list[VersionStatus]]:
    """Every version the server has seen, newest first (or only ``version``)."""
    deadline = client.deadline(timeout)
    try:
        return (yield from ask_status(model, version, deadline))
    except NotFoundError as error:
        if version is None:  # "Could not find any versions of model": the model is unknown
            raise error.with_hint(unknown_model_hint(client, model)) from None
        raise error.with_hint((yield from model_hint(client, error, model, version, None, deadline))) from None


def reload_config(client: BaseClient, config: Any, *, timeout: float | None = None) -> Plan[None]:
    """Replace the server's model config (a ``ModelServerConfig`` or its text). Models left out unload."""
    yield Call("HandleReloadConfigRequest", reload_request(config), client.deadline(timeout))


def wait_until_available(client: BaseClient, model: str, version: int | None = None, timeout: float = 60.0,
                         poll_interval: float = 0.2) -> Plan[int]:
    """Wait until ``version`` (or any version) of ``model`` is AVAILABLE; return that version.

    With several replicas (a list of addresses, or a ``dns:///`` name with several addresses)
    every replica must have it (see :meth:`wait_for_replicas`); without ``version``, the
    version returned is the lowest of the replicas' newest AVAILABLE ones. A version that ends
    with an error raises at once; other failures are retried until ``timeout``, then
    :class:`WaitTimeoutError` (a ``TimeoutError``) says what was last heard.
    """
    found = yield from wait_for_replicas(client, model, version, timeout, poll_interval)
    return min(found.values())


def wait_for_replicas(client: BaseClient, model: str, version: int | None = None, timeout: float = 60.0,
                      poll_interval: float = 0.2) -> Plan[dict[str, int]]:
    """Wait until every replica of the target has ``version`` (or any version) of ``model`` AVAILABLE.

    Each address is asked on its own (:meth:`replicas`: the addresses of a list target, or what a
    ``dns:///`` name resolves to now). Returns ``{address: AVAILABLE version}``; raises like
    :meth:`wait_until_available`, naming the replicas that were not ready.
    """
    replicas = client.replicas()
    deadline = time.monotonic() + timeout
    pending, found = list(replicas), {}
    last: dict[str, ServingError] = {}
    while time.monotonic() < deadline:
        for address in list(pending):
            try:  # not loaded yet, or the server not up yet: ask again
                entries = yield from ask_status(model, version, min(5.0, max(deadline - time.monotonic(), 0.1)),
                                                address if len(replicas) > 1 else None)
            except ServingError as error:
                last[address] = error
                continue
            available = available_version(entries, model, version)
            if available is not None:
                found[address] = available
                pending.remove(address)
        if not pending:
            return found
        yield sleep(poll_interval)
    wanted = f"version {version} of {model}" if version is not None else f"a version of {model}"
    where = f" on {len(pending)} of {len(replicas)} replicas ({', '.join(pending)})" if len(replicas) > 1 else ""
    heard = "; ".join(f"{a}: {last[a]}" if len(replicas) > 1 else str(last[a]) for a in pending if a in last)
    raise WaitTimeoutError(f"{wanted} was not AVAILABLE within {round(timeout, 1):g}s{where}"  # 10s, not 9.98971025600008s
                           + (f" (last answer: {heard})" if heard else ""))


def lineage(client: BaseClient, model: str, *, version: int | None = None,
            label: str | None = None) -> Plan[dict[str, Any] | None]:
    """What the exporter recorded about this version (``None`` for models not exported by tfsk)."""
    try:
        result = yield from _predict(client, model, {}, version, label, LINEAGE_SIGNATURE, None, None, False,
                                     quiet=(FailedPreconditionError,))
    except FailedPreconditionError:  # no lineage signature: not exported by tfsk
        return None
    value = result[LINEAGE_OUTPUT]
    lineage: dict[str, Any] = json.loads(bytes(value.item() if value.shape == () else value.ravel()[0]))
    return lineage
