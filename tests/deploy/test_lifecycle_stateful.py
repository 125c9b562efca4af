"""A user's life with a stack, as a state machine (issue 21): hypothesis picks sequences of the commands a
user types - ``tfsk stack up``/``down``/restart on the devserver engine, ``tfsk demo``, ``tfsk export part``
(a compatible and an incompatible tower), ``tfsk rollout start|promote|rollback|finish|status``, edits of
tfsk.toml (harmless and broken), killing and restarting a replica - run for real in a project folder while
a client loop asks ``stable`` and no label. After every step the invariants below hold, or the step was
refused and changed nothing. A failure shows the sequence as the commands a user would type.

Default: a fixed seed and few short sequences (within the suite's budget). The long run:
``TFSK_LIFECYCLE_EXAMPLES=40 .venv/bin/python -m pytest tests/deploy/test_lifecycle_stateful.py -s``
(``TFSK_LIFECYCLE_STEPS`` sets the steps per sequence); docs/rollout.md has the figure of its last run.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

sys.path.insert(0, str(Path(__file__).parent))  # the shared helpers beside this file
import test_rollout_life
from lifecycle_support import (
    MODELS,
    StackUser,
    World,
    declared_labels,
    example_inputs,
    expected_versions,
    half_written,
    run_tfsk,
    served,
    startup_flags,
    versions_on_disk,
)
from server_process import free_port, free_ports, wait_for
from test_rollout_support import new_tower

from tfsk import serving_config as sc

PARTS = ("tower_a", "tower_b", "tower_c")
ROLLOUT_STEPS = st.sampled_from(["start --from", "start --version", "promote", "rollback", "finish", "status"])
EXAMPLES = int(os.environ.get("TFSK_LIFECYCLE_EXAMPLES", "1"))
STEPS = int(os.environ.get("TFSK_LIFECYCLE_STEPS", "4"))
#: replicas of the stack a sequence starts with (the first, simplest sequence: one)
REPLICAS = tuple(int(n) for n in os.environ.get("TFSK_LIFECYCLE_REPLICAS", "1,2").split(","))


class Lifecycle(StackUser, RuleBasedStateMachine):
    """The rules (a user's commands) and the invariants; the machinery is :class:`StackUser`'s."""

    @initialize(replicas=st.sampled_from(REPLICAS))
    def first_stack_up(self, replicas: int) -> None:
        if replicas > 1:  # as `docker compose up --scale serving=N`: one port of each range per replica
            grpc, rest = free_ports(replicas), free_ports(replicas)
            self.env = {"TFSK_GRPC_PORT": f"{grpc}-{grpc + replicas - 1}",
                        "TFSK_REST_PORT": f"{rest}-{rest + replicas - 1}"}
        self.stack_up()
        self.start_loops()

    @precondition(lambda self: not self.up)
    @rule()
    def up_again(self) -> None:
        self.stack_up()
        if self.at_down is not None and self.at_down[0] == self.on_disk():
            self.check(self.served_everywhere() == self.at_down[1],
                       f"the stack serves other versions or labels than before it went down:\nbefore "
                       f"{self.at_down[1]}\nafter  {self.served_everywhere()}")
        self.start_loops()

    @precondition(lambda self: self.up)
    @rule()
    def down(self) -> None:
        self.stop_loops()
        self.at_down = (self.on_disk(), self.served_everywhere())
        self.stack_down()

    @precondition(lambda self: self.up)
    @rule()
    def restart(self) -> None:
        before = self.served_everywhere()
        self.stack_down()
        self.stack_up()
        after = {address: state for address, state in self.served_everywhere().items() if address in before}
        self.check(after == before, f"a restart serves other versions or labels:\nbefore {before}\nafter  {after}")
        self.start_loops()

    # -- replicas (the stack's own: TFSK_GRPC_PORT=FIRST-LAST starts one devserver per port) ---------
    @precondition(lambda self: self.up and len(self.addresses) > 1 and not self.dead)
    @rule()
    def kill_replica(self) -> None:
        self.stop_loops()
        victim = self.records()[-1]
        os.kill(victim.pid, signal.SIGKILL)
        self.say(f"kill -9 {victim.pid}    # replica {victim.replica}, gRPC {victim.endpoints['grpc']}")
        wait_for(lambda: not victim.alive, timeout=30)
        self.dead.append(str(victim.endpoints["grpc"]))
        status = self.tfsk("stack", "status", "--engine", "devserver", expect=1)
        self.check(f"replica {victim.replica}" in status.output, f"stack status does not name the dead replica:\n"
                                                               f"{status.output}")
        self.start_loops()

    @precondition(lambda self: self.up and self.dead)
    @rule()
    def restart_replica(self) -> None:
        self.stop_loops()
        before = served(self.stack_address, self.declaration())
        self.tfsk("stack", "up", "--engine", "devserver", "--timeout", "180")  # starts the dead ones only
        restarted, self.dead = self.dead, []
        for address in restarted:
            after = served(address, self.declaration())
            self.check(after == before, f"the restarted replica {address} serves {after}; replica 1 serves {before}")
        self.start_loops()

    # -- the demo, exports, tfsk.toml --------------------------------------------------------------------
    @rule(where=st.sampled_from(["stack-port", "own-port", "fresh"]))
    def demo(self, where: str) -> None:
        labelled = bool(declared_labels(self.folder))
        if where == "stack-port" and self.up:  # `make demo` while the stack runs on the same port: refused
            before = self.snapshot()
            self.tfsk("demo", "--declaration", "tfsk.toml", "--port", self.stack_address.rsplit(":", 1)[1], expect=2)
            self.unchanged_since(before, "tfsk demo on the stack's port")
            return
        if where == "fresh" and labelled:  # a new demo set over a rollout's labels: refused
            before = self.snapshot()
            self.tfsk("demo", "--declaration", "tfsk.toml", "--port", str(free_port()), "--fresh", expect=2)
            self.unchanged_since(before, "tfsk demo --fresh with labels in tfsk.toml")
            return
        disk = versions_on_disk(self.folder)
        self.tfsk("demo", "--declaration", "tfsk.toml", "--port", str(free_port()),
                  *(["--fresh"] if where == "fresh" else []))
        if labelled:
            self.check(versions_on_disk(self.folder) == disk, "the demo exported over a rollout's labels")
        self.settle()

    @rule(part=st.sampled_from(PARTS), compatible=st.booleans())
    def export_part(self, part: str, compatible: bool) -> None:
        if compatible:
            self.tfsk("export", "part", f"retrained/{part}.keras", "--name", part, "--base", MODELS)
            self.settle()
            return
        before = self.snapshot()
        self.tfsk("export", "part", "retrained/tower_a-renamed.keras", "--name", "tower_a", "--base", MODELS,
                  expect=1)
        self.unchanged_since(before, "an export that changes tower_a's contract")

    @rule(edit=st.sampled_from(["comment", "batching", "num_versions = 0", "policy = \"newest\"", "[models.tower_a"]))
    def edit(self, edit: str) -> None:
        """Edit tfsk.toml: a harmless change (then `tfsk config write`), or a mistake every command refuses."""
        if edit in ("comment", "batching"):
            self.edit_harmless(edit)
        else:
            self.edit_broken(edit)

    def edit_harmless(self, edit: str) -> None:
        path = self.folder / "tfsk.toml"
        text = path.read_text()
        if edit == "comment":
            path.write_text(text + "\n# a note of the user's\n")
            self.say("echo '# a note of the user's' >> tfsk.toml")
        else:
            path.write_text(text.replace("batch_timeout_micros = 2000", "batch_timeout_micros = 3000"))
            self.say("sed -i 's/batch_timeout_micros = 2000/batch_timeout_micros = 3000/' tfsk.toml")
        self.tfsk("config", "write")

    def edit_broken(self, edit: str) -> None:
        path = self.folder / "tfsk.toml"
        text = path.read_text()
        before = self.snapshot()
        old = {"num_versions = 0": "num_versions = 1", "policy = \"newest\"": "policy = \"latest\"",
               "[models.tower_a": "[models.tower_a]"}[edit]
        if old not in text:
            return  # tfsk.toml no longer has that line (a rollout pinned the part)
        path.write_text(text.replace(old, edit, 1))
        self.say(f"vi tfsk.toml    # a mistake: {old} -> {edit}")
        self.tfsk("config", "write", expect=2)
        if self.up:
            self.tfsk("stack", "status", "--engine", "devserver", expect=2)
            self.tfsk("rollout", "status", "composed", expect=2)
        else:
            self.tfsk("stack", "up", "--engine", "devserver", "--timeout", "60", expect=2)
        path.write_text(text)
        self.say("git checkout tfsk.toml    # undo the mistake")
        self.unchanged_since(before, f"tfsk.toml with `{edit}`")

    # -- rollouts ---------------------------------------------------------------------------------------
    # One rule for every rollout command (swarm testing turns rules on and off per sequence: one rule keeps
    # the rollout's steps together); the model says whether the step applies or must be refused.
    @precondition(lambda self: self.up and not self.dead)
    @rule(step=ROLLOUT_STEPS, part=st.sampled_from(PARTS))
    def rollout(self, step: str, part: str) -> None:
        if step.startswith("start"):
            self.rollout_start(part, step.split("--")[1])
        elif step == "status":
            self.tfsk("rollout", "status", "composed")
            self.tfsk("stack", "status", "--engine", "devserver")
        else:
            getattr(self, f"rollout_{step}")()

    # Rollouts are most of a user's life with a stack: the same rule under two more names, so a sequence
    # has them more often (and swarm testing rarely turns all three off).
    @precondition(lambda self: self.up and not self.dead)
    @rule(step=ROLLOUT_STEPS, part=st.sampled_from(PARTS))
    def rollout_next(self, step: str, part: str) -> None:
        self.rollout(step, part)

    @precondition(lambda self: self.up and not self.dead)
    @rule(step=ROLLOUT_STEPS, part=st.sampled_from(PARTS))
    def rollout_later(self, step: str, part: str) -> None:
        self.rollout(step, part)

    def rollout_start(self, part: str, source: str) -> None:
        from tfsk._base.layout import list_versions
        from tfsk.client import Client
        from tfsk.exporter import read_lineage

        newest = max(v.version for v in list_versions(self.folder / MODELS / part) if v.complete)
        given = ("--from", f"retrained/{part}.keras") if source == "from" else ("--version", str(newest))
        if self.in_progress():
            source_note = (f"file:{(self.folder / given[1]).resolve()}" if source == "from" else f"version:{newest}")
            if (self.notes().part, self.notes().source) == (part, source_note):  # the same start again: resumes
                before = self.snapshot()
                self.tfsk("rollout", "start", part, "--model", "composed", *given)
                self.unchanged_since(before, "the same rollout start again (nothing left to do)")
            else:
                self.refused("rollout", "start", part, "--model", "composed", *given)
            return
        stable = declared_labels(self.folder).get("stable")
        if stable is None:  # the first rollout labels what unlabelled requests get
            with Client(self.stack_address, timeout=10) as client:
                stable = client.metadata("composed").version
        self.tfsk("rollout", "start", part, "--model", "composed", *given)
        after = declared_labels(self.folder)
        self.check(after.get("stable") == stable and after.get("canary") not in (None, stable),
                   f"after rollout start: labels {after}, expected stable -> {stable} and a new canary")
        lineage = read_lineage(self.folder / MODELS / "composed" / str(after["canary"])) or {}
        versions = {p["name"]: p["version"] for p in lineage.get("parts", [])}
        self.check(source == "from" or versions.get(part) == newest,
                   f"the canary's lineage names {part}@{versions.get(part)}, the rollout took version {newest}")
        self.allowed_stable.add(stable)
        if len(self.loops) < 2:
            self.restart_loops()  # the client now asks stable too

    def rollout_promote(self) -> None:
        labels = declared_labels(self.folder)
        if labels.get("canary") is None or labels.get("stable") is None:
            self.refused("rollout", "promote", "composed")
            return
        self.allowed_stable.add(labels["canary"])  # promoted: stable may answer from it from now on
        self.tfsk("rollout", "promote", "composed")
        after = declared_labels(self.folder)
        self.check(after.get("stable") == labels["canary"], f"after promote: labels {after}, before {labels}")

    def rollout_rollback(self) -> None:
        """As the library decides: back to the version stable named before promote, else the newest kept
        one older than stable; stable already there is a no-op; nothing to go back to is refused."""
        stable, kept, previous = declared_labels(self.folder).get("stable"), self.kept(), self.notes().previous
        if stable is not None and stable == previous and previous in kept:
            target: int | None = stable
        elif previous in kept:
            target = previous
        else:
            target = max((v for v in kept if stable is not None and v < stable), default=None)
        if target is None or stable is None or (target == stable and previous != stable):
            self.refused("rollout", "rollback", "composed")
            return
        self.tfsk("rollout", "rollback", "composed")
        after = declared_labels(self.folder)
        self.check(after.get("stable") == target, f"after rollback: labels {after}, expected stable -> {target}")

    def rollout_finish(self) -> None:
        stable = declared_labels(self.folder).get("stable")
        if stable is None:
            self.refused("rollout", "finish", "composed")
            return
        self.tfsk("rollout", "finish", "composed")
        after = declared_labels(self.folder)
        self.check(after.get("canary") == stable == after.get("stable") and self.kept() == [stable],
                   f"after finish: labels {after}, versions kept {self.kept()}; expected only version {stable}")

    # -- invariants -------------------------------------------------------------------------------------
    @invariant()
    def nothing_half_written_and_nothing_named_deleted(self) -> None:
        self.check(not half_written(self.folder), f"half-written on disk: {half_written(self.folder)}")
        from tfsk.exporter import read_lineage

        declaration = self.declaration()
        for model in declaration.models:
            for label, version in model.label_map.items():
                self.check((self.folder / MODELS / model.name / str(version)).is_dir(),
                           f"{model.name} version {version} (label {label}) was deleted")
        for composed in (p for p in (self.folder / MODELS / "composed").iterdir() if p.name.isdigit()):
            for part in (read_lineage(composed) or {}).get("parts", []):
                self.check((self.folder / MODELS / part["name"] / str(part["version"])).is_dir(),
                           f"{part['name']} version {part['version']}, which composed version {composed.name} "
                           f"was built from, was deleted")

    @invariant()
    def configs_validate(self) -> None:
        for rendered in sc.write_configs(self.declaration(), dry_run=True):
            self.check(not rendered.changed, f"{rendered.path} is not what tfsk.toml says (tfsk config write)")
        files, allow = startup_flags(self.record_arguments())
        for file in files:
            outcome = run_tfsk(["config", "validate", "--startup", file,
                                *(["--allow-version-labels-for-unavailable-models"] if allow else [])],
                               self.folder, self.env)
            self.check(outcome.code == 0, f"{outcome.command} (the engine's start-up flags): {outcome.output}")

    @invariant()
    def every_replica_serves_what_tfsk_toml_says(self) -> None:
        if not self.up:
            return
        from tfsk.client import Client

        declaration = self.declaration()
        labels = dict(declaration.model("composed").label_map)
        stable = labels.get("stable")
        self.check(stable is None or stable in self.allowed_stable,
                   f"tfsk.toml labels stable -> {stable}, never promoted (promoted: {sorted(self.allowed_stable)})")
        wanted = expected_versions(declaration)
        for address in self.addresses:
            actual = {m: s["available"] for m, s in served(address, declaration).items()}  # type: ignore[index]
            self.check(actual == wanted, f"{address} serves {actual}; tfsk.toml and the disk say {wanted}")
            with Client(address, timeout=30, retries=0) as client:
                for model in declaration.models:
                    try:
                        client.predict(model.name, example_inputs(client, model.name))
                        for label, version in model.label_map.items():
                            answered = client.predict(model.name, example_inputs(client, model.name),
                                                      label=label).version
                            self.check(answered == version, f"{address}: {model.name} label {label} answers "
                                                            f"version {answered}, tfsk.toml says {version}")
                    except AssertionError:
                        raise
                    except Exception as error:  # noqa: BLE001 - any failure to answer is the finding
                        self.check(False, f"{address}: {model.name} does not answer: {error}")
            if stable is not None:
                outcome = run_tfsk(["check", "composed", "--label", "stable", "--target", address],
                                   self.folder, self.env)
                self.check(outcome.code == 0, f"{outcome.command}: {outcome.output}")

    @invariant()
    def no_client_request_failed(self) -> None:
        answers = self.answers + [(loop.label, a) for loop in self.loops for a in list(loop.answers)]
        failed = [(label, a.error) for label, a in answers if a.error is not None]
        self.check(not failed, f"{len(failed)} of {len(answers)} client requests failed, e.g. {failed[:3]}")
        wrong = {a.version for label, a in answers if label == "stable"} - self.allowed_stable
        self.check(not wrong, f"stable answered from versions {sorted(wrong)}, never promoted "
                              f"({sorted(self.allowed_stable)})")

    def teardown(self) -> None:
        self.stop_loops()
        run_tfsk(["stack", "down", "--engine", "devserver"], self.folder, self.env)
        print(f"\n-- sequence in {self.folder.name}:\n" + "\n".join(f"  {line}" for line in self.transcript))


@pytest.fixture(scope="module")
def retrained(tmp_path_factory) -> Path:
    """The towers a user retrained (same contracts) and tower_a with its input renamed (another contract)."""
    folder = tmp_path_factory.mktemp("retrained")
    for part in PARTS:
        new_tower(folder, part).rename(folder / f"{part}.keras")
    test_rollout_life.contract_changed_tower(folder)
    return folder


#: One day of a user's, in the rules' own words: the default run's sequence that surely has every kind of
#: step (hypothesis's few default sequences rarely reach a promote); the same invariants after each.
A_USERS_DAY = [
    ("first_stack_up", {"replicas": 2}),
    ("rollout", {"step": "start --from", "part": "tower_a"}),
    ("export_part", {"part": "tower_b", "compatible": True}),
    ("rollout", {"step": "promote", "part": "tower_a"}),
    ("kill_replica", {}),
    ("restart_replica", {}),
    ("rollout", {"step": "rollback", "part": "tower_a"}),
    ("edit", {"edit": "[models.tower_a"}),
    ("rollout", {"step": "finish", "part": "tower_a"}),
    ("rollout", {"step": "start --version", "part": "tower_b"}),
    ("restart", {}),
    ("demo", {"where": "stack-port"}),
    ("rollout", {"step": "finish", "part": "tower_b"}),
]


def test_a_users_day_keeps_the_stack_consistent_after_every_step(demo_base, retrained, tmp_path):
    world = World(demo_base, retrained, tmp_path)
    Lifecycle.world = world
    machine = Lifecycle()
    try:
        for name, arguments in A_USERS_DAY:
            getattr(machine, name)(**arguments)
            for invariant_name in ("nothing_half_written_and_nothing_named_deleted", "configs_validate",
                                   "every_replica_serves_what_tfsk_toml_says", "no_client_request_failed"):
                getattr(machine, invariant_name)()
        assert declared_labels(machine.folder) == {"stable": 1, "canary": 1}  # rolled back, then finished
    finally:
        machine.teardown()
        print(f"\nlifecycle (a user's day): {world.tally.steps} steps, {world.tally.requests} client requests, "
              f"{world.tally.violations} violations")
    assert world.tally.requests > 0  # counted as the loops stop


@pytest.mark.timeout(600 + 400 * EXAMPLES)  # the long run's sequences take minutes each
def test_every_sequence_of_a_users_commands_leaves_a_consistent_serving_stack(demo_base, retrained, tmp_path):
    world = World(demo_base, retrained, tmp_path)
    Lifecycle.world = world
    try:
        run_state_machine_as_test(Lifecycle, settings=settings(
            max_examples=EXAMPLES, stateful_step_count=STEPS, derandomize=True, database=None, deadline=None,
            phases=[Phase.generate],  # shrinking would replay real stacks for minutes: the transcript says it
            suppress_health_check=list(HealthCheck)), _min_steps=STEPS)
    finally:
        tally = world.tally
        print(f"\nlifecycle: {tally.sequences} sequences, {tally.steps} steps, {tally.requests} client requests, "
              f"{tally.violations} violations; commands: {dict(sorted(tally.commands.items()))}")
