"""``run_bench``: check the targets and the model, serialize the requests once, run the steps on the
generator processes, and turn each step's merged samples into a :class:`StepResult`."""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping, Sequence

import grpc
import numpy as np

from tfsk._base.naming import DEFAULT_SIGNATURE
from tfsk.client import Client, TargetError

from ._errors import BenchError
from ._load import PREDICT, Payloads, Samples, grpc_channel
from ._payloads import bodies_for, rest_path, signature_inputs, synthesize
from ._report import BenchReport, StepResult
from ._stats import knee_index, latency_summary
from ._steps import ARRIVALS, LoadStep
from ._workers import Generators, default_processes, merge

__all__ = ["PROTOCOLS", "run_bench"]

PROTOCOLS = ("grpc", "rest")
#: How a gRPC closed loop keeps its requests in flight: each answer's callback sends the next (least CPU
#: per request), or a thread per request blocking on its call (more threads for the OS to schedule).
ENGINES = ("callbacks", "threads")
#: Open loop: a step is sustained when at most this share of its sends were missed.
MISSED_SHARE = 0.01
_CONNECT_SECONDS = 5.0

Inputs = Mapping[str, np.ndarray] | Sequence[Mapping[str, np.ndarray]]


def _targets(target: str | Sequence[str]) -> tuple[str, ...]:
    """Every replica's host:port: a list's addresses, or what a ``dns:///`` name resolves to now
    (the client's own rules: a Kubernetes headless Service gives each ready pod)."""
    found = [t.strip() for t in (target.split(",") if isinstance(target, str) else target)]
    if not found or any(not t for t in found):
        raise BenchError(f"target {target!r}: give host:port, or several separated by commas")
    try:
        with Client(found if len(found) > 1 else found[0], retries=0) as client:
            replicas = client.replicas()
    except TargetError as error:
        raise BenchError(str(error)) from None
    for replica in replicas:
        if replica.startswith(("unix:", "unix-abstract:", "vsock:", "xds:")):
            raise BenchError(f"target {replica!r}: the bench measures host:port targets (or dns:///host:port)")
    return tuple(dict.fromkeys(replicas))


def _check_reachable(targets: Sequence[str], protocol: str) -> None:
    port_kind = "REST port (--rest_api_port)" if protocol == "rest" else "gRPC port"
    for target in targets:
        host, _, port = target.rpartition(":")
        try:  # a refused connection answers at once, where gRPC would keep trying until its deadline
            socket.create_connection((host.strip("[]"), int(port)), timeout=_CONNECT_SECONDS).close()
        except OSError as error:
            raise BenchError(f"cannot reach {target} ({error.strerror or error}): is the server running, and is "
                             f"this its {port_kind}?") from None
        if protocol == "rest":
            continue
        channel = grpc_channel(target)
        try:
            grpc.channel_ready_future(channel).result(timeout=_CONNECT_SECONDS)
        except grpc.FutureTimeoutError:
            raise BenchError(f"cannot reach {target}: no gRPC server answered within {_CONNECT_SECONDS:g}s; is the "
                             f"server running, and is this its gRPC port?") from None
        finally:
            channel.close()


def _probe(payloads: Payloads, model: str) -> None:
    """One request to each target before any load: a request the server refuses (an unknown model,
    version or label, inputs the signature does not take) stops here with the server's words."""
    if payloads.protocol == "rest":
        from ._rest import _Connection, error_text

        for target in payloads.targets:
            connection = _Connection(target, payloads.timeout)
            error = connection.post(payloads.path, payloads.bodies[0])
            connection.close()
            if error is not None:
                said = error_text(connection.last_answer)
                what = "unknown model: " if error == "HTTP 404" else ""
                raise BenchError(f"{what}{target} refused the first request to {model}: {error} {said}".rstrip())
        return
    for target in payloads.targets:
        channel = grpc_channel(target)
        try:
            channel.unary_unary(PREDICT)(payloads.bodies[0], timeout=payloads.timeout)
        except grpc.RpcError as error:
            code, details = error.code(), " ".join(str(error.details()).split())  # one line, graph traces too
            what = "unknown model: " if code == grpc.StatusCode.NOT_FOUND else ""
            raise BenchError(f"{what}{target} refused the first request to {model}: {code.name}: {details}") from None
        finally:
            channel.close()


