"""``tfsk tune batching``: measure batching parameters on servers of their own, keep the best.

The baseline (the same server without ``--enable_batching``) is measured first, in the same run,
then the coordinate descent of :mod:`._space`, each trial on a fresh server at the same load
(:func:`tfsk.deploy.bench.run_bench`), until the search settles, ``trials`` are spent or the
``budget`` would be passed.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path

from tfsk import serving_config as sc

from ..bench import LoadStep, StepResult, run_bench
from ._report import Trial, TuneReport, trial_score
from ._servers import DevserverTrials, DockerTrials, TrialServers, TuneError, served_version, version_dir
from ._space import Candidate, SearchSpace, coordinate_descent
from ._warmup import warmup_batch_size

__all__ = ["ENGINES", "tune_batching"]

ENGINES = ("devserver", "docker")
_log = logging.getLogger(__name__)


def tune_batching(declaration: sc.Declaration, model: str, load: LoadStep, *, p99_ms: float, trials: int = 10,
                  budget_seconds: float | None = None, engine: str = "devserver", seed: int = 0,
                  image: str | None = None, processes: int | None = None, server_flags: Sequence[str] = (),
                  confirm: int = 3, on_trial: Callable[[Trial], None] = lambda _: None) -> TuneReport:
    """Tune ``model``'s batching at ``load`` under ``p99 <= p99_ms``; every trial is in the report.

    ``trials`` bounds the batched trials (the baseline comes on top); ``budget_seconds`` the whole
    run: a trial that would pass it (judged by the last trial's time) is not started. ``engine``
    ``"docker"`` runs ``image`` (the pinned ``tensorflow/serving``). The baseline, the starting
    point and the top batched trial are then measured again ``confirm`` rounds each, interleaved on
    their servers, and the verdict takes the medians (one measurement each is too noisy on a busy
    machine): the top trial must beat the starting point, and the best the baseline, by more than
    ``MIN_GAIN``. Raises :class:`TuneError` for a
    load, bound or engine that cannot be tuned, or a trial server that does not start.
    """
    problem = None
    if not p99_ms > 0:
        problem = f"--p99 must be a positive latency, e.g. 50ms; got {p99_ms:g} ms"
    if problem is None and trials < 1:
        problem = f"--trials must be 1 or more, got {trials}"
    if problem is None and budget_seconds is not None and not budget_seconds > 0:
        problem = f"--budget must be positive, got {budget_seconds:g}s"
    if problem is None and confirm < 0:
        problem = f"--confirm must be 0 or more, got {confirm}"
    if problem is None and engine not in ENGINES:
        problem = f"unknown engine {engine!r}; use one of {', '.join(ENGINES)}"
    if problem is not None:
        raise TuneError(problem)
    started = time.monotonic()
    warmup_rows = warmup_batch_size(version_dir(declaration, model, served_version(declaration, model)))
    space = SearchSpace.for_load(concurrency=load.concurrency, p99_ms=p99_ms, min_batch_size=warmup_rows)
    # Kept when a trial server fails, so the log its error names is still there.
    work = Path(tempfile.mkdtemp(prefix="tfsk-tune-"))
    try:
        report = _run(declaration, model, load, p99_ms, space, work, trials=trials, budget_seconds=budget_seconds,
                      engine=engine, seed=seed, image=image, processes=processes, server_flags=server_flags,
                      confirm=confirm, on_trial=on_trial, started=started)
    except TuneError:
        raise
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    shutil.rmtree(work, ignore_errors=True)
    report.seconds = time.monotonic() - started
    return report


def _run(declaration: sc.Declaration, model: str, load: LoadStep, p99_ms: float, space: SearchSpace, work: Path, *,
         trials: int, budget_seconds: float | None, engine: str, seed: int, image: str | None,
         processes: int | None, server_flags: Sequence[str], confirm: int, on_trial: Callable[[Trial], None],
         started: float) -> TuneReport:
    servers: TrialServers
    if engine == "docker":
        servers = DockerTrials(declaration, model, work, image, extra_flags=server_flags)
    else:
        servers = DevserverTrials(declaration, model, work, extra_flags=server_flags)
    report = TuneReport(model, servers.version, servers.name, load, p99_ms, seed, space.size)

    # The servers of the baseline, of the starting point and of the leading batched trial stay up
    # after their trials, so the confirmation rounds measure them side by side, interleaved,
    # without starting them again.
    live: dict[str, tuple[ExitStack, str, int]] = {}

    def measure(candidate: Candidate | None) -> Trial:
        began = time.monotonic()
        index = len(report.trials)
        stack = ExitStack()
        try:
            target = stack.enter_context(servers.trial(index, None if candidate is None else candidate.settings()))
            result = _bench(target, model, report.version, load, processes, seed)
        except BaseException:
            stack.close()
            raise
        trial = Trial.measured(index, candidate, result, time.monotonic() - began, p99_ms)
        report.trials.append(trial)
        role = ("baseline" if candidate is None else "start" if "start" not in live
                else "top" if _leads(report, trial) else None)
        if role is None:
            stack.close()
        else:
            if role in live:
                live[role][0].close()
            live[role] = (stack, target, index)
        _log.info("trial %d: %s", index, trial.label)
        on_trial(trial)
        return trial

    def over_budget(next_seconds: float) -> bool:
        return budget_seconds is not None and time.monotonic() - started + next_seconds > budget_seconds

    def evaluate(candidate: Candidate) -> tuple[float, ...] | None:
        # The baseline and the start point are always measured: without both there is nothing to compare.
        if len(report.trials) >= 2 and over_budget(report.trials[-1].seconds):
            report.stopped_by = "budget"
            return None
        return trial_score(measure(candidate), report.by_rate)

    try:
        measure(None)
        coordinate_descent(space, evaluate, trials=trials, seed=seed)
        if report.stopped_by != "budget" and len(report.trials) - 1 >= trials:
            report.stopped_by = "trials"
        top = report.top
        roles = [role for role in ("baseline", "start", "top")
                 if role in live and (role != "top" or (top is not None and live[role][2] == top.index))]
        if top is not None:
            for round_ in range(confirm):
                if over_budget(len(roles) * (load.duration_seconds + load.warmup_seconds)):
                    break
                for role in roles[round_ % len(roles):] + roles[:round_ % len(roles)]:
                    _, target, index = live[role]
                    result = _bench(target, model, report.version, load, processes, seed)
                    report.confirmations.append(Trial.measured(index, report.trials[index].candidate, result, 0.0,
                                                               p99_ms))
    finally:
        for stack, _, _ in live.values():
            stack.close()
    return report


def _leads(report: TuneReport, trial: Trial) -> bool:
    """Whether ``trial`` scores above every batched trial before it (ties: the earlier one leads)."""
    return all(trial_score(trial, report.by_rate) > trial_score(other, report.by_rate)
               for other in report.trials if other.candidate is not None and other.index != trial.index)


def _bench(target: str, model: str, version: int, load: LoadStep, processes: int | None, seed: int) -> StepResult:
    return run_bench(target, model, [load], version=version, processes=processes, seed=seed).steps[0]
