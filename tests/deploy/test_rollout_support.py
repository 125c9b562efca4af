"""What the rollout tests share (no tests here): a served copy of the demo, devserver replicas, client loops."""

from __future__ import annotations

import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from server_process import ServerProcess
from support import REPO


def rollout_dir(tmp_path: Path, demo_base: Path, stable: bool = True) -> Path:
    """tfsk.toml of the repository with the demo (version 1 of everything) and its configs written;
    with ``stable``, tfsk.toml labels composed version 1 ``stable`` (served from start-up on)."""
    from tfsk import serving_config as sc

    shutil.copy(REPO / "tfsk.toml", tmp_path / "tfsk.toml")
    shutil.copytree(demo_base, tmp_path / "demo-models")
    declaration = sc.load_declaration(tmp_path / "tfsk.toml")
    if stable:
        declaration = sc.record_versions(declaration, "composed", [1], {"stable": 1})
    sc.write_configs(declaration)
    return tmp_path


def start_replica(folder: Path, port: int | None = None) -> ServerProcess:
    """A devserver reading the host models.config as the compose stack's server does (labels at start-up
    allowed, the config file polled, version folders polled every second)."""
    return ServerProcess(f"--model_config_file={folder / 'demo-models' / 'models.host.config'}",
                         "--allow_version_labels_for_unavailable_models=true",
                         "--model_config_file_poll_wait_seconds=2", "--file_system_poll_wait_seconds=1",
                         port=port)


def new_tower(folder: Path, name: str = "tower_a") -> Path:
    """The part's "retrained" model as a .keras file."""
    from tfsk.demo import build_tower

    path = folder / f"{name}-new.keras"
    build_tower(name).save(path)
    return path


def composed_inputs(address: str) -> dict[str, np.ndarray]:
    from tfsk.client import Client

    with Client(address) as client:
        inputs = client.metadata("composed").signatures["serving_default"].inputs
    rng = np.random.default_rng(1)
    return {k: rng.standard_normal(tuple(2 if i == 0 else (d or 1) for i, d in enumerate(v.shape))).astype(v.dtype)
            for k, v in inputs.items()}


@dataclass
class Answer:
    sent: float
    received: float
    version: int | None
    error: str | None


@dataclass
class ClientLoop:
    """A thread asking ``composed`` (by ``label``, or no label) over and over until stopped."""

    addresses: list[str]
    label: str | None
    inputs: dict[str, np.ndarray]
    answers: list[Answer] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> ClientLoop:
        self._thread.start()
        return self

    def _run(self) -> None:
        from tfsk.client import Client

        with Client(self.addresses if len(self.addresses) > 1 else self.addresses[0], timeout=20, retries=0) as client:
            deadline = time.monotonic() + 900  # bounded even if never stopped
            while not self._stop.is_set() and time.monotonic() < deadline:
                sent = time.monotonic()
                try:
                    version = client.predict("composed", self.inputs, label=self.label).version
                    error = None
                except Exception as exc:  # noqa: BLE001 - every failure is counted
                    version, error = None, f"{type(exc).__name__}: {exc}"
                self.answers.append(Answer(sent, time.monotonic(), version, error))
                time.sleep(0.02)

    def stop(self) -> ClientLoop:
        self._stop.set()
        self._thread.join(30)
        return self

    @property
    def failures(self) -> list[Answer]:
        return [a for a in self.answers if a.error is not None]

    def versions(self, after: float = 0.0, before: float = float("inf")) -> set[int | None]:
        """Versions of the answers to requests sent after ``after`` and answered before ``before``."""
        return {a.version for a in self.answers if a.sent >= after and a.received <= before}
