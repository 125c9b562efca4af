"""Where a client's Predict calls go and what it keeps of them: a weighted, sticky split between
labels or versions (``route``), a sampled copy to another label (``shadow``), capture, and the
figures per side. TF Serving's label routing has no weights and its metrics carry no version or
label, so a canary is judged from here.

Shared by ``Client`` and ``AsyncClient``: the decisions and the bookkeeping are plain code, the
calls are plans (``_plans``); only how a shadow copy is run in the background differs (a thread
pool, or asyncio tasks), behind ``BaseClient._submit_shadow``.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from tfsk._base.codec import read_varint
from tfsk._base.latency import latency_percentiles
from tfsk._base.packed import length_delimited

from ._capture import CallRecord, Capture
from ._errors import ClientError, InvalidArgumentError, NotFoundError, ServingError
from ._hints import NO_SERVABLE, UNKNOWN_LABEL
from ._plans import Call, Plan
from ._requests import answered_version, model_spec

if TYPE_CHECKING:
    from ._base import BaseClient

__all__ = ["Route", "RouteSide", "Shadow", "ShadowStats", "SideStats", "Traffic", "choose_side", "key_point",
           "label_gone", "observe", "parse_route", "percentiles", "shadow_plan", "side_name"]

_KEPT_LATENCIES = 10_000  # per side: enough for a p99, bounded for a long-running client


@dataclass(frozen=True)
class RouteSide:
    """One side of a split: a label or a version, and its share."""

    name: str
    label: str | None
    version: int | None
    share: float


Route = tuple[RouteSide, ...]


def parse_route(route: Mapping[str | int, float] | str) -> Route:
    """``{"stable": 0.95, "canary": 0.05}`` (labels), ``{3: 9, 4: 1}`` (versions) or ``"stable=95,canary=5"``.

    Shares are relative (they need not add up to 1); in the text form a side of digits is a version.
    """
    if isinstance(route, str):
        pairs: list[tuple[str | int, Any]] = []
        for part in filter(None, (p.strip() for p in route.split(","))):
            written, equals, amount = (piece.strip() for piece in part.partition("="))
            try:
                pairs.append((int(written) if written.isdigit() else written, float(amount)))
            except ValueError:
                equals = ""
            if not equals:
                raise ClientError(f"route {route!r}: write sides as label=share, e.g. stable=95,canary=5") from None
    else:
        pairs = list(route.items())
    if not pairs:
        raise ClientError("route needs at least one side, e.g. {'stable': 0.95, 'canary': 0.05}")
    for name, share in pairs:
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not share >= 0:
            raise ClientError(f"route side {name!r}: share {share!r} is not a number >= 0")
        if isinstance(name, bool) or not isinstance(name, (str, int)) or name == "":
            raise ClientError(f"route side {name!r}: give a label (a string) or a version (an int)")
    total = float(sum(share for _, share in pairs))
    if total <= 0:
        raise ClientError(f"route {dict(pairs)}: every share is 0; give at least one side a positive share")
    sides: list[RouteSide] = []
    for name, share in pairs:
        version = name if isinstance(name, int) else None
        sides.append(RouteSide(str(name), None if version is not None else str(name), version, share / total))
    return tuple(sides)


def key_point(key: str | bytes | int) -> float:
    """Where ``key`` falls in [0, 1): the same in every process and every run (BLAKE2b, not ``hash``)."""
    data = key if isinstance(key, bytes) else str(key).encode("utf-8")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big") / 2**64


def choose_side(route: Route, point: float) -> RouteSide:
    """The side whose share covers ``point`` (in [0, 1)), sides laid end to end in order."""
    reached = 0.0
    for side in route:
        reached += side.share
        if point < reached:
            return side
    return next(side for side in reversed(route) if side.share > 0)  # rounding left point just past the end


def label_gone(error: ServingError) -> bool:
    """TF Serving's answers when a label (or version) asked for is no more: fall back, it is not the caller's fault."""
    return ((isinstance(error, InvalidArgumentError) and UNKNOWN_LABEL in error.details)
            or (isinstance(error, NotFoundError) and NO_SERVABLE in error.details))


@dataclass(frozen=True)
class Shadow:
    """A sampled copy of each Predict, sent to ``label`` (or ``version``) in the background.

    At most ``queue`` copies wait (more are dropped and counted), ``workers`` send them; a
    copy's answer or error never reaches the caller. ``timeout``: the copy's deadline
    (default: the client's).
    """

    label: str | None = None
    version: int | None = None
    sample: float = 1.0
    queue: int = 100
    workers: int = 2
    timeout: float | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        if (self.label is None) == (self.version is None):
            raise ClientError("shadow needs a label or a version to copy requests to (one of them), e.g. "
                              "shadow={'label': 'canary', 'sample': 0.1}")
        if not 0.0 <= self.sample <= 1.0:
            raise ClientError(f"shadow sample {self.sample} is not a share between 0 and 1")
        if self.queue < 1 or self.workers < 1:
            raise ClientError(f"shadow queue={self.queue}, workers={self.workers}: both must be at least 1")

    @property
    def name(self) -> str:
        return self.label if self.label is not None else str(self.version)


def percentiles(latencies: Sequence[float]) -> dict[str, float | None]:
    """p50/p90/p99 (seconds) by the one definition tfsk reports latency with; None without a sample."""
    found = latency_percentiles(latencies, (50, 90, 99))
    return {name: None if found is None else found[i] for i, name in enumerate(("p50", "p90", "p99"))}


@dataclass(frozen=True)
class SideStats:
    """What one side (a label, a version, or ``default``) answered so far, as the client saw it."""

    calls: int
    errors: dict[str, int]  # gRPC status code name -> count
    fallbacks: int  # calls meant for this side that went to another (its label was gone)
    p50: float | None  # latency percentiles, seconds, of the latest calls
    p90: float | None
    p99: float | None


@dataclass(frozen=True)
class ShadowStats:
    offered: int  # copies sampled
    dropped: int  # sampled, but the queue was full
    answered: int
    errors: dict[str, int]
    p50: float | None
    p90: float | None
    p99: float | None


@dataclass
class _Tally:
    calls: int = 0
    fallbacks: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=_KEPT_LATENCIES))

    def add(self, status: str, latency: float) -> None:
        self.calls += 1
        self.latencies.append(latency)
        if status != "OK":
            self.errors[status] = self.errors.get(status, 0) + 1


def side_name(label: str | None, version: int | None) -> str:
    return label if label is not None else (str(version) if version is not None else "default")


def with_model_spec(request: bytes, spec: Any) -> bytes:
    """``request`` (a serialized PredictRequest) asking ``spec`` instead of its own ModelSpec."""
    key, offset = read_varint(request, 0) if request else (0, 0)
    if key == (1 << 3 | 2):  # model_spec, length-delimited: how predict_request starts every request
        length, offset = read_varint(request, offset)
        return length_delimited(1, spec.SerializeToString()) + request[offset + length:]
    return length_delimited(1, spec.SerializeToString()) + request  # none: a later field would be merged in


class Traffic:
    """One client's route, shadow, capture and figures; thread-safe."""

    def __init__(self, route: Mapping[str | int, float] | str | None, shadow: Shadow | Mapping[str, Any] | None,
                 capture: Capture | None, seed: int | None) -> None:
        self.route = parse_route(route) if route is not None else None
        self.shadow = shadow if isinstance(shadow, Shadow) or shadow is None else Shadow(**shadow)
        if capture is not None and not isinstance(capture, Capture):
            raise ClientError(f"capture takes a Capture(folder, rate=...), got {type(capture).__name__}")
        self.capture = capture
        self._random = random.Random(seed)
        self._shadow_random = random.Random(None if self.shadow is None else self.shadow.seed)
        self._lock = threading.Lock()
        self._sides: dict[str, _Tally] = {}
        self._gone: dict[str, float] = {}
        self._shadow = _Tally()
        self._offered = self._dropped = 0
        self._ids = 0
        self._prefix = f"{random.getrandbits(32):08x}"

    def pick(self, key: str | bytes | int | None) -> RouteSide:
        assert self.route is not None
        with self._lock:
            point = key_point(key) if key is not None else self._random.random()
        return choose_side(self.route, point)

    def fallback(self, side: RouteSide, recheck_seconds: float = 10.0) -> RouteSide | None:
        """The side to ask instead of ``side`` (first with no failed request), or None to ask ``side`` itself.

        A side found gone is asked again after ``recheck_seconds``: a label may come back.
        """
        assert self.route is not None
        with self._lock:
            since = self._gone.get(side.name)
            if since is None or time.monotonic() - since > recheck_seconds:
                self._gone.pop(side.name, None)
                return None
            self._tally(side.name).fallbacks += 1
            return next((s for s in self.route if s.name not in self._gone), None)

    def mark_gone(self, side: RouteSide) -> RouteSide | None:
        """``side``'s label is gone: remember it, count a fallback, and name the side to ask instead."""
        assert self.route is not None
        with self._lock:
            self._gone[side.name] = time.monotonic()
            self._tally(side.name).fallbacks += 1
            return next((s for s in self.route if s.name not in self._gone), None)

    def _tally(self, name: str) -> _Tally:
        return self._sides.setdefault(name, _Tally())

    def next_id(self) -> str:
        with self._lock:
            self._ids += 1
            return f"{self._prefix}-{self._ids}"

    def finished(self, side: str, call: CallRecord, capture: bool) -> None:
        with self._lock:
            self._tally(side).add(call.status, call.latency_seconds)
        if capture and self.capture is not None:
            self.capture.write(call)

    def wants_shadow(self) -> bool:
        if self.shadow is None:
            return False
        with self._lock:
            chosen = self.shadow.sample >= 1.0 or self._shadow_random.random() < self.shadow.sample
            self._offered += chosen
            return chosen

    def shadow_dropped(self) -> None:
        with self._lock:
            self._dropped += 1

    def shadow_finished(self, call: CallRecord, capture: bool) -> None:
        with self._lock:
            self._shadow.add(call.status, call.latency_seconds)
        if capture and self.capture is not None:
            self.capture.write(call)

    def side_stats(self) -> dict[str, SideStats]:
        with self._lock:
            return {name: SideStats(t.calls, dict(t.errors), t.fallbacks, **percentiles(t.latencies))
                    for name, t in self._sides.items()}

    def shadow_stats(self) -> ShadowStats:
        with self._lock:
            t = self._shadow
            return ShadowStats(self._offered, self._dropped, t.calls - sum(t.errors.values()), dict(t.errors),
                               **percentiles(t.latencies))


def shadow_plan(traffic: Traffic, model: str, signature: str, request: bytes, primary: str, capture: bool,
                timeout: float | None) -> Plan[None]:
    """Send a copy of ``request`` to the shadow side; keep what happens, raise nothing."""
    shadow = traffic.shadow
    assert shadow is not None
    spec = model_spec(model, shadow.version, shadow.label, signature or None)
    copy = with_model_spec(request, spec)
    sent, started = time.time(), time.perf_counter()
    response, status, details = None, "OK", ""
    try:
        response = yield Call("Predict", copy, shadow.timeout if shadow.timeout is not None else timeout)
    except ServingError as error:
        status, details = error.code.name, error.details
    latency = time.perf_counter() - started
    version = answered_version(response) if response is not None else shadow.version
    traffic.shadow_finished(CallRecord(model, signature, shadow.label, version, copy, response, latency, status, details,
                                       traffic.next_id(), primary, sent), capture)


def observe(client: BaseClient, side: str, call: CallRecord, deadline: float | None) -> None:
    """A caller's call ended: keep its figures, capture it if sampled, and mirror it if the shadow samples it."""
    traffic = client._traffic
    shadowed = traffic.wants_shadow()
    capture = traffic.capture is not None and (shadowed or traffic.capture.sampled())
    if capture or shadowed:
        call = replace(call, id=traffic.next_id())
    traffic.finished(side, call, capture)
    if shadowed:
        plan = shadow_plan(traffic, call.model, call.signature, call.request, call.id, capture, deadline)
        if not client._submit_shadow(plan):
            plan.close()
            traffic.shadow_dropped()
