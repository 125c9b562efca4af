"""``tfsk rollout analyze``: judge ``canary`` against ``stable`` before ``promote``.

TF Serving's metrics carry no version or label, so the judging happens here, on the client side:
either by replaying the same requests to both labels on every replica, or (``live``) from the
traffic a client routed between them and captured. The report is kept beside the rollout's notes
(:func:`gate_report_file`) and its verdict in the notes, where ``promote`` finds it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tfsk import serving_config as sc
from tfsk._base.errors import EXIT_NOT_RIGHT
from tfsk._base.naming import DEFAULT_SIGNATURE, part_of_signature

from ._gate_replay import OK, replay
from ._gate_report import judge, label_figures, live_output_figures, output_figures, output_key
from ._gate_requests import RequestSet, captured_requests, synthesized_requests, warmup_requests
from ._measures import describe_latency
from ._rollout_state import gate_report_file, save_state
from ._session import CANARY, STABLE, RolloutError, RolloutSession

__all__ = ["GateFailedError", "GateSteps"]


class GateFailedError(RolloutError):
    """The canary failed the gate: the checks it failed are named; nothing was changed (exit 1)."""

    exit_code = EXIT_NOT_RIGHT

    def __init__(self, message: str, report: Mapping[str, Any]) -> None:
        super().__init__(message, resumable=False)
        self.report = dict(report)


class GateSteps(RolloutSession):
    """analyze (replayed or live), and the gate ``promote`` runs first."""

    def _judged_versions(self) -> tuple[int, int]:
        stable, canary = self.labels.get(STABLE), self.labels.get(CANARY)
        if stable is None or canary is None or stable == canary:
            raise RolloutError(f"{self.model} has no canary beside stable to judge (labels: {self.labels or 'none'}): "
                               f"tfsk rollout start first", resumable=False)
        return stable, canary

    def _signatures(self) -> dict[str, Any]:
        from tfsk.client import Client

        with Client(self.targets.addresses[0], timeout=30, retries=0) as client:
            return client.metadata(self.model, label=STABLE).signatures

    def _requests(self, capture: Path | None, signatures: Mapping[str, Any], count: int,
                  versions: tuple[int, int]) -> RequestSet:
        """Captured traffic, else stable's (then canary's) warmup records, else synthesized. Warmup records
        are a handful of examples: made-up requests top them up to ``count`` distinct ones, so the figures
        (ranks, flips, drift) rest on enough values."""
        if capture is not None:
            return captured_requests(self.model, capture)
        for version in versions:
            found = warmup_requests(self.model, self._host_dir(self.model) / str(version), self.folder)
            if found is not None:
                return found.topped_up(synthesized_requests(signatures, count), count)
        return synthesized_requests(signatures, count)

    def analyze(self, *, capture: str | os.PathLike[str] | None = None, live: str | os.PathLike[str] | None = None,
                settings: sc.GateSettings | None = None) -> dict[str, Any]:
        """Judge canary against stable; return the report (``verdict`` is ``pass`` or ``fail``, ``failed``
        names each failed check) and keep it beside the rollout's notes.

        Without ``live``: the same requests (``capture``, else the warmup records, else synthesized)
        go to both labels on every target. With ``live``: the figures come from that capture of
        traffic a client routed between the labels (latency and errors per label; drift of each
        output's distribution, since the requests differ)."""
        settings = settings or self.declaration.gate
        stable, canary = self._judged_versions()
        signatures = self._signatures()
        parts = sorted(p for p in (part_of_signature(name) for name in signatures) if p)
        began = time.monotonic()
        if live is not None:
            report = self._live(Path(live), stable, canary, parts)
        else:
            requests = self._requests(None if capture is None else Path(capture), signatures, settings.requests,
                                      (stable, canary))
            order = requests.order(settings.requests)
            self.say(f"replaying {len(order)} requests ({requests.source}) to stable (version {stable}) and canary "
                     f"(version {canary}) on {self.targets.describe()}")
            answers = replay(self.model, self.targets.addresses, requests.requests, order, (STABLE, CANARY),
                             self.targets.timeout)
            labels = {label: label_figures(answers[label], self.targets.addresses) for label in (STABLE, CANARY)}
            outputs = output_figures(answers[STABLE], answers[CANARY], parts, settings.decision_threshold)
            report = {"mode": "replay", "source": requests.source, "labels": labels, "outputs": outputs}
        report = {"model": self.model, "stable": stable, "canary": canary, "parts": parts,
                  "targets": list(self.targets.addresses), **report,
                  **judge(report["labels"], report["outputs"], settings),
                  "seconds": round(time.monotonic() - began, 3),
                  "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        self._keep(report)
        return report

    def _live(self, capture: Path, stable: int, canary: int, parts: list[str]) -> dict[str, Any]:
        from tfsk.client import read_capture

        if not capture.exists():
            raise RolloutError(f"--live {capture}: no such file or folder; give the capture of a client routing "
                               f"traffic between stable and canary", resumable=False)
        versions = {stable: STABLE, canary: CANARY}
        seconds: dict[str, list[float]] = {STABLE: [], CANARY: []}
        statuses: dict[str, list[str]] = {STABLE: [], CANARY: []}
        values: dict[str, dict[str, list[np.ndarray]]] = {STABLE: {}, CANARY: {}}
        for call in read_capture(capture):
            if call.model != self.model:
                continue
            label = call.label if call.label in (STABLE, CANARY) else versions.get(call.version or -1)
            if label is None:
                continue
            statuses[label].append(call.status)
            if call.status != OK or call.response is None:
                continue
            if call.latency_seconds is not None:
                seconds[label].append(call.latency_seconds)
            for name, array in (call.outputs or {}).items():
                if array.dtype.kind in "biuf":
                    key = output_key(call.signature or DEFAULT_SIGNATURE, name)
                    values[label].setdefault(key, []).append(array)
        missing = [label for label in (STABLE, CANARY) if not statuses[label]]
        if missing:
            raise RolloutError(f"--live {capture} holds no call of {self.model!r} answered by {' or '.join(missing)}: "
                               f"route a share of traffic to it (Client(..., route={{'stable': 0.95, 'canary': "
                               f"0.05}}, capture=...)) and capture longer", resumable=False)
        labels = {}
        for label in (STABLE, CANARY):
            errors: dict[str, int] = {}
            for status in statuses[label]:
                if status != OK:
                    errors[status] = errors.get(status, 0) + 1
            labels[label] = {"requests": len(statuses[label]), "errors": dict(sorted(errors.items())),
                             "error_rate": sum(errors.values()) / len(statuses[label]), **describe_latency(seconds[label])}
        self.say(f"read {sum(len(s) for s in statuses.values())} captured calls of {self.model} from {capture}")
        return {"mode": "live", "source": f"live traffic captured in {capture}", "labels": labels,
                "outputs": live_output_figures(values[STABLE], values[CANARY], parts)}

    def _keep(self, report: Mapping[str, Any]) -> None:
        """The report beside the notes (atomically), its verdict in the notes."""
        target = gate_report_file(self.folder, self.model)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(report, indent=2, default=_plain), encoding="utf-8")
        os.replace(temporary, target)
        self.state.gate = {"stable": report["stable"], "canary": report["canary"], "verdict": report["verdict"],
                           "failed": report["failed"], "at": report["at"], "mode": report["mode"]}
        save_state(self.folder, self.state)

    def gate(self, *, force: bool = False, capture: str | os.PathLike[str] | None = None) -> dict[str, Any]:
        """What ``promote`` runs first: :meth:`analyze`; a failing canary raises :class:`GateFailedError`
        (exit 1) unless ``force``, which the rollout's notes record (``overrides``). Returns the report."""
        report = self.analyze(capture=capture)
        if report["verdict"] == "pass":
            return report
        failed = ", ".join(report["failed"])
        if not force:
            raise GateFailedError(f"canary ({self.model} version {report['canary']}) failed the gate: {failed}. "
                                  f"{summarize_failures(report)} {report['moved'].capitalize()}. The report is in "
                                  f"{gate_report_file(self.folder, self.model)}. `tfsk rollout finish {self.model}` "
                                  f"drops the canary; --force promotes it anyway (noted in the rollout's notes)", report)
        note = (f"{report['at']} promote --force: canary version {report['canary']} failed {failed}"
                f"{'; moved: ' + ', '.join(report['moved_parts']) if report['moved_parts'] else ''}")
        self.state.overrides.append(note)
        save_state(self.folder, self.state)
        self.say(f"the gate failed ({failed}); promoting anyway (--force), noted in the rollout's notes")
        return report


def summarize_failures(report: Mapping[str, Any]) -> str:
    """One sentence per failed check (what was measured and the limit)."""
    return " ".join(f"{c['detail']}." for c in report["checks"] if not c["ok"])


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else str(value)
