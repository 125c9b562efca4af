"""``tfsk tune batching`` for real: trial devservers on loopback ports serving the demo's tiny tower,
measured by ``tfsk bench``'s generator; and each refusal, one line and exit 2 (1: no trial meets the bound).

Trials are kept very short (a fraction of a second each): these tests check what a tune does and
says, not which parameters win; that is measured in benchmarks/bench_tune.py.
"""

import json
import shutil
from pathlib import Path

import pytest
from support import REPO, tfsk

from tfsk import deploy
from tfsk import serving_config as sc
from tfsk.cli import main

DECLARATION = """# A project with the demo's tiny tower.
[paths]
host_root = "models"
container_root = "/models"

# the tower the tests tune
[models.tower_a]
policy = "latest"

[models.missing]   # declared, never exported

[models.broken]    # a version whose saved_model.pb is cut short
"""
SHORT = ("--duration", "0.5s", "--warmup", "0.2s")


@pytest.fixture(scope="module")
def project(tmp_path_factory, demo_base):
    root = tmp_path_factory.mktemp("tune")
    shutil.copytree(demo_base / "tower_a", root / "models" / "tower_a")
    (root / "models" / "broken" / "1").mkdir(parents=True)
    (root / "models" / "broken" / "1" / "saved_model.pb").write_bytes(b"\x08\x01\x12")
    (root / "tfsk.toml").write_text(DECLARATION)
    return root


def _one_line_error(capsys, code, expected):
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("tfsk tune: error: "), err
    assert expected in err, err
    if "(log: " in err:  # a failed trial server's log is kept for the user, and named
        log = Path(err.rsplit("(log: ", 1)[1].rstrip(")\n"))
        assert log.is_file() and "Illegal value" in log.read_text()
        shutil.rmtree(log.parent)


def test_a_tune_measures_the_baseline_and_each_trial_and_writes_only_what_pays(project, tmp_path):
    toml = tmp_path / "tfsk.toml"
    shutil.copy(project / "tfsk.toml", toml)
    toml.write_text(toml.read_text().replace('"models"', f'"{project / "models"}"', 1))
    out = tmp_path / "tune.json"
    run = tfsk("tune", "batching", "tower_a", "--concurrency", "4", "--p99", "5s", "--trials", "1", "--seed", "1", "--confirm", "2",
               *SHORT, "--write", "--json", str(out), "--declaration", str(toml), timeout=240)
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(out.read_text())
    trials = report["trials"]
    assert [t["index"] for t in trials] == [0, 1] and report["stopped_by"] == "trials"
    assert trials[0]["batching"] is None and all(t["batching"] for t in trials[1:])
    # the demo's warmup records send 8 rows: no trial may go below (its load would fail)
    assert all(t["batching"]["max_batch_size"] >= 8 for t in trials[1:])
    for trial in trials:
        assert trial["requests"] > 0 and trial["throughput"] > 0 and trial["errors"] == {} and trial["meets_bound"]
        assert 0 < trial["latency_ms"]["p50"] <= trial["latency_ms"]["p99"] <= 5000
    assert report["load"]["concurrency"] == 4 and report["load"]["duration_seconds"] == 0.5
    # the baseline and the best, measured again on their servers in two interleaved rounds
    assert [c["index"] for c in report["confirmations"]] == [0, 1, 1, 0]
    assert all(c["requests"] > 0 for c in report["confirmations"])
    assert "(medians of 3 interleaved measurements; " in report["message"]
    assert "x the baseline, median of the rounds that measured both)" in report["message"]
    assert report["version"] == 1 and report["engine"] == "devserver" and report["seed"] == 1
    lines = run.stdout.splitlines()
    assert lines[0].startswith("#0 no batching (baseline): ") and lines[1].startswith("#1 max_batch_size=")
    assert report["message"] in run.stdout and sum(" BEST" in line for line in lines) == 1
    assert lines[2].startswith("#0 median of 3 no batching (baseline): ")
    assert lines[3].startswith("#1 median of 3 max_batch_size=")
    declaration = sc.load_declaration(toml)
    if report["verdict"] == "batching":  # written: the model's own table and the server's batch threads
        best = report["best_batching"]
        assert declaration.model("tower_a").batching.max_batch_size == best["max_batch_size"]
        assert declaration.batching.num_batch_threads == best["num_batch_threads"]
        assert "# the tower the tests tune" in toml.read_text()
        sc.write_configs(declaration)
        written = sc.read_batching_parameters(project / "models" / "tower_a" / "1" / sc.PER_MODEL_BATCHING_FILE)
        assert written == declaration.model("tower_a").batching
        (project / "models" / "tower_a" / "1" / sc.PER_MODEL_BATCHING_FILE).unlink()
    else:
        assert report["verdict"] == "off" and "batching does not pay for 'tower_a'" in run.stdout
        assert "nothing written" in run.stdout and declaration.model("tower_a").batching is None
        assert report["written"] is None


