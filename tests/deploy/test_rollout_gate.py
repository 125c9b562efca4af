"""The canary gate on real devservers: ``tfsk rollout analyze`` catches a tower whose weights moved (and
names it), a slow canary and a failing one; an identical re-export passes; ``promote`` refuses each
failing canary and says why; ``--force`` promotes and is noted; ``start --gate`` decides by itself.

One folder, two replicas and the demo's export are shared by the module; each test starts a canary
and drops it (``finish``) before the next, as a user would between rollouts.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the shared helpers beside this file
import gate_models
from support import tfsk
from test_rollout_support import rollout_dir, start_replica

from tfsk import deploy
from tfsk import serving_config as sc

REQUESTS = 16  # per label and replica: a p99 of 16 answers is about their slowest, enough for 200 ms against ~5 ms


@pytest.fixture(scope="module")
def served(tmp_path_factory, demo_base) -> Iterator[tuple[Path, deploy.Targets]]:
    folder = rollout_dir(tmp_path_factory.mktemp("gate"), demo_base)
    declaration = folder / "tfsk.toml"
    text = declaration.read_text(encoding="utf-8")
    assert "\nrequests = 100 " in text  # the repository's [rollout.gate], read by the gate
    declaration.write_text(text.replace("\nrequests = 100 ", f"\nrequests = {REQUESTS} "), encoding="utf-8")
    servers = [start_replica(folder), start_replica(folder)]
    try:
        yield folder, deploy.Targets(tuple(s.address for s in servers), "host", timeout=60)
    finally:
        for server in servers:
            server.stop()


@pytest.fixture(autouse=True)
def canary_dropped_after(served) -> Iterator[None]:
    """Each test leaves no canary behind, even when it fails (the next one starts its own)."""
    yield
    folder, targets = served
    labels = sc.load_declaration(folder / "tfsk.toml").model("composed").label_map
    if labels.get("canary", labels.get("stable")) != labels.get("stable"):
        drop_canary(folder, targets)


def started(folder: Path, targets: deploy.Targets, keras_file: Path) -> deploy.Rollout:
    rollout = deploy.Rollout(folder / "tfsk.toml", "composed", targets)
    rollout.start("tower_a", deploy.Source(keras_file=str(keras_file)))
    return rollout


def drop_canary(folder: Path, targets: deploy.Targets) -> None:
    deploy.Rollout(folder / "tfsk.toml", "composed", targets).finish()


def cli(folder: Path, targets: deploy.Targets, *args: str):  # type: ignore[no-untyped-def]
    return tfsk("rollout", *args, "--target", ",".join(targets.addresses), cwd=folder)


def test_an_identical_reexport_passes_and_a_perturbed_tower_fails_naming_the_tower(served, tmp_path):
    folder, targets = served
    rollout = started(folder, targets, gate_models.identical(tmp_path))
    report = rollout.analyze()
    assert report["verdict"] == "pass", report["failed"]
    assert report["moved_parts"] == [] and report["outputs"]["prediction"]["max_abs_difference"] < 1e-5
    assert report["labels"]["canary"]["requests"] == report["labels"]["stable"]["requests"] == 2 * REQUESTS
    assert set(report["labels"]["stable"]["targets"]) == set(targets.addresses)  # every replica asked
    assert "warmup records (4 requests" in report["source"] and "made up from serving_default" in report["source"]
    warmup = folder / "demo-models" / "composed" / "1" / "assets.extra" / "tf_serving_warmup_requests"
    warmup.rename(warmup.with_name("moved-away"))  # no warmup records: every request made up (the server has loaded)
    try:
        made_up = rollout.analyze()
    finally:
        warmup.with_name("moved-away").rename(warmup)
    assert made_up["source"] == "requests made up from serving_default (seed 23)" and made_up["verdict"] == "pass"
    drop_canary(folder, targets)

    rollout = started(folder, targets, gate_models.perturbed(tmp_path))
    report = rollout.analyze()
    assert report["verdict"] == "fail" and report["moved_parts"] == ["tower_a"]
    assert "max_abs_difference:prediction" in report["failed"]
    assert not any(name.startswith(("latency", "error")) for name in report["failed"])
    head = report["outputs"]["prediction"]
    assert head["part"] is None and head["score"] is True and head["rank_agreement"] is not None
    others = [f for f in report["outputs"].values() if f["part"] in ("tower_b", "tower_c")]
    assert others and all(f["max_abs_difference"] < 1e-6 for f in others)  # only tower_a moved
    stored = json.loads(deploy.gate_report_file(folder, "composed").read_text())
    assert stored["verdict"] == "fail" and stored["canary"] == report["canary"]

    refused = cli(folder, targets, "promote", "composed")
    assert refused.returncode == 1, refused.stderr
    assert "max_abs_difference:prediction" in refused.stderr and "--force" in refused.stderr
    assert "`tfsk rollout finish composed` drops the canary" in refused.stderr
    assert "moved: tower_a" in refused.stdout and "verdict: FAIL" in refused.stdout
    assert sc.load_declaration(folder / "tfsk.toml").model("composed").label_map["stable"] == 1

    forced = cli(folder, targets, "promote", "composed", "--force", "--json")
    assert forced.returncode == 0, forced.stderr
    answer = json.loads(forced.stdout)
    assert answer["result"]["forced"] is True and answer["labels"]["stable"] == report["canary"]
    notes = deploy.load_state(folder, "composed")
    assert len(notes.overrides) == 1 and "promote --force" in notes.overrides[0]
    assert "max_abs_difference:prediction" in notes.overrides[0] and "tower_a" in notes.overrides[0]
    deploy.Rollout(folder / "tfsk.toml", "composed", targets).rollback()
    drop_canary(folder, targets)


def test_a_slow_canary_fails_the_latency_gate_and_promote_refuses_it(served, tmp_path):
    folder, targets = served
    rollout = started(folder, targets, gate_models.slow(tmp_path))
    refused = cli(folder, targets, "promote", "composed", "--json")
    assert refused.returncode == 1, refused.stdout
    answer = json.loads(refused.stdout)
    report = answer["gate"]
    assert answer["ok"] is False and report["failed"] == ["latency_p99"], report["checks"]
    assert "latency_p99" in answer["error"] and "canary p99" in answer["error"]
    assert report["labels"]["canary"]["p99_ms"] >= gate_models.SLOW_SECONDS * 1000
    assert report["moved_parts"] == []  # slow, but its answers have not moved at all
    assert sc.load_declaration(folder / "tfsk.toml").model("composed").label_map["stable"] == 1

    # live: a client routes half its calls to canary and captures them; analyze reads its figures
    captured = routed_traffic(targets, tmp_path / "live", calls=30)
    live = rollout.analyze(live=captured)
    assert live["mode"] == "live" and live["failed"] == ["latency_p99"], live["checks"]
    assert live["labels"]["stable"]["requests"] + live["labels"]["canary"]["requests"] == 30
    assert live["labels"]["canary"]["p99_ms"] >= gate_models.SLOW_SECONDS * 1000
    assert live["outputs"]["prediction"]["psi"] is not None  # drift of the distribution: the requests differ
    drift = next(c for c in live["checks"] if c["name"] == "psi:prediction")
    assert drift["skipped"] and "too few to judge its psi" in drift["detail"]  # 60 values a label: noise
    drop_canary(folder, targets)


def routed_traffic(targets: deploy.Targets, folder: Path, calls: int, seed: int = 3) -> Path:
    """``calls`` Predict calls split half and half between stable and canary, captured into ``folder``."""
    import numpy as np

    from tfsk.client import Capture, Client, ServingError

    rng = np.random.default_rng(seed)
    with Client(list(targets.addresses), route={"stable": 0.5, "canary": 0.5}, capture=Capture(folder),
                seed=seed, timeout=30) as client:
        for _ in range(calls):
            inputs = {f"{tower}__features": rng.standard_normal((4, width)).astype("float32")
                      for tower, width in (("tower_a", 10), ("tower_b", 10), ("tower_c", 5))}
            try:
                client.predict("composed", inputs)
            except ServingError:  # a failing canary fails the calls routed to it: captured all the same
                pass
    return folder


def test_a_canary_failing_some_inputs_fails_the_error_gate_and_promote_refuses_it(served, tmp_path):
    folder, targets = served
    rollout = started(folder, targets, gate_models.failing(tmp_path))
    analyzed = cli(folder, targets, "analyze", "composed")
    assert analyzed.returncode == 1, analyzed.stderr
    assert "FAILED error_rate" in analyzed.stdout and "INVALID_ARGUMENT" in analyzed.stdout
    report = json.loads(deploy.gate_report_file(folder, "composed").read_text())
    assert "error_rate" in report["failed"]
    canary, stable = report["labels"]["canary"], report["labels"]["stable"]
    assert stable["errors"] == {} and 0 < canary["errors"]["INVALID_ARGUMENT"] < canary["requests"]

    refused = cli(folder, targets, "promote", "composed")
    assert refused.returncode == 1 and "error_rate" in refused.stderr, refused.stderr
    assert rollout.labels["stable"] == 1

    # replaying captured traffic instead: the captured inputs are the ones judged
    captured = routed_traffic(targets, tmp_path / "captured", calls=10)
    replayed = rollout.analyze(capture=captured)
    assert replayed["source"].startswith("captured traffic (10 requests")
    assert replayed["labels"]["stable"]["requests"] == 2 * REQUESTS and "error_rate" in replayed["failed"]
    drop_canary(folder, targets)


def test_start_with_gate_promotes_a_passing_canary_and_drops_a_failing_one(served, tmp_path):
    folder, targets = served
    rollout = deploy.Rollout(folder / "tfsk.toml", "composed", targets)
    judged = rollout.start_judged("tower_a", deploy.Source(keras_file=str(gate_models.identical(tmp_path))))
    assert judged["outcome"] == "promoted" and judged["stable"] == judged["candidate"]
    stable = judged["stable"]
    drop_canary(folder, targets)

    dropped = cli(folder, targets, "start", "tower_a", "--model", "composed", "--from",
                  str(gate_models.perturbed(tmp_path)), "--gate")
    assert dropped.returncode == 1, dropped.stderr
    assert "rolled back: stable -> composed version" in dropped.stdout and "moved: tower_a" in dropped.stdout
    labels = sc.load_declaration(folder / "tfsk.toml").model("composed").label_map
    assert labels == {"stable": stable, "canary": stable}
