"""What the stateful lifecycle test drives (no tests here): a project folder with the repository's stack
and the demo, the CLI run in this process with its output captured, extra devserver replicas started
with the stack's own flags, and snapshots of what a step may change (tfsk.toml, the version folders,
what every replica serves)."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from server_process import free_port
from support import REPO

from tfsk import serving_config as sc
from tfsk._base.layout import list_versions

MODELS = "demo-models"


@dataclass
class Outcome:
    """A command as a user would type it, its exit status and everything it printed."""

    command: str
    code: int
    output: str


@contextlib.contextmanager
def _environment(env: Mapping[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_tfsk(args: Sequence[str], cwd: Path, env: Mapping[str, str]) -> Outcome:
    """``tfsk ARGS`` in this process (TensorFlow stays imported between steps), run from ``cwd`` with
    ``env`` set, with file descriptors 1 and 2 captured (the rollout steps point fd 2 elsewhere
    themselves). Only for commands whose servers run as processes of their own."""
    from tfsk.cli import main

    with tempfile.TemporaryFile(mode="w+b") as sink, _environment(env), contextlib.chdir(cwd):
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            with open(os.dup(1), "w", closefd=True) as stream, contextlib.redirect_stdout(stream), \
                    contextlib.redirect_stderr(stream):
                code = main(list(args))
                stream.flush()
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
        sink.seek(0)
        output = sink.read().decode("utf-8", errors="replace")
    return Outcome(shlex.join(["tfsk", *args]), code, output)


def new_project(root: Path, demo_base: Path) -> tuple[Path, dict[str, str]]:
    """A fresh clone's stack (docker-compose.yml, tfsk.toml, monitoring/) with the demo exported and
    its configs written, and the ports the stack publishes (TFSK_GRPC_PORT, TFSK_REST_PORT)."""
    root.mkdir(parents=True)
    for name in ("docker-compose.yml", "tfsk.toml"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "monitoring", root / "monitoring")
    shutil.copytree(demo_base, root / MODELS)
    sc.write_configs(sc.load_declaration(root / "tfsk.toml"))
    return root, {"TFSK_GRPC_PORT": str(free_port()), "TFSK_REST_PORT": str(free_port())}


def versions_on_disk(folder: Path) -> dict[str, list[str]]:
    """Every model folder's children (complete versions, temporary folders, anything)."""
    base = folder / MODELS
    return {m.name: sorted(c.name for c in m.iterdir()) for m in sorted(base.iterdir()) if m.is_dir()}


def half_written(folder: Path) -> list[str]:
    """What a polling server must never see: a child of a model folder that is not a complete version
    (temporary export folders, a folder holding only ``.tfsk.lock``)."""
    problems = []
    for model in sorted(p for p in (folder / MODELS).iterdir() if p.is_dir()):
        complete = {v.path.name for v in list_versions(model) if v.complete}
        for child in model.iterdir():
            if child.name.startswith(".") and child.is_file():
                continue  # the exporter's lock file beside the versions
            if child.name not in complete:
                problems.append(f"{model.name}/{child.name}")
        if not complete:
            problems.append(f"{model.name}/ (no complete version: {sorted(c.name for c in model.iterdir())})")
    return problems


def example_inputs(client, model: str) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    """Two rows for each input of ``model``'s serving signature."""
    inputs = client.metadata(model).signatures["serving_default"].inputs
    return {k: np.full(tuple(2 if i == 0 else (d or 1) for i, d in enumerate(v.shape)), 0.25, dtype=v.dtype)
            for k, v in inputs.items()}


def served(address: str, declaration: sc.Declaration) -> dict[str, object]:
    """What one replica serves of each declared model: AVAILABLE versions and the version each label answers."""
    from tfsk.client import Client

    state: dict[str, object] = {}
    with Client(address, timeout=10, retries=0) as client:
        for model in declaration.models:
            available = sorted(s.version for s in client.status(model.name) if s.state == "AVAILABLE")
            labels = {label: client.metadata(model.name, label=label).version for label in sorted(model.label_map)}
            state[model.name] = {"available": available, "labels": labels}
    return state


def declared_labels(folder: Path) -> dict[str, int]:
    return dict(sc.load_declaration(folder / "tfsk.toml").model("composed").label_map)


def startup_flags(arguments: Sequence[str]) -> tuple[list[str], bool]:
    """The config files a server started with ``arguments`` reads at start-up, and whether it allows
    labels on versions still loading (``--allow_version_labels_for_unavailable_models``)."""
    from tfsk._base.flags import parse_command_line

    line = parse_command_line(list(arguments))
    files = [str(line.value(name)) for name in ("model_config_file", "monitoring_config_file",
                                                   "batching_parameters_file") if line.value(name)]
    return files, bool(line.value("allow_version_labels_for_unavailable_models"))


def expected_versions(declaration: sc.Declaration) -> dict[str, list[int]]:
    """The versions of each declared model a server reading tfsk.toml's config loads from what is on disk."""
    expected = {}
    for model in declaration.models:
        on_disk = [v.version for v in list_versions(declaration.mapping.host_path(model.folder)) if v.complete]
        policy = model.policy
        if policy.kind == "specific":
            expected[model.name] = sorted(policy.versions)
        elif policy.kind == "all":
            expected[model.name] = on_disk
        else:
            expected[model.name] = on_disk[-policy.num_versions:]
    return expected


def differences(before: object, after: object, where: str = "") -> list[str]:
    """Where two nested snapshots (dicts, tuples, lists, text) differ, one line per difference."""
    if isinstance(before, dict) and isinstance(after, dict):
        return [line for key in sorted(set(before) | set(after), key=str)
                for line in differences(before.get(key), after.get(key), f"{where}/{key}")]
    if isinstance(before, tuple) and isinstance(after, tuple) and len(before) == len(after):
        return [line for i, (b, a) in enumerate(zip(before, after)) for line in differences(b, a, f"{where}[{i}]")]
    return [] if before == after else [f"{where}: {before!r} -> {after!r}"[:600]]
