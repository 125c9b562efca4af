"""Replay: the same requests to ``stable`` and ``canary`` on every replica, answers and timings kept.

The two labels are asked in turn, request by request (stable first on one, canary first on the
next), so a burst of load on the machine falls on both alike. The client sends the inputs as they
are (no signature lookup inside the timed call) and never retries, so a latency is one Predict.
Before anything is timed, each label answers one request of each signature: a version that has
just loaded (a canary exported without warmup records) runs each signature's graph slowly once,
which is start-up, not the canary's latency.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._gate_requests import GateRequest

__all__ = ["LabelAnswers", "replay"]

OK = "OK"


@dataclass
class LabelAnswers:
    """What one label answered: per request, the outputs (None on error), the status, the seconds it took."""

    label: str
    outputs: list[dict[str, np.ndarray] | None] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    versions: Counter[int] = field(default_factory=Counter)
    signatures: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    request_ids: list[int] = field(default_factory=list)  # which request (sent again when there are few)

    def add(self, target: str, request_id: int, signature: str, status: str, seconds: float,
            outputs: dict[str, np.ndarray] | None, version: int | None) -> None:
        self.targets.append(target)
        self.request_ids.append(request_id)
        self.signatures.append(signature)
        self.statuses.append(status)
        self.seconds.append(seconds)
        self.outputs.append(outputs)
        if version is not None:
            self.versions[version] += 1

    def ok_seconds(self, target: str | None = None) -> list[float]:
        return [s for s, status, t in zip(self.seconds, self.statuses, self.targets, strict=True)
                if status == OK and (target is None or t == target)]

    def errors(self) -> dict[str, int]:
        return dict(sorted(Counter(s for s in self.statuses if s != OK).items()))


def _status_of(error: Exception) -> str:
    code = getattr(error, "code", None)
    return code.name if code is not None and hasattr(code, "name") else type(error).__name__


def replay(model: str, addresses: Sequence[str], requests: Sequence[GateRequest], order: Sequence[int],
           labels: Sequence[str], timeout: float) -> dict[str, LabelAnswers]:
    """Send ``requests[i]`` for each ``i`` of ``order`` to every label on every address; return each label's
    answers in that order (address by address), so answer ``n`` of one label and of another are to the
    same request."""
    from tfsk.client import Client, ClientError

    answers = {label: LabelAnswers(label) for label in labels}
    first_of_each = {request.signature: request for request in requests}.values()
    for address in addresses:
        with Client(address, timeout=timeout, retries=0, check_inputs=False) as client:
            for label in labels:  # unmeasured: connected, and each signature's graph has run once
                for request in first_of_each:
                    try:
                        client.predict(model, dict(request.inputs), label=label, signature=request.signature)
                    except ClientError:
                        pass
            for index, request_id in enumerate(order):
                request = requests[request_id]
                for label in labels if index % 2 == 0 else list(reversed(labels)):
                    began = time.perf_counter()
                    try:
                        answer: Any = client.predict(model, dict(request.inputs), label=label,
                                                     signature=request.signature)
                    except ClientError as error:
                        answers[label].add(address, request_id, request.signature, _status_of(error),
                                           time.perf_counter() - began, None, None)
                    else:
                        answers[label].add(address, request_id, request.signature, OK, time.perf_counter() - began,
                                           {k: np.asarray(v) for k, v in answer.items()}, answer.version)
    return answers