def _replicas(samples: Samples, targets: Sequence[str], seconds: float) -> dict[str, dict[str, float]]:
    if len(targets) < 2:
        return {}
    found = {}
    for index, target in enumerate(targets):
        mine = samples.latencies[samples.replicas == index]
        summary = latency_summary(mine)
        found[target] = {"requests": int(mine.size), "throughput": round(mine.size / seconds, 3),
                         "p50_ms": round(summary["p50"], 4), "p99_ms": round(summary["p99"], 4)}
    return found


def step_result(step: LoadStep, samples: Samples, targets: Sequence[str]) -> StepResult:
    ok = int(samples.latencies.size)
    failed = sum(samples.errors.values())
    sustained = True
    if step.open_loop:
        sustained = samples.missed <= max(1, MISSED_SHARE * samples.scheduled)
    return StepResult(step, ok + failed, dict(sorted(samples.errors.items())), ok / step.duration_seconds,
                      latency_summary(samples.latencies), samples.missed, sustained,
                      samples.cpu_seconds / max(samples.wall_seconds, 1e-9), samples.scheduled,
                      _replicas(samples, targets, step.duration_seconds))


def run_bench(target: str | Sequence[str], model: str, steps: Sequence[LoadStep], *, signature: str = DEFAULT_SIGNATURE,
              label: str | None = None, version: int | None = None, inputs: Inputs | None = None,
              requests: Sequence[bytes] | None = None, batch_size: int = 1, protocol: str = "grpc",
              processes: int | None = None, arrivals: str = "constant", timeout: float = 30.0,
              seed: int = 0, engine: str = "callbacks", on_step: Callable[[int, StepResult | None], None] | None = None) -> BenchReport:
    """Measure ``model`` on every replica of ``target`` (requests go to each in turn), one step after another.

    Inputs: ``inputs`` (one batch, or several sent in turn), else pre-serialized PredictRequest
    ``requests`` (gRPC; replayed traffic), else made up from the signature (``batch_size`` rows).
    Steps run on ``processes`` generator processes (default: half the cores); ``arrivals`` spaces
    open-loop sends (``constant`` or ``poisson``). ``on_step(index, None)`` is called as a step starts,
    ``on_step(index, result)`` when it is measured. Raises :class:`BenchError` for what cannot be
    measured: an unreachable target, an unknown model, a request the server refuses.
    """
    if protocol not in PROTOCOLS:
        raise BenchError(f"protocol {protocol!r}: give grpc or rest")
    if engine not in ENGINES:
        raise BenchError(f"engine {engine!r}: give {' or '.join(ENGINES)}")
    if arrivals not in ARRIVALS:
        raise BenchError(f"arrivals {arrivals!r}: give {' or '.join(ARRIVALS)}")
    if version is not None and label is not None:
        raise BenchError("give a version or a label, not both")
    if not steps:
        raise BenchError("no load steps: give at least one concurrency or rate")
    if requests is not None and protocol != "grpc":
        raise BenchError("replayed requests are PredictRequests: they go over gRPC only (leave out --protocol rest)")
    processes = default_processes() if processes is None else processes
    if processes < 1:
        raise BenchError(f"processes {processes}: give 1 or more")
    targets = _targets(target)
    _check_reachable(targets, protocol)
    if requests is not None:
        if not requests:
            raise BenchError("no requests to replay")
        bodies, source = tuple(bytes(r) for r in requests), "replayed"
    else:
        source = "given"
        if inputs is None:
            specs = signature_inputs(targets[0], model, signature, version=version, label=label, protocol=protocol)
            inputs, source = synthesize(specs, batch_size, seed), "synthesized"
        batches = [inputs] if isinstance(inputs, Mapping) else list(inputs)
        if not batches:
            raise BenchError("no inputs: give at least one batch")
        bodies = bodies_for(batches, protocol, model, signature, version, label)
    payloads = Payloads(protocol, bodies, targets, rest_path(model, version, label) if protocol == "rest" else "",
                        timeout)
    _probe(payloads, model)
    results = []
    with Generators(payloads, processes) as generators:
        for number, step in enumerate(steps):
            if on_step is not None:
                on_step(number, None)
            results.append(step_result(step, merge(generators.run(step, arrivals, seed + number, engine)), targets))
            if on_step is not None:
                on_step(number, results[-1])
    knee = knee_index([r.throughput for r in results], [r.latency_ms["p99"] for r in results],
                      [r.usable for r in results])
    return BenchReport(results, knee, list(targets), model, signature, label, version, protocol, processes, arrivals,
                       source)
