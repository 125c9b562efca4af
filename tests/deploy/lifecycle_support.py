"""What the stateful lifecycle test drives (no tests here): a project folder with the repository's stack
and the demo, the CLI run in this process with its output captured, extra devserver replicas started
with the stack's own flags, and snapshots of what a step may change (tfsk.toml, the version folders,
what every replica serves)."""

from __future__ import annotations

import contextlib
import itertools
import os
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from hypothesis import note
from hypothesis.errors import InvalidArgument
from server_process import free_port
from support import REPO
from test_rollout_support import ClientLoop

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


@dataclass
class Tally:
    """What the run did, printed at the end (and quoted in docs/rollout.md for the long run)."""

    sequences: int = 0
    steps: int = 0
    requests: int = 0
    violations: int = 0
    commands: dict[str, int] = field(default_factory=dict)


@dataclass
class World:
    demo_base: Path
    keras: Path  # the retrained towers (.keras), compatible and not
    root: Path
    tally: Tally = field(default_factory=Tally)
    counter: itertools.count = field(default_factory=itertools.count)


class StackUser:
    """A user's project folder and running stack, and what the lifecycle machine's rules share: running
    ``tfsk`` (each command written to the transcript), the replicas, snapshots, the client loops. A
    mixin before :class:`hypothesis.stateful.RuleBasedStateMachine`; ``world`` is set by the test."""

    world: World

    def __init__(self) -> None:
        super().__init__()  # the state machine
        world = self.world
        self.folder, self.env = new_project(world.root / f"sequence-{next(world.counter)}", world.demo_base)
        shutil.copytree(world.keras, self.folder / "retrained")
        world.tally.sequences += 1
        self.transcript: list[str] = []
        self.up = False
        self.dead: list[str] = []  # replicas killed and not started again
        self.loops: list[ClientLoop] = []
        self.answers: list = []  # of finished client loops
        self.allowed_stable: set[int] = set()  # versions stable was ever given by a rollout step
        self.at_down: tuple[object, object] | None = None  # (disk and tfsk.toml, served) when the stack went down

    # -- running commands -------------------------------------------------------------------------
    def tfsk(self, *args: str, expect: int | None = 0) -> Outcome:
        outcome = run_tfsk(args, self.folder, self.env)
        self.say(f"{outcome.command}    # exit {outcome.code}")
        self.world.tally.steps += 1
        self.world.tally.commands[" ".join(args[:2])] = self.world.tally.commands.get(" ".join(args[:2]), 0) + 1
        if expect is not None:
            self.check(outcome.code == expect, f"`{outcome.command}` exited {outcome.code}, expected {expect}:\n"
                                               f"{outcome.output}")
        return outcome

    def say(self, line: str) -> None:
        self.transcript.append(line)
        with contextlib.suppress(InvalidArgument):  # outside hypothesis (the scripted day) there is no note
            note(line)

    def check(self, condition: object, what: str) -> None:
        if not condition:
            self.world.tally.violations += 1
            commands = "\n".join(f"  {line}" for line in self.transcript)
            raise AssertionError(f"{what}\n\nthe commands so far (in {self.folder}, TFSK_GRPC_PORT="
                                 f"{self.env['TFSK_GRPC_PORT']} TFSK_REST_PORT={self.env['TFSK_REST_PORT']}):\n"
                                 f"{commands}")

    # -- what the stack is --------------------------------------------------------------------------
    @property
    def stack_address(self) -> str:
        return f"127.0.0.1:{self.env['TFSK_GRPC_PORT'].split('-')[0]}"

    @property
    def addresses(self) -> list[str]:
        """The live replicas' gRPC addresses (the first is the stack's first port)."""
        if not self.up:
            return []
        return [str(r.endpoints["grpc"]) for r in self.records() if str(r.endpoints["grpc"]) not in self.dead]

    def declaration(self) -> sc.Declaration:
        return sc.load_declaration(self.folder / "tfsk.toml")

    def record_arguments(self) -> list[str]:
        from tfsk.deploy import DevserverStack, load_stack

        spec = load_stack(self.folder / "docker-compose.yml", environ={**os.environ, **self.env})
        record = DevserverStack(spec).record()
        if record is not None:
            return list(record.arguments)
        from tfsk.deploy import devserver_arguments

        return devserver_arguments(spec)

    def on_disk(self) -> object:
        return (self.folder.joinpath("tfsk.toml").read_text(), versions_on_disk(self.folder))

    def served_everywhere(self) -> dict[str, object]:
        declaration = self.declaration()
        return {address: served(address, declaration) for address in self.addresses}

    def snapshot(self) -> object:
        configs = {p.name: p.read_text() for p in sorted((self.folder / MODELS).glob("*.config"))}
        return self.on_disk(), configs, self.served_everywhere()

    def unchanged_since(self, before: object, step: str) -> None:
        changed = differences(before, self.snapshot())
        self.check(not changed, f"{step} was refused but changed something:\n" + "\n".join(changed))

    def settle(self, timeout: float = 120) -> None:
        """Wait until every replica serves what tfsk.toml and the disk say (a server polls the version
        folders every second: a new export is served a moment after the command returns)."""
        deadline = time.monotonic() + timeout
        while self.up:
            declaration = self.declaration()
            wanted = expected_versions(declaration)
            actual = {a: {m: s["available"] for m, s in served(a, declaration).items()} for a in self.addresses}
            if all(versions == wanted for versions in actual.values()) or time.monotonic() > deadline:
                break
            time.sleep(0.2)

    # -- the client loops -----------------------------------------------------------------------------
    def start_loops(self) -> None:
        if not self.up:
            return
        from tfsk.client import Client

        with Client(self.stack_address, timeout=30) as client:
            inputs = example_inputs(client, "composed")
        labels = [None, *(["stable"] if "stable" in declared_labels(self.folder) else [])]
        self.loops = [ClientLoop(self.addresses, label, inputs).start() for label in labels]

    def stop_loops(self) -> None:
        for loop in self.loops:
            loop.stop()
            self.answers.extend((loop.label, a) for a in loop.answers)
            self.world.tally.requests += len(loop.answers)
        self.loops = []

    def restart_loops(self) -> None:
        self.stop_loops()
        self.start_loops()

    # -- the stack ------------------------------------------------------------------------------------
    def stack_up(self) -> None:
        self.tfsk("stack", "up", "--engine", "devserver", "--timeout", "180")
        self.up = True

    def stack_down(self) -> None:
        self.stop_loops()
        self.tfsk("stack", "down", "--engine", "devserver")
        self.up, self.dead = False, []


    def records(self) -> list:
        from tfsk.deploy import DevserverStack, load_stack

        return DevserverStack(load_stack(self.folder / "docker-compose.yml",
                                         environ={**os.environ, **self.env})).records()


    def kept(self) -> list[int]:
        policy = self.declaration().model("composed").policy
        return sorted(policy.versions) if policy.kind == "specific" else []

    def notes(self):  # type: ignore[no-untyped-def]
        from tfsk.deploy import load_state

        return load_state(self.folder, "composed")

    def in_progress(self) -> bool:
        labels = declared_labels(self.folder)
        return labels.get("canary") not in (None, labels.get("stable")) and self.notes().step != "rollback"


    def refused(self, *args: str) -> None:
        before = self.snapshot()
        self.tfsk(*args, expect=2)
        self.unchanged_since(before, f"`tfsk {' '.join(args)}`")