def test_a_bound_no_trial_meets_says_batching_stays_off_and_exits_1(project):
    run = tfsk("tune", "batching", "tower_a", "--rate", "40", "--p99", "0.01ms", "--trials", "5", "--budget", "1s",
               *SHORT, "--json", "-", "--declaration", str(project / "tfsk.toml"), timeout=240)
    assert run.returncode == 1, run.stdout + run.stderr
    report = json.loads(run.stdout)
    assert report["ok"] is False and report["verdict"] == "none" and report["best"] is None
    assert "no trial meets p99 <= 0.01 ms at rate 40/s" in report["message"]
    assert "batching should stay off for 'tower_a'" in report["message"]
    # the budget stops the search after the baseline and the start point, which are always measured
    assert report["stopped_by"] == "budget" and len(report["trials"]) == 2
    assert all(t["requests"] > 0 and not t["meets_bound"] for t in report["trials"])
    assert report["load"]["rate"] == 40 and report["confirmations"] == []


@pytest.mark.parametrize("args, expected", [
    (("nope", "--concurrency", "2"), "model 'nope' is not declared"),
    (("missing", "--concurrency", "2"), "model 'missing' has no complete version"),
    (("broken", "--concurrency", "2"), "model 'broken' version 1 cannot be served"),
    (("tower_a", "--concurrency", "2", "--server-flag=--rest_api_port=abc"),
     "the trial server did not start: Illegal value 'abc' for int flag --rest_api_port"),
])
def test_what_cannot_be_tuned_is_one_line_and_exit_2(project, capsys, args, expected):
    code = main(["tune", "batching", *args, "--p99", "50ms", *SHORT, "--declaration", str(project / "tfsk.toml")])
    _one_line_error(capsys, code, expected)


@pytest.mark.parametrize("args, expected", [
    (("--rate", "0"), "'0' is not a number of requests per second above 0"),
    (("--rate", "fast"), "'fast' is not a number of requests per second"),
    (("--rate", "5,10"), "a tune measures at one load"),
    (("--rate", "5", "--concurrency", "2"), "not allowed with argument"),
    (("--concurrency", "0"), "'0' is not a whole number of 1 or more"),
    (("--concurrency", "2", "--p99", "0ms"), "give a duration above 0"),
    (("--concurrency", "2", "--p99", "soon"), "is not a duration"),
])
def test_a_bad_load_or_bound_is_a_usage_error(project, capsys, args, expected):
    argv = ["tune", "batching", "tower_a", *args, "--declaration", str(project / "tfsk.toml")]
    if "--p99" not in args:
        argv += ["--p99", "50ms"]
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert expected in capsys.readouterr().err.splitlines()[-1]


def test_the_docker_engine_without_docker_says_why_in_one_line(project, capsys):
    problem = deploy.docker_engine_problem()
    if problem is None:
        pytest.skip("Docker is here: test_the_docker_engine_tunes_on_the_tensorflow_serving_image runs instead")
    code = main(["tune", "batching", "tower_a", "--concurrency", "2", "--p99", "50ms", "--engine", "docker",
                 "--image", "tensorflow/serving:2.21.0", "--declaration", str(project / "tfsk.toml")])
    _one_line_error(capsys, code, f"--engine docker: {problem}; use --engine devserver")


@pytest.mark.docker
def test_the_docker_engine_tunes_on_the_tensorflow_serving_image(project, tmp_path):
    import subprocess

    problem = deploy.docker_engine_problem()
    image = deploy.load_compose(REPO / "docker-compose.yml", environ={}).service("serving").image
    if problem is None and subprocess.run(["docker", "image", "inspect", image], capture_output=True,
                                          timeout=60).returncode != 0:
        problem = f"the image {image} is not present here (docker pull --platform linux/amd64 {image})"
    if problem is not None:
        pytest.skip(f"needs a Docker engine and the tensorflow/serving image: {problem}")
    out = tmp_path / "tune.json"
    run = tfsk("tune", "batching", "tower_a", "--concurrency", "4", "--p99", "5s", "--trials", "1", *SHORT,
               "--engine", "docker", "--image", image, "--json", str(out),
               "--declaration", str(project / "tfsk.toml"), timeout=900)
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(out.read_text())
    assert report["engine"] == "docker" and len(report["trials"]) == 2
    assert all(t["requests"] > 0 and t["errors"] == {} for t in report["trials"])
